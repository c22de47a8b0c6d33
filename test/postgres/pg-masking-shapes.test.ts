/**
 * Result masking of the shapes the column-and-text path missed, with real clients under the sample policy: the
 * internal query of an error, a column of a set operation (no source table), bytea in text format, and binary results
 * of types other than text.
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

// Customer 1's card and SSN are found by content; customer 2's SSN only by the column rule `*.ssn`.
const [ada, alan] = SEEDED_CUSTOMERS;

async function withClient<T>(use: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = s.client();
  await c.connect();
  try {
    return await use(c);
  } finally {
    await c.end();
  }
}

test("an error's internal query is masked by content; its code and positions pass", async () => {
  const err = await withClient((c) =>
    c
      .query(`SELECT query_to_xml('SELECT ' || card_number || ' FROM', false, false, '') FROM customers WHERE id = 1`)
      .then(
        () => assert.fail('the internal query is not valid SQL'),
        (e: pg.DatabaseError) => e,
      ),
  );
  assert.equal(err.code, '42601');
  assert.equal(err.internalQuery, 'SELECT ************1111 FROM');
  assert.ok(err.internalPosition, 'the position in the internal query passes');
  assert.ok(!JSON.stringify(err).includes(ada.card), JSON.stringify(err));
});

test('a column rule with a table part covers a column PostgreSQL gives no source table (set operations)', async () => {
  const union = await s.psql([
    '-At',
    '-c',
    'SELECT ssn FROM customers WHERE id = 2 UNION ALL SELECT ssn FROM customers WHERE id = 2',
  ]);
  assert.equal(union.code, 0, union.err);
  assert.deepEqual(union.out.trim().split('\n'), ['***-**-4320', '***-**-4320']);
  const sub = await s.psql([
    '-At',
    '-c',
    'SELECT t.ssn FROM (SELECT ssn FROM customers WHERE id = 2 UNION SELECT ssn FROM customers) t ORDER BY 1',
  ]);
  assert.equal(sub.code, 0, sub.err);
  assert.ok(!sub.out.includes(alan.ssn), sub.out);
  assert.deepEqual(sub.out.trim().split('\n'), ['***-**-3333', '***-**-6789', '***-**-4320']);
});

test('bytea in text format is masked by content, in the hex form and in the escape form', async () => {
  await withClient(async (c) => {
    const hex = await c.query(`SELECT 'paid with 4111111111111111'::bytea AS raw`);
    assert.equal(hex.rows[0].raw.toString(), 'paid with ************1111');
    await c.query('SET bytea_output = escape');
    // A NUL and a backslash: bytes the escape form writes as escapes, kept as they were.
    const escaped = await c.query(`SELECT decode('005c', 'hex') || 'paid with 4111111111111111'::bytea AS raw`);
    assert.deepEqual(
      escaped.rows[0].raw,
      Buffer.concat([Buffer.from([0, 0x5c]), Buffer.from('paid with ************1111')]),
    );
  });
});
