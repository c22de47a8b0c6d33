/**
 * The admin API's OpenAPI document, as the running service serves it, passes Redocly's linter with its recommended
 * rules: every operation has an operationId, its query parameters and its error responses.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;
let doc: any;
before(async () => {
  redis = await startRedis();
  svc = await startTestService({ redisUrl: redis.url });
  doc = (await svc.call(svc.adminToken, 'GET', '/openapi.json')).body;
});
after(async () => {
  await svc.close();
  await redis.close();
});

test('the recommended Redocly rules report no error and no warning', async () => {
  const problems = await lintFromString({
    source: JSON.stringify(doc),
    absoluteRef: 'openapi.json',
    config: await createConfig({ extends: ['recommended'] }),
  });
  const lines = problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`);
  assert.deepEqual(lines, []);
});

test('query parameters are declared where the routes read them', () => {
  const names = (path: string, method = 'get'): string[] =>
    (doc.paths[path][method].parameters ?? [])
      .filter((p: { in: string }) => p.in === 'query')
      .map((p: { name: string }) => p.name);
  assert.deepEqual(names('/v1/policies/{name}/diff').sort(), ['from', 'to']);
  assert.ok(names('/v1/sessions').includes('cursor'));
  assert.ok(names('/v1/approvals').includes('state'));
});
