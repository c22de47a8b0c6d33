/**
 * Result masking through the whole path with real clients, under the sample policy: card numbers and the `ssn`
 * column masked in text and binary results, through aliases, in COPY … TO STDOUT, while psql's \d and \dt work and
 * results with nothing to mask are unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { SEEDED_CUSTOMERS } from '../harness/postgres.ts';
import { startPgStack, type PgStack } from './pg-stack.ts';

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

const noClearValues = (text: string): void => {
  for (const c of SEEDED_CUSTOMERS) {
    assert.ok(!text.includes(c.card), `card ${c.card} in clear`);
    assert.ok(!text.includes(c.ssn), `ssn ${c.ssn} in clear`);
  }
};

test('psql: SELECT * FROM customers shows card numbers and ssn masked, other columns as stored', async () => {
  const r = await s.psql(['-At', '-F', '|', '-c', 'SELECT * FROM customers ORDER BY id']);
  assert.equal(r.code, 0, r.err);
  noClearValues(r.out);
  assert.deepEqual(r.out.trim().split('\n'), [
    '1|Ada Lovelace|ada@example.com|************1111|***-**-6789',
    '2|Alan Turing|alan@example.com|************5559|***-**-4320',
    '3|Grace Hopper|grace@example.com|***********0009|***-**-3333',
  ]);
});

test('an alias does not hide a column from its rule (the catalog names the source column)', async () => {
  const r = await s.psql(['-At', '-c', 'SELECT ssn AS x, card_number AS y FROM customers WHERE id = 2']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), '***-**-4320|************5559');
});

test('COPY customers TO STDOUT masks the same columns', async () => {
  const r = await s.psql(['-c', 'COPY customers TO STDOUT']);
  assert.equal(r.code, 0, r.err);
  noClearValues(r.out);
  assert.equal(r.out.split('\n')[0], '1\tAda Lovelace\tada@example.com\t************1111\t***-**-6789');
});

test('COPY (query) TO STDOUT is refused while column rules apply, and the session goes on', async () => {
  const r = await s.psql(['-At', '-c', 'COPY (SELECT ssn FROM customers) TO STDOUT', '-c', 'SELECT 1']);
  assert.match(r.err, /ERROR: {2}COPY \(query\) TO STDOUT cannot be masked by column here/);
  assert.equal(r.out.trim(), '1');
  noClearValues(r.out);
});

test('pg driver, binary format: text columns masked in place, a covered int withheld as NULL', async () => {
  const c = s.client();
  await c.connect();
  try {
    // The driver's `binary` option (all results in binary format) is missing from @types/pg.
    const binary: pg.QueryConfig & { binary: boolean } = {
      text: `SELECT id, ssn, name, id AS card_number, 'card 4111111111111111'::bytea AS raw
             FROM customers WHERE id = $1`,
      values: [1],
      binary: true,
    };
    const r = await c.query(binary);
    assert.equal(r.rows[0].id, 1);
    assert.equal(r.rows[0].ssn, '***-**-6789');
    assert.equal(r.rows[0].name, 'Ada Lovelace');
    assert.equal(r.rows[0].card_number, null, 'an int a rule covers cannot be masked in binary: withheld');
    assert.equal(r.rows[0].raw.toString(), 'card ************1111', 'bytea is masked by content in binary too');
  } finally {
    await c.end();
  }
});

test('a card number in any column is masked by content; NULL stays NULL', async () => {
  const r = await s.psql(['-At', '-c', "SELECT 'paid with 4111111111111111' AS note, NULL::text AS nothing"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), 'paid with ************1111|');
});

test("psql's \\d and \\dt work under the sample policy", async () => {
  const dt = await s.psql(['-c', '\\dt']);
  assert.equal(dt.code, 0, dt.err);
  assert.match(dt.out, /customers/);
  assert.match(dt.out, /orders/);
  const d = await s.psql(['-c', '\\d customers']);
  assert.equal(d.code, 0, d.err);
  assert.match(d.out, /card_number/);
  assert.match(d.out, /customers_pkey/);
});

test('rows of a re-parsed statement are never masked by its old description: the connection ends instead', async () => {
  // Regression: rows that come without a RowDescription (a prepared statement executed without Describe) were passed
  // on unmasked; they are matched to the statement's Describe, which a new Parse of the same name forgets.
  const c = s.client();
  await c.connect();
  const conn = (c as unknown as { connection: PgWire }).connection;
  const rows: string[] = [];
  conn.on('dataRow', (m: { fields: (string | null)[] }) => rows.push(m.fields.join('|')));
  // Done when the connection ends (what the gateway does) or the second batch completed (what a leak looks like).
  let ready = 0;
  const done = new Promise<'ended' | 'answered'>((resolve) => {
    conn.once('end', () => resolve('ended'));
    conn.on('readyForQuery', () => {
      if (++ready === 2) resolve('answered');
    });
  });
  c.on('error', () => {});
  conn.parse({ name: 's1', text: 'SELECT note FROM orders WHERE id = 1', types: [] });
  conn.describe({ type: 'S', name: 's1' });
  conn.sync();
  conn.close({ type: 'S', name: 's1' });
  conn.parse({ name: 's1', text: 'SELECT ssn FROM customers WHERE id = 2', types: [] });
  conn.bind({ statement: 's1', portal: '', values: [] });
  conn.execute({ portal: '', rows: 0 });
  conn.sync();
  const how = await done;
  if (how === 'answered') await c.end();
  assert.ok(!rows.some((r) => r.includes(SEEDED_CUSTOMERS[1].ssn)), `a clear ssn reached the client: ${rows}`);
  assert.equal(how, 'ended');
});

/** The pg driver's wire-level connection (not in @types/pg). */
interface PgWire {
  on(event: string, listener: (m: any) => void): void;
  once(event: string, listener: () => void): void;
  parse(q: { name: string; text: string; types: number[] }): void;
  describe(m: { type: 'S' | 'P'; name: string }): void;
  close(m: { type: 'S' | 'P'; name: string }): void;
  bind(c: { statement: string; portal: string; values: unknown[] }): void;
  execute(c: { portal: string; rows: number }): void;
  sync(): void;
}
