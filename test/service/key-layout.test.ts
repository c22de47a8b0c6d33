/**
 * Keys an earlier version wrote without hash tags are moved to the cluster-ready names when a service starts on a
 * single Redis server: policies (with their history) and approval requests survive the upgrade.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService } from '../harness/service.ts';

let redis: TestRedis;
before(async () => {
  redis = await startRedis({ appendonly: false });
});
after(async () => {
  await redis.close();
});

const source = (n: number): string =>
  `name: legacy\nrules:\n  - name: r${n}\n    when: k8s.verb == "get"\n    action: allow\n`;

test('policies and approvals stored under the earlier names are found after an upgrade', async () => {
  const r = new Redis(redis.url);
  try {
    const entry = (version: number) =>
      JSON.stringify({
        name: 'legacy',
        version,
        author: 'old',
        time: new Date().toISOString(),
        deleted: false,
        source: source(version),
      });
    await r.rpush('portcullis:policy:legacy:versions', entry(1), entry(2));
    await r.set('portcullis:policy:legacy:current', '2');
    await r.sadd('portcullis:policy:names', 'legacy');
    await r.hset('portcullis:approvals:req:apr_old', 'doc', '{}', 'rev', '1', 'state', 'pending');
    await r.zadd('portcullis:approvals:pending', Date.now(), 'apr_old');
  } finally {
    r.disconnect();
  }
  const svc = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
  try {
    const got = await svc.call(svc.adminToken, 'GET', '/v1/policies/legacy');
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal(got.body.version, 2);
    assert.equal(got.body.source, source(2));
    const versions = await svc.call(svc.adminToken, 'GET', '/v1/policies/legacy/versions');
    assert.equal(versions.body.length, 2);
    // A new version continues the moved history.
    const put = await svc.call(svc.adminToken, 'PUT', '/v1/policies/legacy', { source: source(3) });
    assert.equal(put.body.version, 3, JSON.stringify(put.body));
    const c = new Redis(redis.url);
    try {
      assert.deepEqual(await c.keys('portcullis:policy:*'), [], 'nothing left under the earlier names');
      assert.deepEqual(await c.keys('portcullis:approvals:*'), []);
      assert.equal((await c.zscore('portcullis:{approvals}:pending', 'apr_old')) !== null, true);
    } finally {
      c.disconnect();
    }
  } finally {
    await svc.close();
  }
});
