/**
 * Result masking of the shapes the column-and-text path missed, with real clients under the sample policy: the
 * internal query of an error, a column of a set operation (no source table), bytea in text format, binary results of
 * types other than text, and values of covered columns that would leave as the value of no column. Values built from
 * columns no rule covers (the `payments` table) show what content detection does on its own.
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
    // Card numbers and SSN digits in columns no column rule names.
    await su.query(`CREATE TABLE payments (id int, card text, digits text); ALTER TABLE payments OWNER TO app_owner;
      INSERT INTO payments VALUES (1, '${SEEDED_CUSTOMERS[0].card}', '${SEEDED_CUSTOMERS[0].ssn.replaceAll('-', '')}'),
        (2, '${SEEDED_CUSTOMERS[1].card}', NULL)`);
    // A view whose column has no source table (a set operation): matched to the rules by its name.
    await su.query(`CREATE VIEW ssn_union AS
      SELECT ssn FROM customers WHERE id = 2 UNION ALL SELECT ssn FROM customers WHERE id = 2;
      ALTER VIEW ssn_union OWNER TO app_owner`);
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
    c.query('SELECT run_built(card) FROM payments WHERE id = 1').then(
      () => assert.fail('the internal query is not valid SQL'),
      (e: pg.DatabaseError) => e,
    ),
  );
  assert.equal(err.code, '42601');
  assert.equal(err.internalQuery, 'SELECT ************1111 FROM');
  assert.ok(err.internalPosition, 'the position in the internal query passes');
  assert.ok(!JSON.stringify(err).includes(ada.card), JSON.stringify(err));
});

test('a column rule with a table part covers a column PostgreSQL gives no source table (a view over a UNION)', async () => {
  const union = await s.psql(['-At', '-c', 'SELECT ssn FROM ssn_union']);
  assert.equal(union.code, 0, union.err);
  assert.deepEqual(union.out.trim().split('\n'), ['***-**-4320', '***-**-4320']);
});

test('a covered column whose value would leave as the value of no column is refused; as a column it is masked', async () => {
  const refused = [
    "SELECT ssn || '' FROM customers WHERE id = 2",
    'SELECT upper(ssn) FROM customers',
    'SELECT ssn::text AS s FROM customers',
    'SELECT (SELECT ssn FROM customers WHERE id = 2)',
    'SELECT name FROM customers UNION ALL SELECT ssn FROM customers',
    'SELECT t.ssn FROM (SELECT ssn FROM customers UNION SELECT ssn FROM customers) t',
    "SELECT x FROM (SELECT ssn || '' AS x FROM customers) s",
    'SELECT * FROM unnest(ARRAY(SELECT ssn FROM customers))',
    'UPDATE customers SET name = ssn WHERE id = 2',
    'SELECT c FROM customers c',
    'SELECT row_to_json(c) FROM customers c',
    'SELECT t FROM (SELECT ssn FROM customers) t',
  ];
  for (const text of refused) {
    const r = await s.psql(['-At', '-c', text, '-c', 'SELECT 1']);
    assert.match(
      r.err,
      /column "ssn" is masked, and here its value would leave as the value of no column|a whole row used as a value cannot be masked by column here/,
      text,
    );
    assert.ok(!r.out.includes(alan.ssn), `${text}: ${r.out}`);
    assert.equal(r.out.trim(), '1', text);
  }
  const names = await withClient((c) => c.query('SELECT name FROM customers WHERE id = 2'));
  assert.equal(names.rows[0].name, alan.name, 'the refused UPDATE changed nothing');
  for (const text of [
    'SELECT ssn AS x FROM customers WHERE id = 2',
    'SELECT x FROM (SELECT ssn AS x FROM customers WHERE id = 2) s',
    'WITH t AS (SELECT ssn FROM customers WHERE id = 2) SELECT ssn AS y FROM t',
    'SELECT j.ssn FROM customers j JOIN payments p ON p.id = j.id WHERE j.id = 2',
  ]) {
    const r = await s.psql(['-At', '-c', text]);
    assert.equal(r.code, 0, `${text}: ${r.err}`);
    assert.equal(r.out.trim(), '***-**-4320', text);
  }
  // Used only to choose rows, a covered column sends no value.
  const chosen = await s.psql(['-At', '-c', `SELECT name FROM customers WHERE ssn = '${alan.ssn}'`]);
  assert.equal(chosen.out.trim(), alan.name);
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
      `SELECT json_build_object('card', p.card) AS j, jsonb_build_object('card', p.card) AS jb,
              xmlelement(name card, p.card) AS x
       FROM payments p WHERE p.id = $1`,
      1,
    ),
  );
  noClearValue(row, ada.card, ada.ssn);
  assert.match(String(row.j), /"card" : "\*{12}1111"/);
  // The driver does not read binary jsonb: it gives the bytes as text, the version byte first.
  const jsonb = String(row.jb);
  assert.equal(jsonb[0], '\u0001');
  assert.match(jsonb.slice(1), /"card": "\*{12}1111"/);
  assert.equal(row.x, '<card>************1111</card>');
});

test('binary results: an int8 or numeric holding a card number is withheld, other numbers pass', async () => {
  const row = await withClient((c) =>
    binaryRow(
      c,
      `SELECT p.card::bigint AS b, p.card::numeric AS n, (p.card || '.50')::numeric AS f,
              p.digits::int AS i, p.id::bigint AS small, 12.5::numeric AS amount, p.id
       FROM payments p WHERE p.id = $1`,
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
      `SELECT ARRAY[p.card] AS a, ROW(p.card, p.id) AS r, to_tsvector('simple', p.card) AS v,
              p.id > 0 AS yes, 2.5::float8 AS ratio, '2024-01-02 03:04:05'::timestamp AS at
       FROM payments p WHERE p.id = $1`,
      2,
    ),
  );
  noClearValue(row, alan.card, alan.card.slice(0, 8));
  assert.equal(row.a, null);
  assert.equal(row.r, null);
  assert.equal(row.v, null);
  assert.equal(row.yes, true);
  assert.equal(row.ratio, 2.5);
  assert.ok(row.at instanceof Date);
});
