/** The SQL classifier: the real Postgres parser's reading of kinds, tables with their access, functions and flags. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { sqlCommand } from '../../extproc/cli/commands/sql.ts';
import { classify, loadSqlParser, type StatementClass } from '../../extproc/postgres/index.ts';
import { runCommand } from '../harness/cli.ts';

before(() => loadSqlParser());

function one(text: string): StatementClass {
  const c = classify(text);
  assert.ok(c.ok, `did not parse: ${text}`);
  assert.equal(c.statements.length, 1);
  return c.statements[0];
}

const tables = (s: StatementClass): string[] => s.tables.map((t) => `${t.name}:${t.access}`).sort();

test('tables and their access through CTEs, sub-selects, MERGE, COPY, EXPLAIN ANALYZE, INSERT … SELECT', () => {
  const rows: [string, string[]][] = [
    ['SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id', ['customers:read', 'orders:read']],
    ['WITH gone AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM gone', ['orders:write']],
    [
      'INSERT INTO archive SELECT * FROM orders WHERE id IN (SELECT id FROM customers)',
      ['archive:write', 'customers:read', 'orders:read'],
    ],
    [
      'MERGE INTO orders o USING customers c ON o.id = c.id WHEN MATCHED THEN DELETE',
      ['customers:read', 'orders:write'],
    ],
    ['COPY (SELECT * FROM customers) TO STDOUT', ['customers:read']],
    ['COPY orders FROM STDIN', ['orders:write']],
    ['COPY customers TO STDOUT', ['customers:read']],
    ['EXPLAIN ANALYZE DELETE FROM orders WHERE id = 2', ['orders:write']],
    ['UPDATE orders SET note = (SELECT name FROM customers LIMIT 1) WHERE id = 1', ['customers:read', 'orders:write']],
    ['SELECT * INTO copy_of_orders FROM orders', ['copy_of_orders:write', 'orders:read']],
    ['TRUNCATE orders', ['orders:write']],
    ['DROP TABLE orders, audit.log', ['audit.log:write', 'orders:write']],
    ['SELECT * FROM public.orders', ['orders:read']],
    ['WITH customers AS (SELECT 1 AS id) SELECT * FROM customers', []],
  ];
  for (const [text, expected] of rows) assert.deepEqual(tables(one(text)), expected, text);
});

test('kinds, nested kinds, functions and flags', () => {
  assert.equal(one('DROP DATABASE app').kind, 'DropdbStmt');
  const explain = one('EXPLAIN ANALYZE DELETE FROM orders');
  assert.equal(explain.kind, 'ExplainStmt');
  assert.deepEqual(explain.nestedKinds, ['DeleteStmt']);
  assert.equal(explain.unqualifiedWrite, true);
  assert.deepEqual(one('EXPLAIN DELETE FROM orders').nestedKinds, [], 'EXPLAIN without ANALYZE runs nothing');
  // Classifications are shared per shape and frozen: sorted as a copy.
  assert.deepEqual([...one("SELECT pg_catalog.pg_read_file('/etc/passwd'), lower('A')").functions].sort(), [
    'lower',
    'pg_read_file',
  ]);
  assert.deepEqual(one('CALL refresh_stats()').functions, ['refresh_stats']);
  assert.equal(one('SET ROLE postgres').roleChange, true);
  assert.equal(one('SET LOCAL ROLE postgres').roleChange, true);
  assert.equal(one('SET SESSION AUTHORIZATION postgres').roleChange, true);
  assert.equal(one('RESET ROLE').roleChange, true);
  assert.equal(one('SET search_path = public').roleChange, false);
  assert.equal(one('DO $$ BEGIN PERFORM 1; END $$').opaque, true);
  assert.equal(one('CALL p()').opaque, true);
  assert.equal(one('DELETE FROM orders WHERE id = 7').unqualifiedWrite, false);
  assert.equal(one('UPDATE orders SET note = NULL').unqualifiedWrite, true);
  // A WHERE that names no column is the same for every row: all of them or none, as without WHERE.
  for (const text of [
    'UPDATE orders SET note = NULL WHERE true',
    'DELETE FROM orders WHERE 1 = 1',
    "UPDATE orders SET note = NULL WHERE 'a' = 'a' OR false",
    'DELETE FROM orders WHERE $1',
    'DELETE FROM orders WHERE EXISTS (SELECT 1)',
    'WITH d AS (DELETE FROM orders WHERE NOT false RETURNING id) SELECT count(*) FROM d',
  ])
    assert.equal(one(text).unqualifiedWrite, true, text);
  for (const text of [
    'UPDATE orders SET note = NULL WHERE id = $1',
    'UPDATE orders SET note = NULL WHERE CURRENT OF c',
    'DELETE FROM orders WHERE id IN (SELECT order_id FROM refunds)',
    'DELETE FROM orders o USING refunds r WHERE r.order_id = o.id',
  ])
    assert.equal(one(text).unqualifiedWrite, false, text);
  const many = classify('SELECT 1; DELETE FROM orders');
  assert.ok(many.ok);
  assert.deepEqual(
    many.statements.map((s) => s.kind),
    ['SelectStmt', 'DeleteStmt'],
  );
});

test('unnamedValues: the columns whose values would leave as the value of no column, and whole rows', () => {
  const unnamed = (text: string) => one(text).unnamedValues ?? null;
  const rows: [string, { columns: string[]; wholeRow?: true } | null][] = [
    ["SELECT ssn || '' FROM customers", { columns: ['ssn'] }],
    ['SELECT ssn::text, upper(name) FROM customers', { columns: ['name', 'ssn'] }],
    ['SELECT (SELECT ssn FROM customers LIMIT 1)', { columns: ['ssn'] }],
    ['SELECT name FROM customers UNION ALL SELECT ssn FROM customers', { columns: ['name', 'ssn'] }],
    ["SELECT x FROM (SELECT ssn || '' AS x FROM customers) s", { columns: ['ssn'] }],
    ['SELECT * FROM unnest(ARRAY(SELECT ssn FROM customers))', { columns: ['ssn'] }],
    ['UPDATE customers SET name = ssn WHERE id = 1', { columns: ['ssn'] }],
    ['INSERT INTO notes SELECT ssn FROM customers', { columns: ['ssn'] }],
    ['SELECT ssn INTO TEMP t2 FROM customers', { columns: ['ssn'] }],
    ['DELETE FROM customers WHERE id = 1 RETURNING ssn AS x', { columns: ['ssn'] }],
    // A data-modifying CTE's RETURNING is read by a query that can rename it.
    ['WITH d AS (DELETE FROM customers WHERE id = 9 RETURNING ssn) SELECT ssn AS z FROM d', { columns: ['ssn'] }],
    ['WITH d AS (DELETE FROM customers WHERE id = 9 RETURNING *) SELECT * FROM d', { columns: [], wholeRow: true }],
    [
      "SELECT * FROM JSON_TABLE((SELECT to_json(ssn) FROM customers LIMIT 1), '$' COLUMNS (x text PATH '$')) jt",
      { columns: ['ssn'] },
    ],
    [
      "INSERT INTO notes (id, text) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET text = (SELECT ssn FROM customers LIMIT 1)",
      { columns: ['ssn'] },
    ],
    ['SELECT c FROM customers c', { columns: [], wholeRow: true }],
    ['SELECT customers FROM public.customers', { columns: [], wholeRow: true }],
    // A CTE's name is read as a row wherever it is named (conservative: the server would read `d` as notes' column).
    ['WITH d AS (SELECT ssn FROM customers) SELECT d FROM notes', { columns: [], wholeRow: true }],
    ['SELECT row_to_json(c) FROM customers c', { columns: [], wholeRow: true }],
    ['SELECT t FROM (SELECT ssn FROM customers) t', { columns: [], wholeRow: true }],
    ['SELECT * FROM customers UNION SELECT * FROM customers', { columns: [], wholeRow: true }],
    // A column selected as it is keeps its origin, also renamed and through sub-selects, CTEs and joins.
    ['SELECT ssn AS x FROM customers', null],
    ['SELECT x FROM (SELECT ssn AS x FROM customers) s', null],
    ['WITH t AS (SELECT ssn FROM customers) SELECT ssn AS y FROM t', null],
    ['SELECT c.*, o.id FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.ssn = $1', null],
    ['DELETE FROM customers WHERE id = 1 RETURNING ssn, *', null],
    // A function's alias in FROM names what the function returned, not a table's row.
    ['SELECT x FROM unnest(ARRAY[1, 2]) x', null],
  ];
  for (const [text, expected] of rows) assert.deepEqual(unnamed(text), expected, text);
});

test('text the parser rejects is an error; the same text is parsed once (cached)', () => {
  const bad = classify('SELEC 1');
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.error : '', /syntax error at or near "SELEC"/);
  assert.equal(classify('SELECT 1 AS cached'), classify('SELECT 1 AS cached'));
});

test('texts that differ only in numbers share one parse; names with digits, quoted or not, never do', () => {
  const first = classify('SELECT abalance FROM pgbench_accounts WHERE aid = 12345');
  // The same shape with another number: the classification parsed for the first text.
  assert.equal(classify('SELECT abalance FROM pgbench_accounts WHERE aid = 678'), first);
  const one = (text: string) => {
    const c = classify(text);
    assert.ok(c.ok, text);
    return c.statements.map((st) => `${st.kind} ${tables(st).join(',')} ${st.functions.join(',')}`).join('; ');
  };
  assert.equal(one('SELECT * FROM t1 WHERE a = 1'), 'SelectStmt t1:read ');
  assert.equal(one('SELECT * FROM t2 WHERE a = 2'), 'SelectStmt t2:read ');
  assert.equal(one('SELECT * FROM "t1" WHERE a = 1'), 'SelectStmt t1:read ');
  assert.equal(one('SELECT * FROM "t2" WHERE a = 2'), 'SelectStmt t2:read ');
  assert.equal(one("SELECT f1('x1')"), 'SelectStmt  f1');
  assert.equal(one("SELECT f2('x2')"), 'SelectStmt  f2');
  // A number cannot hide a statement kind: the shape of a text with a DELETE is its own.
  assert.equal(one('SELECT 1; DELETE FROM t1 WHERE id = 1'), 'SelectStmt  ; DeleteStmt t1:write ');
  // A text that does not parse is refused for itself: its failure is not kept for its shape, so a text of the same
  // shape that parses is not refused for it.
  const bad = classify('SELECT 1::float(0)');
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.error : '', /precision for type float must be at least 1 bit/);
  assert.equal(one('SELECT 1::float(7)'), 'SelectStmt  ');
});

test('portcullis sql classify prints statements, or an error with exit status 1', async () => {
  const ok = await runCommand(sqlCommand, ['classify', 'TRUNCATE orders'], {});
  assert.equal(ok.code, 0);
  assert.deepEqual(JSON.parse(ok.out).statements[0].tables, [{ name: 'orders', access: 'write' }]);
  const bad = await runCommand(sqlCommand, ['classify', 'DROP'], {});
  assert.equal(bad.code, 1);
  assert.match(JSON.parse(bad.out).error, /syntax error/);
});
