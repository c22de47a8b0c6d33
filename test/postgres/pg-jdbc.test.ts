/**
 * A JDBC client (Debian's libpostgresql-jdbc-java on the installed JDK) through the whole path: it logs in with the
 * agent token (SCRAM-SHA-256), reads masked values, gets the policy's refusal with SQLSTATE 42501 and goes on, on
 * one connection, unnamed and named server-side statements alike (each statement runs six times).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { PG_TARGET, startPgStack, type PgStack } from './pg-stack.ts';

const run = promisify(execFile);
const JAR = '/usr/share/java/postgresql.jar';
const SOURCE = new URL('./jdbc/JdbcProbe.java', import.meta.url).pathname;

let s: PgStack;
let classes: string;

before(async () => {
  classes = mkdtempSync(join(tmpdir(), 'portcullis-jdbc-'));
  await run('javac', ['-d', classes, SOURCE]);
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
  rmSync(classes, { recursive: true, force: true });
});

async function jdbc(password: string, statements: string[]): Promise<string[]> {
  const url = `jdbc:postgresql://127.0.0.1:${s.envoy.port}/${PG_TARGET}`;
  const { stdout } = await run(
    'java',
    ['-cp', `${classes}:${JAR}`, 'JdbcProbe', url, s.agent, password, ...statements],
    {
      timeout: 60_000,
    },
  );
  return stdout.trim().split('\n');
}

test('JDBC: login with the token, masked reads, a refusal that keeps the connection', {
  skip: !existsSync(JAR),
}, async () => {
  const lines = await jdbc(s.agentToken, [
    'SELECT id, card_number, ssn FROM customers WHERE id = 1',
    'TRUNCATE orders',
    'SELECT count(*) FROM orders WHERE id > 0',
  ]);
  assert.deepEqual(lines, [
    'ok 1,************1111,***-**-6789',
    'error 42501 ERROR: Dropping databases or tables and truncating tables are not allowed for agents.',
    'ok 20',
  ]);
});

test('JDBC: a wrong password is refused with 28P01 and the reason', { skip: !existsSync(JAR) }, async () => {
  const lines = await jdbc('not-a-token', ['SELECT 1']);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^connect-error 28P01 FATAL: password authentication failed for agent "planner-1"/);
});
