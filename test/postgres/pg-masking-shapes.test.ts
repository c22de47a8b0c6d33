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
  // A function of the database that builds and runs a statement from its argument, as applications' functions do:
  // when that statement fails, the server reports it as the error's internal query. (query_to_xml does the same, but
  // the gateway refuses functions that run SQL given as text.)
  const su = await s.db.superuser();
  try {
    await su.query(
      "CREATE FUNCTION run_built(v text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SELECT ' || v || ' FROM'; RETURN 1; END $$",
    );
    await su.query('GRANT EXECUTE ON FUNCTION run_built(text) TO app_owner');
  } finally {
    await su.end();
  }
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
    c.query('SELECT run_built(card_number) FROM customers WHERE id = 1').then(
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

/** The first row of `text` for customer `id`, every result column in binary format (extended protocol). */
function binaryRow(c: pg.Client, text: string, id: number): Promise<Record<string, unknown>> {
  // The driver's `binary` option is missing from @types/pg.
  const query: pg.QueryConfig & { binary: boolean } = { text, values: [id], binary: true };
  return c.query(query).then((r) => r.rows[0]);
}

const noClearValue = (row: Record<string, unknown>, ...clear: string[]): void => {
  const shown = JSON.stringify(row);
  for (const v of clear) assert.ok(!shown.includes(v), `${v} in clear: ${shown}`);
};

test('binary results: json and xml are masked as text, jsonb after its version byte', async () => {
  const row = await withClient((c) =>
    binaryRow(
      c,
      `SELECT to_json(c) AS j, to_jsonb(c) AS jb, xmlelement(name card, c.card_number) AS x
       FROM customers c WHERE c.id = $1`,
      1,
    ),
  );
  noClearValue(row, ada.card, ada.ssn);
  assert.match(String(row.j), /"card_number":"\*{12}1111"/);
  // The driver does not read binary jsonb: it gives the bytes as text, the version byte first.
  const jsonb = String(row.jb);
  assert.equal(jsonb[0], '\u0001');
  assert.match(jsonb.slice(1), /"card_number": "\*{12}1111"/);
  assert.equal(row.x, '<card>************1111</card>');
});

test('binary results: an int8 or numeric holding a card number is withheld, other numbers pass', async () => {
  const row = await withClient((c) =>
    binaryRow(
      c,
      `SELECT c.card_number::bigint AS b, c.card_number::numeric AS n, (c.card_number || '.50')::numeric AS f,
              replace(c.ssn, '-', '')::int AS i, c.id::bigint AS small, 12.5::numeric AS amount, c.id
       FROM customers c WHERE c.id = $1`,
      1,
    ),
  );
  noClearValue(row, ada.card, ada.card.slice(0, 8), ada.ssn.replaceAll('-', ''));
  assert.deepEqual(row, { b: null, n: null, f: null, i: null, small: '1', amount: 12.5, id: 1 });
});

test('binary results of types the gateway cannot read are withheld; types that hold no text pass', async () => {
  const row = await withClient((c) =>
    binaryRow(
      c,
      `SELECT ARRAY[c.card_number] AS a, ROW(c.card_number, c.ssn) AS r, to_tsvector('simple', c.card_number) AS v,
              c.id > 0 AS yes, 2.5::float8 AS ratio, '2024-01-02 03:04:05'::timestamp AS at
       FROM customers c WHERE c.id = $1`,
      2,
    ),
  );
  noClearValue(row, alan.card, alan.ssn, alan.card.slice(0, 8));
  assert.equal(row.a, null);
  assert.equal(row.r, null);
  assert.equal(row.v, null);
  assert.equal(row.yes, true);
  assert.equal(row.ratio, 2.5);
  assert.ok(row.at instanceof Date);
});
