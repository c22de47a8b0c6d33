import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { AdminError } from '../../extproc/admin/errors.ts';
import { assertCanDecide } from '../../extproc/approvals/authorize.ts';
import type { ApprovalRequest } from '../../extproc/approvals/index.ts';
import { principalCommand } from '../../extproc/cli/commands/identity.ts';
import type { Principal } from '../../extproc/identity/principal.ts';
import { Principals } from '../../extproc/identity/principals.ts';
import { ensureAdminToken } from '../../extproc/service/bootstrap.ts';
import { ConfigError, loadConfig } from '../../extproc/service/config.ts';
import { runCommand } from '../harness/cli.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let client: Redis;
let svc: TestService;
const DAY_MS = 24 * 3600 * 1000;

before(async () => {
  redis = await startRedis({ appendonly: false });
  client = new Redis(redis.url);
  svc = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
});
after(async () => {
  await svc.close();
  client.disconnect();
  await redis.close();
});

test('an agent owner must be an existing principal id; a name is refused with a 400 naming the field', async () => {
  const alice = await svc.principal('alice', ['approver'], ['sre']);
  const byName = await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'owned-1', owner: 'alice' });
  assert.equal(byName.status, 400, JSON.stringify(byName.body));
  assert.equal(byName.body.code, 'invalid_request');
  assert.match(byName.body.message, /^owner: "alice" is not a principal id \(it is the name of usr_/);
  assert.equal(byName.body.details.field, 'owner');
  assert.deepEqual(byName.body.details.principalsWithThisName, [alice.id]);

  const unknown = await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'owned-1', owner: 'nobody' });
  assert.equal(unknown.status, 400);
  assert.deepEqual(unknown.body.details, { field: 'owner' });
  assert.equal((await svc.call(svc.adminToken, 'GET', '/v1/agents/owned-1')).status, 404, 'nothing was written');

  const byId = await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'owned-1', owner: alice.id });
  assert.equal(byId.status, 201);
  assert.equal(byId.body.owner, alice.id);

  const badPut = await svc.call(svc.adminToken, 'PUT', '/v1/agents/owned-1', { id: 'owned-1', owner: 'alice' });
  assert.equal(badPut.status, 400);
  assert.equal(badPut.body.details.field, 'owner');
  assert.equal((await svc.call(svc.adminToken, 'GET', '/v1/agents/owned-1')).body.owner, alice.id, 'unchanged');
  const goodPut = await svc.call(svc.adminToken, 'PUT', '/v1/agents/owned-1', { id: 'owned-1', disabled: true });
  assert.equal(goodPut.status, 200, 'an update without an owner keeps the recorded one');
  assert.equal(goodPut.body.owner, alice.id);
  const cleared = await svc.call(svc.adminToken, 'PUT', '/v1/agents/owned-1', { id: 'owned-1', owner: '' });
  assert.equal(cleared.status, 200, 'an empty owner clears it');
  assert.equal(cleared.body.owner, undefined);
});

test('the owner of an agent recorded by name (before owners were checked) still cannot approve its requests', () => {
  const alice: Principal = { id: 'usr_a', name: 'alice', roles: ['approver'], groups: ['sre'] };
  const bob: Principal = { id: 'usr_b', name: 'bob', roles: ['approver'], groups: ['sre'] };
  const req = { id: 'apr_1', group: 'sre', agent: 'legacy-agent', agentOwner: 'alice' } as ApprovalRequest;
  assert.throws(
    () => assertCanDecide(alice, req),
    (e: unknown) => e instanceof AdminError && (e.details as { reason: string }).reason === 'self_approval',
  );
  assert.doesNotThrow(() => assertCanDecide(bob, req));
  assert.throws(() => assertCanDecide(alice, { ...req, agentOwner: 'usr_a' }), /your own identity/);
});

test('principal tokens expire after the configured lifetime (30 days by default) with a clear 401', async () => {
  const created = await svc.call(svc.adminToken, 'POST', '/v1/principals', { name: 'eve', roles: ['auditor'] });
  assert.equal(created.status, 201);
  const lifetime = Date.parse(created.body.tokenExpiresAt) - Date.now();
  assert.ok(Math.abs(lifetime - 30 * DAY_MS) < 60_000, `default lifetime is 30 days, got ${lifetime} ms`);
  assert.equal((await svc.call(created.body.token, 'GET', '/v1/sessions')).status, 200);

  // A token issued 31 days ago by the same store.
  const past = new Principals(client, { now: () => Date.now() - 31 * DAY_MS });
  const { token, expiresAt } = await past.create({ name: 'old-timer', roles: ['auditor'] });
  const r = await svc.call(token, 'GET', '/v1/sessions');
  assert.equal(r.status, 401);
  assert.equal(r.body.code, 'unauthenticated');
  assert.equal(r.body.message.startsWith(`this admin token expired at ${expiresAt}`), true, r.body.message);
  assert.equal(r.body.details.reason, 'expired');

  // A shorter configured lifetime applies to tokens issued from then on.
  const short = new Principals(client, { tokenTtlSeconds: 60 });
  const s = await short.create({ name: 'brief', roles: ['auditor'] });
  assert.ok(Math.abs(Date.parse(s.expiresAt) - Date.now() - 60_000) < 5_000);
  assert.throws(
    () => loadConfig({ env: {}, overrides: { principals: { tokenTtl: '30 days' } } }),
    (e: unknown) => e instanceof ConfigError && /principals\/tokenTtl/.test(e.message),
  );
  assert.equal(loadConfig({ env: {} }).principals.tokenTtl, '720h');
});

test('revoke and rotate: through the API and the CLI; the old token gets a clear 401', async () => {
  const dana = await svc.principal('dana', ['auditor']);
  assert.equal((await svc.call(dana.token, 'GET', '/v1/sessions')).status, 200);

  const forbidden = await svc.call(dana.token, 'POST', `/v1/principals/${dana.id}/revoke`);
  assert.equal(forbidden.status, 403, 'only admins revoke');
  const revoked = await svc.call(svc.adminToken, 'POST', `/v1/principals/${dana.id}/revoke`);
  assert.deepEqual(revoked.body, { id: dana.id, revoked: 1 });
  const after = await svc.call(dana.token, 'GET', '/v1/sessions');
  assert.equal(after.status, 401);
  assert.match(after.body.message, /^this admin token was revoked at .*portcullis principal rotate usr_/);
  assert.equal(after.body.details.reason, 'revoked');

  const rotated = await svc.call(svc.adminToken, 'POST', `/v1/principals/${dana.id}/rotate`);
  assert.equal(rotated.status, 200);
  assert.equal(rotated.body.revoked, 0, 'nothing left to revoke');
  assert.equal((await svc.call(rotated.body.token, 'GET', '/v1/sessions')).status, 200);
  assert.equal((await svc.call(dana.token, 'GET', '/v1/sessions')).status, 401);

  const missing = await svc.call(svc.adminToken, 'POST', '/v1/principals/usr_nope/revoke');
  assert.equal(missing.status, 404);

  const env = { PORTCULLIS_ADMIN_URL: svc.adminUrl, PORTCULLIS_TOKEN: svc.adminToken };
  const cliRotate = await runCommand(principalCommand, ['rotate', dana.id], env);
  assert.equal(cliRotate.code, 0, cliRotate.err);
  const newToken = cliRotate.out.trim();
  assert.match(newToken, /^pcu_/);
  assert.match(cliRotate.err, /1 earlier token\(s\) revoked; the new token above is shown only once and expires /);
  assert.equal((await svc.call(rotated.body.token, 'GET', '/v1/sessions')).status, 401, 'rotation revoked it');
  assert.equal((await svc.call(newToken, 'GET', '/v1/sessions')).status, 200);

  const cliRevoke = await runCommand(principalCommand, ['revoke', dana.id], env);
  assert.equal(cliRevoke.code, 0, cliRevoke.err);
  assert.equal(cliRevoke.out, `revoked 1 token(s) of principal ${dana.id}\n`);
  assert.equal((await svc.call(newToken, 'GET', '/v1/sessions')).status, 401);
  const usage = await runCommand(principalCommand, ['revoke'], env);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /missing required argument 'principal-id'/);
});

test('the bootstrap admin token expires too; with no usable admin token left, a restart writes a new one', async () => {
  const r2 = await startRedis({ appendonly: false });
  const c2 = new Redis(r2.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-boot-'));
  const logger = pino({ level: 'silent' });
  try {
    const principals = new Principals(c2, { tokenTtlSeconds: 3600 });
    const path = await ensureAdminToken(principals, dataDir, logger);
    assert.ok(path && existsSync(path));
    const first = readFileSync(path, 'utf8').trim();
    assert.equal((await principals.authenticate(first)).id, 'admin');
    assert.equal(await ensureAdminToken(principals, dataDir, logger), null, 'a usable admin token exists');

    // An hour later the token has expired: it is refused, and the next start issues a new one for the same admin.
    const later = new Principals(c2, { tokenTtlSeconds: 3600, now: () => Date.now() + 3601_000 });
    await assert.rejects(later.authenticate(first), /this admin token expired at/);
    assert.ok(await ensureAdminToken(later, dataDir, logger));
    const second = readFileSync(path, 'utf8').trim();
    assert.notEqual(second, first);
    assert.equal((await later.authenticate(second)).id, 'admin');
    assert.equal((await principals.list()).length, 1, 'no second admin principal');

    // Revoking every admin token has the same way back.
    await principals.revoke('admin');
    await assert.rejects(principals.authenticate(second), /was revoked at/);
    assert.ok(await ensureAdminToken(principals, dataDir, logger));
    assert.equal((await principals.authenticate(readFileSync(path, 'utf8').trim())).id, 'admin');

    // Tokens stored before tokens expired (a bare id) get a lifetime from the upgrade on: at start, or on first use
    // (an older replica may still write them during a rolling upgrade); and revoking their principal revokes them.
    await c2.hset('portcullis:principal-tokens', 'legacy-digest', 'admin');
    assert.equal(await principals.migrateLegacyTokens(), 1);
    const migrated = JSON.parse((await c2.hget('portcullis:principal-tokens', 'legacy-digest')) ?? '{}');
    assert.equal(migrated.id, 'admin');
    assert.ok(Date.parse(migrated.expiresAt) > Date.now());
    const legacyToken = 'pcu_legacy-token-from-an-older-version';
    const legacyDigest = createHash('sha256').update(legacyToken).digest('hex');
    await c2.hset('portcullis:principal-tokens', legacyDigest, 'admin');
    assert.equal((await principals.authenticate(legacyToken)).id, 'admin');
    assert.match((await c2.hget('portcullis:principal-tokens', legacyDigest)) ?? '', /"expiresAt"/);
    const other = 'pcu_another-legacy-token';
    await c2.hset('portcullis:principal-tokens', createHash('sha256').update(other).digest('hex'), 'admin');
    await principals.revoke('admin');
    await assert.rejects(principals.authenticate(other), /was revoked at/);
    await assert.rejects(principals.authenticate(legacyToken), /was revoked at/);

    // Recovery issues a token without revoking others: replicas starting together do not undo each other.
    const a = await principals.issue('admin');
    const b = await principals.issue('admin');
    assert.equal((await principals.authenticate(a.token)).id, 'admin');
    assert.equal((await principals.authenticate(b.token)).id, 'admin');
  } finally {
    c2.disconnect();
    await r2.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
