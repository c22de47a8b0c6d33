/**
 * Other ways to run a statement than the ones the policy decides, each refused under the sample policy: a statement
 * prepared with the extended protocol run through SQL EXECUTE, a second Parse of a name the server keeps, a Bind of a
 * statement SQL PREPARE made, the names the gateway's own refusals use, settings that make the server read statement
 * text differently from the gateway (by SET, set_config or at startup), a setting name spelled in capitals, functions
 * that run SQL given as text, and COPY to or from a program or the server's files.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startupMessage } from '../../extproc/postgres/pg-wire.ts';
import { PG_TARGET, startPgStack, type PgStack } from './pg-stack.ts';
import { B, E, errorsOf, P, Q, rawConnection, rowsOf, S } from './pg-raw.ts';

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
  const su = await s.db.superuser();
  try {
    await su.query('CREATE ROLE other_role NOLOGIN');
    await su.query('GRANT other_role TO app_owner');
    for (const t of ['canary_a', 'canary_b', 'canary_c', 'canary_d'])
      await su.query(`CREATE TABLE ${t} (id int); ALTER TABLE ${t} OWNER TO app_owner`);
  } finally {
    await su.end();
  }
});
after(async () => {
  await s?.close();
});

async function exists(table: string): Promise<boolean> {
  const su = await s.db.superuser();
  try {
    return (await su.query('SELECT to_regclass($1) IS NOT NULL AS e', [table])).rows[0].e;
  } finally {
    await su.end();
  }
}

async function connected(): Promise<{ raw: ReturnType<typeof rawConnection>; client: pg.Client }> {
  const client = s.client();
  await client.connect();
  return { raw: rawConnection(client), client };
}

test('a statement prepared with Parse does not run through SQL EXECUTE (nor EXPLAIN ANALYZE EXECUTE)', async () => {
  const { raw } = await connected();
  try {
    const parsed = await raw.send([P('x1', 'DROP TABLE canary_a'), S()], 1);
    assert.deepEqual(errorsOf(parsed), [], 'the Parse itself is not a decision');
    for (const sql of ['EXECUTE x1', 'EXPLAIN ANALYZE EXECUTE x1', 'CREATE TABLE t2 AS EXECUTE x1']) {
      const errors = errorsOf(await raw.send([Q(sql)], 1));
      assert.equal(errors.length, 1, sql);
      assert.equal(errors[0].code, '0A000', sql);
      assert.match(errors[0].message, /EXECUTE of "x1", a statement prepared with the extended protocol/, sql);
    }
    // Bound, it is decided as what it is.
    const bound = errorsOf(await raw.send([B('', 'x1'), E(''), S()], 1));
    assert.equal(bound[0]?.code, '42501');
    assert.match(bound[0].message, /Dropping databases or tables/);
    assert.deepEqual(rowsOf(await raw.send([Q('SELECT 1')], 1)), ['1'], 'the session goes on');
  } finally {
    await raw.end();
  }
  assert.ok(await exists('canary_a'));
});

test('a second Parse of a name the server keeps is refused, and the Bind runs what the server has', async () => {
  const { raw } = await connected();
  try {
    // In one write: the server keeps the first `dup` and refuses the second (42P05); the Bind binds the first.
    const got = await raw.send(
      [
        P('dup', 'SET ROLE other_role'),
        S(),
        P('dup', 'SELECT 1'),
        S(),
        B('', 'dup'),
        E(''),
        S(),
        Q('SELECT current_user'),
      ],
      4,
    );
    const errors = errorsOf(got);
    assert.equal(errors.length, 2, JSON.stringify(got));
    assert.match(errors[0].message, /prepared statement "dup" already exists/);
    assert.match(errors[1].message, /Changing role/);
    assert.deepEqual(rowsOf(got), ['app_owner']);
  } finally {
    await raw.end();
  }
});

test('a Parse the server fails leaves nothing for a later Bind, and a statement SQL PREPARE made is not bound', async () => {
  const { raw } = await connected();
  try {
    const failed = await raw.send([P('gone', 'SELECT * FROM no_such_table'), S()], 1);
    assert.equal(errorsOf(failed)[0]?.code, '42P01');
    const bindGone = errorsOf(await raw.send([B('', 'gone'), E(''), S()], 1));
    assert.match(bindGone[0]?.message ?? '', /"gone" was not prepared through the gateway/);
    assert.deepEqual(errorsOf(await raw.send([Q('PREPARE sqlmade AS SELECT 2')], 1)), []);
    const bindSql = errorsOf(await raw.send([B('', 'sqlmade'), E(''), S()], 1));
    assert.match(bindSql[0]?.message ?? '', /"sqlmade" was not prepared through the gateway with Parse/);
    // DEALLOCATE then PREPARE of a Parse's name: the name is the SQL statement's now, and is not bound either.
    assert.deepEqual(errorsOf(await raw.send([P('swap', 'SELECT 3'), S()], 1)), []);
    assert.deepEqual(errorsOf(await raw.send([Q('DEALLOCATE swap; PREPARE swap AS SELECT 4')], 1)), []);
    const bindSwap = errorsOf(await raw.send([B('', 'swap'), E(''), S()], 1));
    assert.match(bindSwap[0]?.message ?? '', /"swap" was not prepared through the gateway/);
  } finally {
    await raw.end();
  }
});

test("the names of the gateway's refusals cannot be prepared, so a refusal cannot be made to run a statement", async () => {
  const { raw } = await connected();
  try {
    for (const sql of ['PREPARE portcullis_refused_0a_1 AS SELECT 1', 'EXECUTE portcullis_refused_0a_1']) {
      const errors = errorsOf(await raw.send([Q(sql)], 1));
      assert.match(errors[0]?.message ?? '', /reserved/, sql);
    }
    const parse = errorsOf(await raw.send([P('portcullis_refused_0a_2', 'SELECT 1'), S()], 1));
    assert.match(parse[0]?.message ?? '', /reserved/);
    const refused = errorsOf(await raw.send([Q('DROP TABLE canary_b')], 1));
    assert.match(refused[0]?.message ?? '', /Dropping databases or tables/);
  } finally {
    await raw.end();
  }
  assert.ok(await exists('canary_b'));
});

test('settings that make the server read statements differently are refused, by SET and set_config', async () => {
  const { raw } = await connected();
  try {
    for (const sql of [
      'SET standard_conforming_strings = off',
      'SET standard_conforming_strings = 0',
      "SET client_encoding = 'SJIS'",
      "SET NAMES 'big5'",
      "SELECT set_config('standard_conforming_strings', 'off', false)",
    ]) {
      const errors = errorsOf(await raw.send([Q(sql)], 1));
      assert.equal(errors[0]?.code, '0A000', sql);
      assert.match(errors[0].message, /read statements differently/, sql);
    }
    // The attack each would enable: a string the gateway reads as one SELECT hides a DROP from it.
    const hidden = errorsOf(
      await raw.send([Q('SET standard_conforming_strings = off'), Q("SELECT 'a\\' , ' ; DROP TABLE canary_c; --'")], 2),
    );
    assert.equal(hidden.length, 1);
    const sjis = Buffer.concat([
      Buffer.from("SELECT E'", 'latin1'),
      Buffer.from([0x95, 0x5c]),
      Buffer.from("' ; DROP TABLE canary_d; -- '", 'latin1'),
    ]);
    await raw.send([Q("SET client_encoding = 'SJIS'"), Q(sjis)], 2);
    assert.deepEqual(errorsOf(await raw.send([Q('SET standard_conforming_strings = on')], 1)), []);
    assert.deepEqual(errorsOf(await raw.send([Q("SET client_encoding = 'UTF8'")], 1)), []);
  } finally {
    await raw.end();
  }
  assert.ok(await exists('canary_c'));
  assert.ok(await exists('canary_d'));
});

test('a startup parameter that sets the session (role, standard_conforming_strings, a client-only encoding) is refused', async () => {
  const extras: Record<string, string>[] = [{ role: 'other_role' }, { standard_conforming_strings: 'off' }];
  for (const extra of extras) {
    const c = s.client();
    const startup = c as unknown as { getStartupConf(): Record<string, string> };
    const own = startup.getStartupConf.bind(c);
    startup.getStartupConf = () => ({ ...own(), ...extra });
    await assert.rejects(c.connect(), (e: { code?: string; message: string }) => {
      assert.equal(e.code, '0A000', JSON.stringify(extra));
      assert.match(e.message, /not allowed through the gateway/);
      return true;
    });
    await c.end().catch(() => {});
  }
  // The pg driver always sends client_encoding UTF8 last (the server takes the last), so this one is sent by hand.
  const socket = net.connect(s.envoy.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    startupMessage([
      ['user', s.agent],
      ['database', PG_TARGET],
      ['client_encoding', 'SJIS'],
    ]),
  );
  let reply = Buffer.alloc(0);
  for await (const chunk of socket) reply = Buffer.concat([reply, chunk as Buffer]);
  assert.equal(String.fromCharCode(reply[0]), 'E');
  const fields = reply.subarray(5).toString('utf8');
  assert.match(fields, /C0A000/);
  assert.match(fields, /client_encoding "SJIS" is not allowed through the gateway/);
});

test('a role change spelled in capitals or by DISCARD ALL, search_path, SQL run by functions from text, and COPY with a program or file are refused', async () => {
  const { raw } = await connected();
  try {
    const refusedBy = async (sql: string): Promise<string> => errorsOf(await raw.send([Q(sql)], 1))[0]?.message ?? '';
    assert.match(await refusedBy('SET "ROLE" TO other_role'), /Changing role/);
    assert.match(await refusedBy('SET SESSION "Role" TO other_role'), /Changing role/);
    assert.match(await refusedBy('RESET "ROLE"'), /Changing role/);
    assert.match(await refusedBy('DISCARD ALL'), /Changing role/);
    // Tables are decided by their names under the default search_path: moving it would rename them behind the policy.
    for (const sql of ['SET search_path TO pg_temp, public', "SELECT set_config('search_path', 'x', false)"])
      assert.match(await refusedBy(sql), /setting search_path is not allowed/, sql);
    for (const sql of [
      "SELECT query_to_xml('SELECT 1', true, false, '')",
      "SELECT * FROM ts_stat('SELECT to_tsvector(''a'')')",
      "SELECT table_to_xml('customers', true, false, '')",
      "COPY canary_a FROM PROGRAM 'echo 4242'",
      "COPY canary_a TO '/tmp/portcullis-copy-out'",
      "COPY canary_a FROM '/etc/hostname'",
    ])
      assert.match(await refusedBy(sql), /running DO blocks or procedures/, sql);
    assert.deepEqual(rowsOf(await raw.send([Q('SELECT current_user')], 1)), ['app_owner']);
  } finally {
    await raw.end();
  }
});
