import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let a: TestService;
let b: TestService;
before(async () => {
  redis = await startRedis();
  a = await startTestService({ redisUrl: redis.url });
  b = await startTestService({ redisUrl: redis.url });
});
after(async () => {
  await a.close();
  await b.close();
  await redis.close();
});

const sample = {
  request: { k8s: { isResourceRequest: true, verb: 'delete', resource: 'pods', namespace: 'staging' } },
};

test('a policy written through one instance is enforced by another within a second, without restart', async () => {
  const author = await a.principal('author', ['policy-author']);
  // The two instances share one Redis, so a principal created on A authenticates on B too.
  assert.equal((await b.call(author.token, 'POST', '/v1/policies/evaluate', sample)).body.action, 'deny');
  const written = await a.call(author.token, 'POST', '/v1/policies', {
    source: 'name: dev-deletes\nrules:\n  - { name: dev, when: k8s.namespace == "staging", action: allow }\n',
  });
  assert.equal(written.status, 201);
  const started = Date.now();
  await waitFor(
    async () => (await b.call(author.token, 'POST', '/v1/policies/evaluate', sample)).body.action === 'allow',
    1000,
    'instance B to enforce the new policy',
  );
  assert.ok(Date.now() - started <= 1000);
  const rolledBack = await a.call(author.token, 'DELETE', '/v1/policies/dev-deletes');
  assert.equal(rolledBack.status, 200);
  await waitFor(
    async () => (await b.call(author.token, 'POST', '/v1/policies/evaluate', sample)).body.action === 'deny',
    1000,
    'instance B to drop the deleted policy',
  );
});
