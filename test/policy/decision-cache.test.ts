/**
 * The decision fast path (extproc/policy/decision-cache.ts): a session's decision is reused only for an action equal in
 * every field a rule in scope reads, never across a policy change, and never when a rule reads the time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH, type RequestContext, type SqlContext } from '../../extproc/policy/context.ts';
import { DecisionCache } from '../../extproc/policy/decision-cache.ts';
import { decide } from '../../extproc/policy/evaluate.ts';
import type { CompiledPolicy } from '../../extproc/policy/load.ts';
import type { MaskingScope } from '../../extproc/policy/masking-plans.ts';
import { ScopedReads } from '../../extproc/policy/scoped-reads.ts';
import { policies } from './fixtures.ts';

const agent = { id: 'planner-1', groups: ['agents'], labels: {} };
const target = { name: 'pg-app', kind: 'postgres' as const, labels: {} };

function newSession(): { maskingScope: MaskingScope } {
  return { maskingScope: { protocol: 'postgres', agent, target, key: 'planner-1/pg-app' } };
}

function context(sql: SqlContext): RequestContext {
  return {
    protocol: 'postgres',
    agent,
    target,
    session: { id: 'ses_1', plan: '' },
    time: new Date(),
    k8s: EMPTY_K8S,
    sql,
    ssh: EMPTY_SSH,
  };
}

const select = (table: string, text: string): SqlContext => ({
  ...EMPTY_SQL,
  database: 'app',
  text,
  statements: ['SelectStmt'],
  readTables: [table],
});

const GUARDED = `name: guarded
rules:
  - name: no-secrets
    when: sql.readTables.exists(t, t == "secrets")
    action: deny
  - name: no-sleep
    when: sql.text.contains("pg_sleep")
    action: deny
  - name: reads
    when: sql.statements.all(k, k == "SelectStmt")
    action: allow
`;

/** Decides through the cache and checks the answer against a fresh evaluation. */
function decideBoth(cache: DecisionCache, set: readonly CompiledPolicy[], session: object, sql: SqlContext) {
  const fresh = decide(set, context(sql), 'deny');
  const key = cache.keyFor(set, session as { maskingScope: MaskingScope }, 'sql', sql);
  let cached = key === null ? undefined : cache.get(set, session, key);
  if (!cached) {
    cached = decide(set, context(sql), 'deny');
    if (key !== null) cache.set(set, session, key, cached);
  }
  assert.deepEqual(cached, fresh, `for ${sql.text}`);
  return cached;
}

test('a decision is reused only for a statement equal in every field a rule reads', () => {
  const cache = new DecisionCache(new ScopedReads());
  const set = policies(GUARDED);
  const session = newSession();
  // The rules read sql.text: statements of one shape with other texts are decided each on their own.
  for (let i = 0; i < 20; i++)
    decideBoth(cache, set, session, select('orders', `SELECT * FROM orders WHERE id = ${i}`));
  assert.equal(cache.hits, 0);
  assert.equal(decideBoth(cache, set, session, select('orders', 'SELECT pg_sleep(10) FROM orders')).action, 'deny');
  // The same text again is the same action.
  decideBoth(cache, set, session, select('orders', 'SELECT * FROM orders WHERE id = 3'));
  assert.equal(cache.hits, 1);
  // A statement that differs only in a field a rule reads gets that rule's decision.
  assert.equal(decideBoth(cache, set, session, select('secrets', 'SELECT * FROM orders WHERE id = 3')).action, 'deny');
});

test('without a rule on the text, statements of one shape share one decision, and other shapes get their own', () => {
  const cache = new DecisionCache(new ScopedReads());
  const set = policies(GUARDED.replace(/ {2}- name: no-sleep\n.*\n.*\n/, ''));
  const session = newSession();
  for (let i = 0; i < 20; i++) {
    assert.equal(
      decideBoth(cache, set, session, select('orders', `SELECT * FROM orders WHERE id = ${i}`)).action,
      'allow',
    );
  }
  assert.equal(cache.misses, 1);
  assert.equal(cache.hits, 19);
  assert.equal(decideBoth(cache, set, session, select('secrets', 'SELECT * FROM secrets WHERE id = 1')).action, 'deny');
  const write = { ...select('orders', 'UPDATE orders SET x = 1 WHERE id = 1'), statements: ['UpdateStmt'] };
  assert.equal(decideBoth(cache, set, session, write).action, 'deny', 'no rule allows an UPDATE: default deny');
  // Another session's decisions are its own.
  decideBoth(cache, set, newSession(), select('orders', 'SELECT 1 FROM orders'));
  assert.equal(cache.misses, 4);
});

test('a policy change makes every kept decision stale', () => {
  const cache = new DecisionCache(new ScopedReads());
  const session = newSession();
  const sql = select('orders', 'SELECT * FROM orders WHERE id = 1');
  const allowing = policies('name: p\nrules:\n  - { name: reads, when: sql.readTables.size() > 0, action: allow }\n');
  assert.equal(decideBoth(cache, allowing, session, sql).action, 'allow');
  assert.equal(decideBoth(cache, allowing, session, sql).action, 'allow');
  assert.equal(cache.hits, 1);
  // PolicySet.current() is a new array whenever a policy changes.
  const denying = policies('name: p\nrules:\n  - { name: reads, when: sql.readTables.size() > 0, action: deny }\n');
  assert.equal(decideBoth(cache, denying, session, sql).action, 'deny');
  assert.equal(cache.hits, 1);
});

test('a rule that reads the time, or the whole section, turns the fast path off for its scope', () => {
  for (const when of ['time.getHours() >= 0', '[sql].size() == 1']) {
    const cache = new DecisionCache(new ScopedReads());
    const set = policies(`name: p\nrules:\n  - { name: r, when: '${when}', action: allow }\n`);
    const session = newSession();
    for (let i = 0; i < 5; i++) decideBoth(cache, set, session, select('orders', 'SELECT 1 FROM orders'));
    assert.equal(cache.hits + cache.misses, 0, when);
  }
});

test('a masking rule condition counts as a read', () => {
  const cache = new DecisionCache(new ScopedReads());
  const set = policies(`name: p
rules:
  - { name: all, action: allow }
masking:
  - name: at-night
    when: 'time.getHours() >= 0'
    entities: [US_SSN]
`);
  decideBoth(cache, set, newSession(), select('orders', 'SELECT 1 FROM orders'));
  assert.equal(cache.hits + cache.misses, 0);
});

test('statements sharing the frozen lists of a shape are still told apart by any other field a rule reads', () => {
  const cache = new DecisionCache(new ScopedReads());
  const set = policies(`name: p
rules:
  - { name: no-unqualified, when: sql.unqualifiedWrite, action: deny }
  - { name: writes, when: 'sql.writeTables.all(t, t == "orders")', action: allow }
`);
  const session = newSession();
  const shape = {
    ...EMPTY_SQL,
    database: 'app',
    statements: Object.freeze(['UpdateStmt']) as string[],
    writeTables: Object.freeze(['orders']) as string[],
  };
  for (let i = 0; i < 3; i++) {
    assert.equal(
      decideBoth(cache, set, session, { ...shape, text: `UPDATE orders SET x = ${i} WHERE id = 1` }).action,
      'allow',
    );
  }
  assert.equal(cache.hits, 2);
  const everyRow = { ...shape, text: 'UPDATE orders SET x = 1', unqualifiedWrite: true };
  assert.equal(decideBoth(cache, set, session, everyRow).action, 'deny');
  const otherTable = {
    ...shape,
    text: 'UPDATE secrets SET x = 1 WHERE id = 1',
    writeTables: Object.freeze(['secrets']) as string[],
  };
  assert.equal(decideBoth(cache, set, session, otherTable).action, 'deny', 'default deny');
});
