/**
 * The PostgreSQL path end to end with real clients: psql and the pg driver connect to the network Envoy stand-in as
 * the agent (its token as password), through the service, to a real PostgreSQL, under the sample policy
 * (examples/policies/postgres-guardrails.yaml).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { actionFingerprint } from '../../extproc/approvals/fingerprint.ts';
import { int32 } from '../../extproc/postgres/pg-wire.ts';
import { PG_APP_OWNER } from '../harness/postgres.ts';
import { PG_TARGET, startPgStack, type PgStack } from './pg-stack.ts';

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

test('psql logs in with the agent token and runs a query; the server sees the real role and database', async () => {
  const r = await s.psql(['-At', '-c', 'SELECT current_user, current_database(), count(*) FROM orders']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), 'app_owner|app|20');
});

test('a wrong token, and the real database password, are refused with 28P01 and a message saying why', async () => {
  for (const password of ['not-a-token', PG_APP_OWNER.password]) {
    const r = await s.psql(['-c', 'SELECT 1'], { password });
    assert.equal(r.code, 2);
    assert.match(
      r.err,
      /FATAL: {2}password authentication failed for agent "planner-1": the password must be a valid agent token/,
    );
  }
  const c = s.client({ password: 'not-a-token' });
  await assert.rejects(c.connect(), (e: { code?: string }) => e.code === '28P01');
});

test('a revoked token is refused with the reason', async () => {
  const { token, jti } = await s.issueToken();
  assert.equal((await s.psql(['-c', 'SELECT 1'], { password: token })).code, 0);
  assert.equal((await s.svc.call(s.svc.adminToken, 'DELETE', `/v1/tokens/${jti}`)).status, 200);
  const r = await s.psql(['-c', 'SELECT 1'], { password: token });
  assert.equal(r.code, 2);
  assert.match(r.err, /FATAL: {2}the agent token .* has been revoked/);
});

test('a database other than the target is refused before anything reaches the server', async () => {
  const c = s.client({ database: 'postgres' });
  await assert.rejects(c.connect(), (e: { code?: string; message: string }) => {
    assert.equal(e.code, '28000');
    assert.match(e.message, /database "postgres" is not served here/);
    return true;
  });
});

test('refused statements get 42501 with the policy message and the same session goes on (psql)', async () => {
  const r = await s.psql([
    '-At',
    '-c',
    'DROP DATABASE app',
    '-c',
    'TRUNCATE orders',
    '-c',
    'DELETE FROM orders',
    '-c',
    "UPDATE orders SET note = 'all' WHERE true",
    '-c',
    "SELECT pg_read_file('/etc/passwd')",
    '-c',
    'PREPARE p AS DELETE FROM orders WHERE id = $1',
    '-c',
    'SELECT count(*) FROM orders',
  ]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), '20', 'the last statement ran on the same connection');
  const errors = r.err.trim().split('\n');
  assert.deepEqual(errors, [
    'ERROR:  Dropping databases or tables and truncating tables are not allowed for agents.',
    'ERROR:  Dropping databases or tables and truncating tables are not allowed for agents.',
    'ERROR:  UPDATE and DELETE need a WHERE clause.',
    'ERROR:  UPDATE and DELETE need a WHERE clause.',
    'ERROR:  Reading server files, large-object import/export, dblink, ending other sessions and set_config are not allowed.',
    'ERROR:  SQL-level PREPARE of a statement that writes is not allowed; send it with its values (extended protocol).',
  ]);
  const check = await s.db.superuser();
  try {
    assert.equal((await check.query('SELECT count(*)::int AS n FROM orders')).rows[0].n, 20);
    assert.equal((await check.query("SELECT count(*)::int AS n FROM orders WHERE note = 'all'")).rows[0].n, 0);
  } finally {
    await check.end();
  }
});

test('the pg driver (extended protocol, pipelined) gets refusals at Bind with SQLSTATE 42501 and goes on', async () => {
  const c = s.client();
  await c.connect();
  try {
    const results = await Promise.allSettled([
      c.query('SELECT id FROM orders WHERE id = $1', [3]),
      c.query('TRUNCATE orders'),
      c.query('DELETE FROM orders WHERE id = $1', [7]),
      c.query('SELECT $1::int + 1 AS n', [41]),
    ]);
    assert.deepEqual(results[0].status === 'fulfilled' && results[0].value.rows, [{ id: 3 }]);
    assert.equal(results[1].status, 'rejected');
    assert.equal((results[1] as PromiseRejectedResult).reason.code, '42501');
    assert.equal((results[2] as PromiseRejectedResult).reason.code, '42501');
    assert.match(
      (results[2] as PromiseRejectedResult).reason.message,
      /needs a human's approval.*approver group "dba"/,
    );
    assert.deepEqual(results[3].status === 'fulfilled' && results[3].value.rows, [{ n: 42 }]);
  } finally {
    await c.end();
  }
});

test('text the parser rejects is refused, and the session goes on', async () => {
  const c = s.client();
  await c.connect();
  try {
    await assert.rejects(c.query('SELEC 1'), (e: { code?: string; message: string }) => {
      assert.equal(e.code, '42601');
      assert.match(e.message, /could not parse this statement/);
      return true;
    });
    assert.deepEqual((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  } finally {
    await c.end();
  }
});

test('DELETE … WHERE id = $1 needs approval, shows the planner estimate, and runs once with exactly the approved value', async () => {
  const approver = await s.svc.principal('dba-1', ['approver'], ['dba']);
  const c = s.client();
  await c.connect();
  try {
    const del = (id: number) => c.query('DELETE FROM orders WHERE id = $1', [id]);
    const first = await del(7).then(
      () => assert.fail('ran without approval'),
      (e: { code?: string; message: string }) => e,
    );
    assert.equal(first.code, '42501');
    const id = /request (apr_[A-Za-z0-9]+)/.exec(first.message)?.[1];
    assert.ok(id, first.message);
    const shown = await s.svc.call(approver.token, 'GET', `/v1/approvals/${id}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.match(
      JSON.stringify(shown.body),
      /DELETE FROM orders WHERE id = \$1 \(1 bound value\) ≈ 1 row \(planner estimate\)/,
    );
    // The fingerprint an approver reads is keyed: the statement with a guessed value, hashed without the key, does
    // not give it (an unkeyed hash would let a reader test guesses at a bound SSN).
    const guess = (value: string): string => {
      const h = createHash('sha256').update('DELETE FROM orders WHERE id = $1');
      h.update(Buffer.concat([Buffer.from([1]), int32(value.length), Buffer.from(value)]));
      return actionFingerprint({
        protocol: 'postgres',
        target: PG_TARGET,
        canonical: `postgres-statement\0bound:1\0${h.digest('hex')}`,
      });
    };
    assert.match(shown.body.fingerprint, /^sha256:/);
    assert.notEqual(shown.body.fingerprint, guess('7'));
    assert.equal((await s.svc.call(approver.token, 'POST', `/v1/approvals/${id}/approve`, {})).status, 200);
    // The approval covers the statement with 7, not with 8.
    await assert.rejects(del(8), (e: { code?: string }) => e.code === '42501');
    assert.equal((await del(7)).rowCount, 1);
    await assert.rejects(del(7), (e: { code?: string; message: string }) => {
      assert.equal(e.code, '42501');
      assert.match(e.message, /approval/);
      return true;
    });
    assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM orders WHERE id = 8')).rows, [{ n: 1 }]);
  } finally {
    await c.end();
  }
});
