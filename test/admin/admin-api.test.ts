import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Role } from '../../extproc/identity/principal.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;
const VAULT_VALUE = 'upstream-secret-value-7f3a9c';
const secretDir = mkdtempSync(join(tmpdir(), 'portcullis-vault-'));
const tokens: Record<Role | 'none', string> = { admin: '', 'policy-author': '', approver: '', auditor: '', none: '' };

before(async () => {
  redis = await startRedis();
  writeFileSync(join(secretDir, 'kube-token'), VAULT_VALUE);
  svc = await startTestService({
    redisUrl: redis.url,
    config: { bootstrap: { policies: ['examples/policies/*.yaml'], targets: ['examples/targets.yaml'] } },
  });
  for (const role of ['admin', 'policy-author', 'approver', 'auditor'] as Role[])
    tokens[role] = (await svc.principal(`${role}-user`, [role], ['sre'])).token;
});
after(async () => {
  await svc.close();
  await redis.close();
});

const policySource = 'name: api-test\nrules:\n  - name: reads\n    when: k8s.verb == "get"\n    action: allow\n';

// One row per endpoint family: which roles may call it. Every other role must get 403, an agent token 401.
const MATRIX: { method: string; path: string; body?: unknown; allowed: Role[] }[] = [
  { method: 'GET', path: '/v1/policies', allowed: ['admin', 'policy-author', 'auditor'] },
  {
    method: 'POST',
    path: '/v1/policies/validate',
    body: { source: policySource },
    allowed: ['admin', 'policy-author'],
  },
  {
    method: 'POST',
    path: '/v1/policies/evaluate',
    body: { request: { k8s: { verb: 'get' } } },
    allowed: ['admin', 'policy-author'],
  },
  { method: 'GET', path: '/v1/agents', allowed: ['admin'] },
  { method: 'GET', path: '/v1/targets', allowed: ['admin'] },
  { method: 'POST', path: '/v1/tokens', body: { agent: 'planner-1', targets: ['kube-dev'] }, allowed: ['admin'] },
  { method: 'GET', path: '/v1/principals', allowed: ['admin'] },
  { method: 'GET', path: '/v1/sessions', allowed: ['admin', 'auditor'] },
  { method: 'GET', path: '/v1/approvals', allowed: ['admin', 'approver', 'auditor'] },
];

test('every endpoint family checks its roles; other roles get 403', async () => {
  for (const row of MATRIX) {
    for (const role of ['admin', 'policy-author', 'approver', 'auditor'] as Role[]) {
      const r = await svc.call(tokens[role], row.method, row.path, row.body);
      const expectAllowed = row.allowed.includes(role);
      assert.equal(
        r.status < 300,
        expectAllowed,
        `${role} ${row.method} ${row.path} → ${r.status} ${JSON.stringify(r.body)}`,
      );
      if (!expectAllowed) {
        assert.equal(r.status, 403);
        assert.equal(r.body.code, 'forbidden');
      }
    }
  }
});

test('agent tokens, unknown tokens and missing tokens are refused by every endpoint', async () => {
  const issued = await svc.call(svc.adminToken, 'POST', '/v1/tokens', { agent: 'planner-1', targets: ['kube-dev'] });
  assert.equal(issued.status, 201);
  for (const row of MATRIX) {
    const asAgent = await svc.call(issued.body.token, row.method, row.path, row.body);
    assert.equal(asAgent.status, 401, `${row.path}`);
    assert.match(asAgent.body.message, /agent tokens are not accepted/);
    assert.equal((await svc.call('pcu_not-a-real-token', row.method, row.path, row.body)).status, 401);
    const none = await fetch(svc.adminUrl + row.path, { method: row.method });
    assert.equal(none.status, 401);
  }
  assert.equal((await svc.call(issued.body.token, 'GET', '/openapi.json')).status, 401);
});

test('policy lifecycle through the API: create, invalid with line and column, versions, diff, rollback, evaluate', async () => {
  const author = tokens['policy-author'];
  const created = await svc.call(author, 'POST', '/v1/policies', { source: policySource });
  assert.equal(created.status, 201);
  assert.equal(created.body.author, 'policy-author-user');
  const bad = await svc.call(author, 'POST', '/v1/policies', {
    source: 'name: api-test\nrules:\n  - name: r\n    when: k8s.verb > 1\n    action: allow\n',
  });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.code, 'invalid_policy');
  assert.deepEqual(bad.body.details.problems[0], {
    line: 4,
    col: 11,
    path: '/rules/0/when',
    message: 'CEL: no such overload: string > int',
  });
  const v2 = await svc.call(author, 'PUT', '/v1/policies/api-test', {
    source: policySource.replace('"get"', '"list"'),
  });
  assert.equal(v2.body.version, 2);
  const diff = await svc.call(author, 'GET', '/v1/policies/api-test/diff?from=1&to=2');
  assert.match(diff.body.diff, /- {4}when: k8s.verb == "get"\n\+ {4}when: k8s.verb == "list"/);
  const rb = await svc.call(author, 'POST', '/v1/policies/api-test/rollback', { version: 1 });
  assert.deepEqual([rb.body.version, rb.body.rolledBackFrom], [3, 1]);
  const versions = await svc.call(tokens.auditor, 'GET', '/v1/policies/api-test/versions');
  assert.deepEqual(
    versions.body.map((v: { version: number }) => v.version),
    [1, 2, 3],
  );
  const evald = await svc.call(author, 'POST', '/v1/policies/evaluate', {
    request: {
      k8s: { isResourceRequest: true, verb: 'delete', resource: 'namespaces', name: 'prod' },
      target: { name: 'kube-dev', kind: 'kubernetes' },
    },
  });
  assert.equal(evald.body.action, 'deny');
  assert.equal(evald.body.rule, 'no-namespace-deletion');
  const asSent = await svc.call(author, 'POST', '/v1/policies/evaluate', {
    request: {
      k8s: { method: 'DELETE', path: '/api/v1/namespaces/prod' },
      target: { name: 'kube-dev', kind: 'kubernetes' },
    },
  });
  assert.deepEqual(
    [asSent.body.action, asSent.body.rule],
    ['deny', 'no-namespace-deletion'],
    'a request given as sent is classified',
  );
  const refused = await svc.call(author, 'POST', '/v1/policies/evaluate', {
    request: { k8s: { method: 'GET', path: '/api//v1/pods' } },
  });
  assert.equal(refused.status, 400);
  assert.match(refused.body.message, /refused by the gateway/);
  const badBody = await svc.call(author, 'POST', '/v1/policies', { sauce: 'x' });
  assert.equal(badBody.status, 400);
  assert.equal(badBody.body.code, 'invalid_request');
});

test('vault references are never resolved into any response or log', async () => {
  const target = {
    name: 'kube-vault',
    kind: 'kubernetes',
    address: 'https://127.0.0.1:1',
    credential: { kind: 'static-token', tokenRef: `file:${join(secretDir, 'kube-token')}` },
  };
  const created = await svc.call(svc.adminToken, 'POST', '/v1/targets', target);
  assert.equal(created.status, 201);
  const all = [
    created,
    await svc.call(svc.adminToken, 'GET', '/v1/targets'),
    await svc.call(svc.adminToken, 'GET', '/v1/targets/kube-vault'),
  ];
  for (const r of all) {
    const text = JSON.stringify(r.body);
    assert.ok(text.includes('file:'), 'the reference itself is shown');
    assert.ok(!text.includes(VAULT_VALUE), 'the secret is not');
  }
  const badRef = await svc.call(svc.adminToken, 'POST', '/v1/targets', {
    ...target,
    name: 'kube-bad',
    credential: { kind: 'static-token', tokenRef: VAULT_VALUE },
  });
  assert.equal(badRef.status, 400);
  assert.ok(!JSON.stringify(badRef.body).includes(VAULT_VALUE), 'a rejected value is not echoed back');
  assert.ok(!svc.logs().includes(VAULT_VALUE));
});

test('the OpenAPI document is generated from the routes and lists their roles', async () => {
  const r = await svc.call(tokens.auditor, 'GET', '/openapi.json');
  assert.equal(r.status, 200);
  assert.equal(r.body.openapi, '3.1.0');
  assert.deepEqual(r.body.paths['/v1/policies/{name}/rollback'].post['x-roles'], ['policy-author', 'admin']);
  assert.ok(r.body.paths['/v1/sessions']);
  assert.ok(r.body.paths['/v1/approvals/{id}/approve']);
});
