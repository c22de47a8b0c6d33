import { tokenTable } from '../harness/admin-auth.ts';
import { runCommand } from '../harness/cli.ts';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startAdminServer, type AdminServer } from '../../extproc/admin/server.ts';
import {
  approvalRoutes,
  createApprovals,
  type Approvals,
  type ApprovalRequest,
} from '../../extproc/approvals/index.ts';
import { approvalsCommand } from '../../extproc/cli/commands/approvals.ts';
import type { Principal } from '../../extproc/identity/principal.ts';
import { alice, audrey, auditSink, bob, carol, dave, paula, requirement, root, sqlAction } from './fixtures.ts';

/** Shaped like a real agent token (the header's typ is what the admin API's authenticate looks at). */
const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const AGENT_TOKEN = `${b64({ alg: 'EdDSA', typ: 'portcullis-agent+jwt', kid: 'k1' })}.${b64({ sub: 'agent-planner' })}.c2ln`;

const PRINCIPALS: Record<string, Principal> = { alice, bob, carol, dave, root, audrey, paula };

// HTTP calls use the bare names as tokens, the CLI calls `tok-<name>`.
const authenticate = tokenTable({
  ...PRINCIPALS,
  ...Object.fromEntries(Object.entries(PRINCIPALS).map(([name, p]) => [`tok-${name}`, p])),
});

let redisServer: TestRedis;
let redis: Redis;
let approvals: Approvals;
let admin: AdminServer;
const sink = auditSink();

before(async () => {
  redisServer = await startRedis({ appendonly: false });
  redis = new Redis(redisServer.url);
  approvals = createApprovals({ redis, audit: sink.audit });
  admin = await startAdminServer({ routes: approvalRoutes({ approvals }), authenticate });
});
after(async () => {
  await admin.close();
  await approvals.close();
  redis.disconnect();
  await redisServer.close();
});

async function call(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(admin.url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function cli(token: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runCommand(approvalsCommand, argv, { PORTCULLIS_ADMIN_URL: admin.url, PORTCULLIS_TOKEN: `tok-${token}` });
}

test('an agent token is refused by every approval endpoint, before anything happens', async () => {
  const { requestId } = await approvals.check(sqlAction('DELETE FROM agent_test'));
  const endpoints: [string, string][] = [
    ['GET', '/v1/approvals'],
    ['GET', `/v1/approvals/${requestId}`],
    ['POST', `/v1/approvals/${requestId}/approve`],
    ['POST', `/v1/approvals/${requestId}/deny`],
    ['POST', `/v1/approvals/${requestId}/revoke`],
  ];
  const routes = approvalRoutes({ approvals }).map((r) => `${r.method} ${r.path}`);
  assert.equal(routes.length, endpoints.length, 'every route is exercised');
  for (const [method, path] of endpoints) {
    const r = await call(AGENT_TOKEN, method, path, method === 'POST' ? { reason: 'let me' } : undefined);
    assert.equal(r.status, 401, `${method} ${path}`);
    assert.equal(r.body.code, 'unauthenticated');
  }
  assert.equal((await approvals.get(requestId, root)).state, 'pending');
  assert.deepEqual(sink.types(requestId), ['approval.requested']);
});

test("approve, deny and revoke over HTTP, with the service's refusals as API errors", async () => {
  const { requestId } = await approvals.check(
    sqlAction('DELETE FROM http_test', { requirement: requirement({ minApprovals: 2 }) }),
  );
  assert.equal(
    (await call('audrey', 'POST', `/v1/approvals/${requestId}/approve`)).status,
    403,
    'auditors cannot approve',
  );
  assert.equal((await call('root', 'POST', `/v1/approvals/${requestId}/approve`)).status, 403, 'admins cannot approve');
  const self = await call('alice', 'POST', `/v1/approvals/${requestId}/approve`, { reason: 'mine' });
  assert.equal(self.status, 403);
  assert.equal(self.body.details.reason, 'self_approval');
  const wrongGroup = await call('dave', 'POST', `/v1/approvals/${requestId}/approve`, {});
  assert.equal(wrongGroup.status, 403);
  assert.equal((await call('bob', 'POST', `/v1/approvals/${requestId}/approve`, { reason: 1 })).status, 400);
  assert.equal(
    (await call('bob', 'POST', `/v1/approvals/${requestId}/approve`, { reason: 'ok', extra: true })).status,
    400,
  );

  const first = await call('bob', 'POST', `/v1/approvals/${requestId}/approve`, { reason: 'ok' });
  assert.equal(first.status, 200);
  assert.equal(first.body.state, 'pending');
  const second = await call('carol', 'POST', `/v1/approvals/${requestId}/approve`);
  assert.equal(second.body.state, 'approved');
  const again = await call('carol', 'POST', `/v1/approvals/${requestId}/deny`);
  assert.equal(again.status, 409);
  assert.equal(again.body.code, 'conflict');
  assert.equal((await call('bob', 'GET', '/v1/approvals/apr_nope')).status, 404);
  const revoked = await call('root', 'POST', `/v1/approvals/${requestId}/revoke`, { reason: 'changed my mind' });
  assert.equal(revoked.body.state, 'revoked');
  assert.equal((await call('paula', 'GET', '/v1/approvals')).status, 403, 'policy authors do not see approvals');
  const listed = await call('audrey', 'GET', '/v1/approvals?state=revoked');
  assert.ok(listed.body.items.some((r: ApprovalRequest) => r.id === requestId));
  assert.equal((await call('bob', 'GET', '/v1/approvals?state=bogus')).status, 400);
});

test('the OpenAPI document describes the approval endpoints', async () => {
  const doc = (await call('bob', 'GET', '/openapi.json')).body;
  assert.ok(doc.paths['/v1/approvals']);
  assert.ok(doc.paths['/v1/approvals/{id}/approve']);
});

test('portcullis approvals list|show|approve|deny|revoke', async () => {
  const db = await approvals.check(sqlAction('DELETE FROM cli_test WHERE id = 7'));
  const sre = await approvals.check(sqlAction('DROP TABLE cli_test', { requirement: requirement({ group: 'sre' }) }));

  const list = await cli('carol', 'list');
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^ID\s+STATE/);
  assert.ok(list.out.includes(db.requestId));
  assert.ok(list.out.includes('DELETE FROM cli_test WHERE id = 7'));
  assert.ok(!list.out.includes(sre.requestId), 'approvers see only their groups');

  const asJson = JSON.parse((await cli('dave', 'list', '--json')).out) as ApprovalRequest[];
  assert.deepEqual(
    asJson.map((r) => r.id),
    [sre.requestId],
  );

  const show = await cli('carol', 'show', db.requestId);
  assert.equal(show.code, 0);
  assert.match(show.out, /state:\s+pending/);
  assert.match(show.out, /acting for alice/);

  const selfApprove = await cli('alice', 'approve', db.requestId);
  assert.equal(selfApprove.code, 1);
  assert.match(selfApprove.err, /^error: forbidden: /);

  const approve = await cli('carol', 'approve', db.requestId, '--reason', 'ticket OPS-12');
  assert.deepEqual(approve, { code: 0, out: `${db.requestId}: approved\n`, err: '' });
  assert.match((await cli('carol', 'show', db.requestId)).out, /approved by: Carol at .* — ticket OPS-12/);

  assert.equal((await cli('dave', 'deny', sre.requestId, '--reason=no')).out, `${sre.requestId}: denied\n`);
  const late = await cli('carol', 'revoke', sre.requestId);
  assert.equal(late.code, 1);
  assert.match(late.err, /forbidden/);
  assert.equal((await cli('root', 'revoke', db.requestId)).out, `${db.requestId}: revoked\n`);

  assert.equal((await cli('carol', 'frobnicate')).code, 2);
  assert.equal((await cli('carol', 'approve')).code, 2);
});
