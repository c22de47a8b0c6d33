/**
 * The server's asynchronous messages through the gateway (PostgreSQL's "Asynchronous Operations"): a NOTIFY's payload
 * and a reported setting's value are data like a row's (a trigger can notify a whole row, any session can notify a
 * channel the agent listens on, and `set_config` can put a value into a reported setting), so they are masked by
 * content as results are. The sample policy allows neither LISTEN nor set_config; this file's policy does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PG_APP_OWNER, SEEDED_CUSTOMERS } from '../harness/postgres.ts';
import { startPgStack, type PgStack } from './pg-stack.ts';

const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: listen-and-read
scope:
  targets:
    kinds: [postgres]
rules:
  - name: connect
    when: sql.connect
    action: allow
  - name: listen-and-read
    when: sql.statements.all(k, k in ["ListenStmt", "UnlistenStmt", "SelectStmt"])
    action: allow
masking:
  - name: cards-anywhere
    protocol: postgres
    entities: [CREDIT_CARD]
    strategy: partial
    keep: 4
`;

let s: PgStack;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-async-'));
  writeFileSync(join(dir, 'listen.yaml'), POLICY);
  s = await startPgStack({ policies: [join(dir, 'listen.yaml')] });
});
after(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a NOTIFY payload is masked by content before the listening agent gets it; the channel and the session's other statements are unchanged", async () => {
  const agent = s.client();
  await agent.connect();
  // Another session of the database, not through the gateway: what a trigger or another application would send.
  const other = new pg.Client({
    host: '127.0.0.1',
    port: s.db.port,
    user: PG_APP_OWNER.user,
    password: PG_APP_OWNER.password,
    database: 'app',
  });
  await other.connect();
  try {
    const received: pg.Notification[] = [];
    agent.on('notification', (n) => received.push(n));
    await agent.query('LISTEN customer_changes');
    const card = SEEDED_CUSTOMERS[0].card;
    await other.query('SELECT pg_notify($1, $2)', ['customer_changes', JSON.stringify({ id: 1, card })]);
    await other.query('SELECT pg_notify($1, $2)', ['customer_changes', 'nothing to mask']);
    // A statement's round trip after the notifications: the server sends them before its answer.
    assert.deepEqual((await agent.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    assert.equal(received.length, 2);
    assert.equal(received[0].channel, 'customer_changes');
    assert.ok(!received[0].payload?.includes(card), 'the card number reached the agent in clear');
    assert.deepEqual(JSON.parse(received[0].payload ?? ''), { id: 1, card: `${'*'.repeat(card.length - 4)}1111` });
    assert.equal(received[1].payload, 'nothing to mask');
  } finally {
    await other.end();
    await agent.end();
  }
});

test('a reported setting set from data (set_config of application_name) reaches the agent masked', async () => {
  const agent = s.client();
  await agent.connect();
  try {
    const reported: { parameterName: string; parameterValue: string }[] = [];
    // The pg driver hands ParameterStatus messages to its connection's listeners only.
    (agent as unknown as { connection: NodeJS.EventEmitter }).connection.on('parameterStatus', (m) => reported.push(m));
    const card = SEEDED_CUSTOMERS[1].card;
    const r = await agent.query(
      "SELECT set_config('application_name', card_number, false) AS v FROM customers WHERE id = 2",
    );
    assert.equal(r.rows[0].v, `${'*'.repeat(card.length - 4)}5559`);
    const name = reported.filter((m) => m.parameterName === 'application_name');
    assert.equal(name.length, 1, JSON.stringify(reported));
    assert.equal(name[0].parameterValue, `${'*'.repeat(card.length - 4)}5559`);
    assert.deepEqual((await agent.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  } finally {
    await agent.end();
  }
});
