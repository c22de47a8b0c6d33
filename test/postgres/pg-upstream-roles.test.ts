/**
 * Short-lived upstream roles (docs/postgres.md, "Short-lived upstream roles"): with `roles: {group}` on the target's
 * credential, an agent's session runs as a role the gateway created for the agent (member of the group, VALID UNTIL its
 * newest token's expiry), the vault's role serves only the role administration, and a sweep drops the role once the
 * agent's tokens are revoked or expired, ending its sessions. Against the real server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { waitFor } from '../harness/ports.ts';
import { type PgStack, PG_TARGET, startPgStack } from './pg-stack.ts';

const ADMIN = { user: 'gw_admin', password: 'gw-admin-secret-3e7d' };
const GROUP = 'app_agents';
const ROLE = /^pc_planner_1_[0-9a-f]{10}$/;

let s: PgStack;
let su: pg.Client;

before(async () => {
  // Sweeps may run at every login, so that the tests need not wait for the default interval.
  s = await startPgStack({
    policies: ['examples/policies/postgres-guardrails.yaml'],
    role: ADMIN,
    roles: { group: GROUP },
    adapter: { roleSweepEveryMs: 0 },
  });
  su = await s.db.superuser('app');
  // What a database administrator sets up: an admin role that may create roles and end their sessions, and the group
  // that holds the agents' privileges.
  await su.query(`CREATE ROLE ${ADMIN.user} LOGIN CREATEROLE PASSWORD '${ADMIN.password}'`);
  await su.query(`GRANT pg_signal_backend TO ${ADMIN.user}`);
  await su.query(`CREATE ROLE ${GROUP} NOLOGIN`);
  await su.query(`GRANT SELECT ON customers, orders TO ${GROUP}`);
});

after(async () => {
  await su?.end();
  await s?.close();
});

const roleRow = async (name: string) =>
  (
    await su.query(
      `SELECT rolname, rolsuper, rolcreaterole, rolvaliduntil,
              pg_has_role(rolname, '${GROUP}', 'MEMBER') AS in_group
         FROM pg_roles WHERE rolname = $1`,
      [name],
    )
  ).rows[0] as
    | { rolname: string; rolsuper: boolean; rolcreaterole: boolean; rolvaliduntil: Date; in_group: boolean }
    | undefined;

test('the session runs as the agent role, valid until the token expires; the vault role serves no query', async () => {
  const token = await s.issueToken('20m');
  const c = s.client({ password: token.token });
  await c.connect();
  try {
    const who = (await c.query('SELECT current_user AS u, session_user AS s')).rows[0] as { u: string; s: string };
    assert.match(who.u, ROLE);
    assert.equal(who.s, who.u);
    // The group's privileges reach the agent's role.
    assert.equal((await c.query('SELECT count(*)::int AS n FROM orders')).rows[0].n > 0, true);

    const backends = (
      await su.query(
        "SELECT usename FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename LIKE 'pc_%'",
      )
    ).rows.map((r: { usename: string }) => r.usename);
    assert.ok(backends.includes(who.u), `pg_stat_activity shows ${JSON.stringify(backends)}`);

    const role = await roleRow(who.u);
    assert.ok(role);
    assert.equal(role.rolsuper, false);
    assert.equal(role.rolcreaterole, false);
    assert.equal(role.in_group, true);
    // VALID UNTIL is the newest live token's expiry: the stack's first token (30 minutes) outlives this one (20).
    const expiresAt = Date.parse(token.expiresAt);
    assert.ok(role.rolvaliduntil.getTime() > expiresAt + 5 * 60_000, role.rolvaliduntil.toISOString());
    assert.ok(role.rolvaliduntil.getTime() <= Date.now() + 30 * 60_000 + 1000, role.rolvaliduntil.toISOString());

    // Every statement the vault's role ever ran is the gateway's role administration.
    const adminQueries = (
      await su.query('SELECT query FROM pg_stat_activity WHERE usename = $1', [ADMIN.user])
    ).rows.map((r: { query: string }) => r.query.trimStart());
    assert.ok(adminQueries.length > 0, 'the gateway logged in as the admin role to create the agent role');
    for (const q of adminQueries)
      assert.match(q, /^(DO \$pc_|SELECT r\.rolname|SELECT pg_catalog\.pg_terminate_backend|DROP ROLE)/);
  } finally {
    await c.end();
  }
});

/** A second agent with one token, logged in: its client and its role. */
async function agentSession(agent: string, ttl: string) {
  const admin = s.svc.adminToken;
  assert.equal((await s.svc.call(admin, 'POST', '/v1/agents', { id: agent, groups: ['agents'] })).status, 201);
  const issued = await s.svc.call(admin, 'POST', '/v1/tokens', { agent, targets: [PG_TARGET], ttl });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const c = s.client({ user: agent, password: issued.body.token });
  await c.connect();
  const role = ((await c.query('SELECT current_user AS u')).rows[0] as { u: string }).u;
  assert.ok(await roleRow(role));
  return {
    c,
    role,
    token: issued.body.token as string,
    jti: issued.body.jti as string,
    expiresAt: issued.body.expiresAt as string,
  };
}

test('a revoked agent loses its role at the next sweep, and its open session ends', async () => {
  const { c, role, token, jti } = await agentSession('revoked-1', '20m');
  assert.match(role, /^pc_revoked_1_[0-9a-f]{10}$/);
  const ended = new Promise<Error>((resolve) => c.on('error', resolve));
  assert.equal((await s.svc.call(s.svc.adminToken, 'DELETE', `/v1/tokens/${jti}`)).status, 200);

  // Any login to the target starts a sweep; this one is refused (its token is revoked).
  const refused = s.client({ user: 'revoked-1', password: token });
  await assert.rejects(refused.connect(), /revoked/);
  await waitFor(async () => (await roleRow(role)) === undefined, 30_000, 'the revoked agent role to be dropped');
  // The server ended the role's session (pg_terminate_backend): the client sees its connection end.
  await ended;
  await c.end().catch(() => {});
});

test('an agent whose token expired loses its role at the next sweep', async () => {
  const { c, role, expiresAt } = await agentSession('brief-1', '3s');
  assert.match(role, /^pc_brief_1_[0-9a-f]{10}$/);
  await c.end();
  await waitFor(() => Date.now() > Date.parse(expiresAt), 30_000, 'the token to expire');

  // A later login (another agent's) sweeps the lapsed role.
  const fresh = await s.issueToken('10m');
  await waitFor(
    async () => {
      const other = s.client({ password: fresh.token });
      await other.connect();
      await other.end();
      return (await roleRow(role)) === undefined;
    },
    30_000,
    'the expired agent role to be dropped',
  );
});
