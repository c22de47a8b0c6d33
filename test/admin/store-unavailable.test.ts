import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { isStoreUnavailable, STORE_UNAVAILABLE_MESSAGE } from '../../extproc/admin/errors.ts';
import { startAdminServer } from '../../extproc/admin/server.ts';
import type { Principal } from '../../extproc/identity/principal.ts';
import { tokenTable } from '../harness/admin-auth.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;

before(async () => {
  redis = await startRedis(); // append-only, so the store survives the stop below
  svc = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
});
after(async () => {
  await svc.close();
  await redis.close();
});

test('with Redis stopped, admin routes answer 503 unavailable (not 500), and recover when it is back', async () => {
  assert.equal((await svc.call(svc.adminToken, 'GET', '/v1/policies')).status, 200);
  await redis.stop();
  try {
    for (const path of ['/v1/policies', '/v1/agents', '/v1/principals', '/v1/approvals']) {
      const r = await svc.call(svc.adminToken, 'GET', path);
      assert.equal(r.status, 503, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body, { code: 'unavailable', message: STORE_UNAVAILABLE_MESSAGE, details: null });
    }
    const write = await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'while-down' });
    assert.equal(write.status, 503);
    assert.doesNotMatch(svc.logs(), /"admin request failed"/, 'an outage is not logged as an internal fault');
  } finally {
    await redis.start();
  }
  // ioredis reconnects on its own (every second at most); the API serves again without a restart.
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await svc.call(svc.adminToken, 'GET', '/v1/policies')).status;
    if (status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(status, 200);
});

test('a command that times out answers 503 as well', async () => {
  const pauser = new Redis(redis.url);
  const slow = new Redis(redis.url, { commandTimeout: 100, maxRetriesPerRequest: 1 });
  const admin: Principal = { id: 'root', name: 'root', roles: ['admin'], groups: [] };
  const server = await startAdminServer({
    routes: [
      {
        method: 'GET',
        path: '/v1/slow',
        roles: ['admin'],
        tag: 'test',
        summary: 'reads Redis through a client with a command timeout',
        handler: async () => ({ body: { value: await slow.get('anything') } }),
      },
    ],
    authenticate: tokenTable({ root: admin }),
  });
  try {
    await slow.ping();
    await pauser.call('CLIENT', 'PAUSE', '1000', 'ALL');
    const res = await fetch(`${server.url}/v1/slow`, { headers: { authorization: 'Bearer root' } });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.deepEqual(await res.json(), { code: 'unavailable', message: STORE_UNAVAILABLE_MESSAGE, details: null });
  } finally {
    await pauser.call('CLIENT', 'UNPAUSE');
    await server.close();
    pauser.disconnect();
    slow.disconnect();
  }
});

test('only connection-level errors count as the store being unavailable', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  assert.equal(isStoreUnavailable(refused), true);
  assert.equal(isStoreUnavailable(new Error('Connection is closed.')), true);
  assert.equal(isStoreUnavailable(new Error('Command timed out')), true);
  const wrapped = Object.assign(new Error('Failed to refresh slots cache.'), { name: 'ClusterAllFailedError' });
  assert.equal(isStoreUnavailable(wrapped), true);
  assert.equal(isStoreUnavailable(new Error('wrapper', { cause: refused })), true);
  assert.equal(
    isStoreUnavailable(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
    false,
  );
  assert.equal(isStoreUnavailable(new TypeError('x is undefined')), false);
  assert.equal(isStoreUnavailable('ECONNREFUSED'), false);
});
