import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jsonDepthExceeds } from '../../extproc/admin/server.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;

before(async () => {
  redis = await startRedis({ appendonly: false });
  svc = await startTestService({
    redisUrl: redis.url,
    config: { bootstrap: { policies: ['examples/policies/*.yaml'], targets: [] } },
  });
});
after(async () => {
  await svc.close();
  await redis.close();
});

const deepJson = (depth: number): string => `{"request":{"k8s":{"body":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
const aliasBomb = [
  'name: bomb',
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
  'rules: []',
].join('\n');

// Each row: a bad input, the status and code it must get, and what the message must say.
const BAD: { name: string; method: string; path: string; body?: string; status: number; code: string; says: RegExp }[] =
  [
    {
      name: 'malformed % escape in a path parameter',
      method: 'GET',
      path: '/v1/policies/%E0%A4%A',
      status: 400,
      code: 'invalid_request',
      says: /path parameter "name" is not valid percent-encoding/,
    },
    {
      name: 'non-numeric diff version',
      method: 'GET',
      path: '/v1/policies/no-namespace-deletion/diff?from=abc',
      status: 400,
      code: 'invalid_request',
      says: /query parameter "from" must be a positive integer/,
    },
    {
      name: 'fractional diff version',
      method: 'GET',
      path: '/v1/policies/no-namespace-deletion/diff?from=1&to=1.5',
      status: 400,
      code: 'invalid_request',
      says: /query parameter "to" must be a positive integer/,
    },
    {
      name: 'missing diff version',
      method: 'GET',
      path: '/v1/policies/no-namespace-deletion/diff',
      status: 400,
      code: 'invalid_request',
      says: /query parameter "from" must be a positive integer/,
    },
    {
      name: '10k-deep JSON body',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: deepJson(10_000),
      status: 400,
      code: 'invalid_request',
      says: /request body nests deeper than 64 levels/,
    },
    {
      name: 'non-integer ssh.forwardPort in a sample',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: JSON.stringify({ request: { ssh: { forwardPort: 1.5 } } }),
      status: 400,
      code: 'invalid_request',
      says: /\/request\/ssh\/forwardPort must be integer/,
    },
    {
      name: 'string ssh.forwardPort in a sample',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: JSON.stringify({ request: { ssh: { forwardPort: 'abc' } } }),
      status: 400,
      code: 'invalid_request',
      says: /\/request\/ssh\/forwardPort must be integer/,
    },
    {
      name: 'non-string k8s.path in a sample',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: JSON.stringify({ request: { k8s: { method: 'GET', path: 5 } } }),
      status: 400,
      code: 'invalid_request',
      says: /\/request\/k8s\/path must be string/,
    },
    {
      name: 'non-string k8s.method in a sample',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: JSON.stringify({ request: { k8s: { method: 5, path: '/api/v1/pods' } } }),
      status: 400,
      code: 'invalid_request',
      says: /\/request\/k8s\/method must be string/,
    },
    {
      name: 'YAML alias bomb in a policy source',
      method: 'POST',
      path: '/v1/policies',
      body: JSON.stringify({ source: aliasBomb }),
      status: 422,
      code: 'invalid_policy',
      says: /the policy is invalid/,
    },
    {
      name: 'YAML alias bomb in an evaluate source',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: JSON.stringify({ request: {}, sources: [aliasBomb] }),
      status: 422,
      code: 'invalid_policy',
      says: /the policy is invalid/,
    },
    {
      name: 'YAML alias bomb in a replaced policy',
      method: 'PUT',
      path: '/v1/policies/bomb',
      body: JSON.stringify({ source: aliasBomb }),
      status: 422,
      code: 'invalid_policy',
      says: /the policy is invalid/,
    },
    {
      name: 'malformed JSON body',
      method: 'POST',
      path: '/v1/policies/evaluate',
      body: '{"request":',
      status: 400,
      code: 'invalid_request',
      says: /request body is not valid JSON/,
    },
  ];

test('every bad input gets a 4xx with {code, message, details}, never a 500', async () => {
  for (const row of BAD) {
    const res = await fetch(svc.adminUrl + row.path, {
      method: row.method,
      headers: {
        authorization: `Bearer ${svc.adminToken}`,
        ...(row.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: row.body,
    });
    const text = await res.text();
    const body = JSON.parse(text) as { code: string; message: string; details: unknown };
    assert.equal(res.status, row.status, `${row.name}: ${res.status} ${text.slice(0, 300)}`);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'message'], row.name);
    assert.equal(body.code, row.code, row.name);
    assert.match(body.message, row.says, row.name);
  }
  // The service is still healthy and nothing was logged as an internal failure.
  assert.equal((await svc.call(svc.adminToken, 'GET', '/v1/policies')).status, 200);
  assert.doesNotMatch(svc.logs(), /admin request failed/);
});

test('the alias bomb is reported as a policy problem by validate', async () => {
  const r = await svc.call(svc.adminToken, 'POST', '/v1/policies/validate', { source: aliasBomb });
  assert.equal(r.status, 200);
  assert.equal(r.body.valid, false);
  assert.match(r.body.problems[0].message, /YAML aliases/);
});

test('the JSON depth check counts brackets outside strings only', () => {
  assert.equal(jsonDepthExceeds('{"a":[[1]]}', 3), false);
  assert.equal(jsonDepthExceeds('{"a":[[[1]]]}', 3), true);
  assert.equal(jsonDepthExceeds('{"a":"[[[[[{{{{\\"[[[["}', 1), false, 'brackets and escaped quotes inside strings');
  assert.equal(jsonDepthExceeds('[{}, {}, {}, {}]', 2), false, 'siblings do not add up');
});
