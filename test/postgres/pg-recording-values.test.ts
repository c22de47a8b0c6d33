/**
 * Values the agent sends, as the recording keeps them: data typed into a statement's text is masked by content in
 * what is recorded and shown to approvers (the policy still decides on the real text), as results are; bound values
 * are kept only as keyed hashes, which show "the same value" across statements and sessions but cannot be tested
 * against guesses.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { postgresAdapter } from '../../extproc/postgres/index.ts';
import { valueDigestKey, valueDigestOf } from '../../extproc/recording/index.ts';
import { DEFAULT_CONFIG } from '../../extproc/service/config.ts';
import { startNetworkStandIn } from '../envoy/network-stand-in.ts';
import { SEEDED_CUSTOMERS } from '../harness/postgres.ts';
import { startTestService } from '../harness/service.ts';
import { PG_TARGET, startPgStack, type PgStack } from './pg-stack.ts';

/** A test card number (Luhn-valid) that is in no row: it reaches the recording only through a statement's text. */
const CARD = '4012888888881881';
/** A seeded customer's card, which a policy of this file forbids naming in a statement's text. */
const GUARDED_CARD = '5500005555555559';

let s: PgStack;
let dir: string;
/** The deployment's recording anchor key, as every replica is given it (`recording.anchorKeyRef`). */
const ANCHOR_KEY = randomBytes(32);

/**
 * A policy besides the bundled one: deny a statement whose text names GUARDED_CARD (the policy reads `sql.text`). It
 * names the card's first 12 digits only, so that the whole number is nowhere in Redis unless the recording put it there.
 */
const GUARD_POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: card-literal-guard
mode: enforce
scope:
  targets:
    kinds: [postgres]
rules:
  - name: no-guarded-card-literal
    when: sql.text.contains("${GUARDED_CARD.slice(0, 12)}")
    action: deny
    message: This card number may not be named in a statement.
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-pgvalues-'));
  writeFileSync(join(dir, 'card-literal-guard.yaml'), GUARD_POLICY);
  writeFileSync(join(dir, 'anchor.key'), ANCHOR_KEY.toString('hex'));
  s = await startPgStack({
    policies: ['examples/policies/postgres-guardrails.yaml', join(dir, 'card-literal-guard.yaml')],
    config: { recording: { ...DEFAULT_CONFIG.recording, anchorKeyRef: `file:${join(dir, 'anchor.key')}` } },
  });
});
after(async () => {
  await s?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Event = { type: string; requestId?: string; data: any };

async function eventsOf(sessionId: string, auditorName: string): Promise<Event[]> {
  await s.svc.core.recorder.flush();
  const auditor = await s.svc.principal(auditorName, ['auditor']);
  const r = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${sessionId}/events?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.events as Event[];
}

/** Everything in Redis, as text: streams, strings, hashes, sets, sorted sets and lists. */
async function everythingInRedis(): Promise<string> {
  const redis = new Redis(s.redis.url);
  try {
    let everything = '';
    for (const key of await redis.keys('*')) {
      const type = await redis.type(key);
      everything += `\n${key} `;
      if (type === 'stream') everything += JSON.stringify(await redis.xrange(key, '-', '+'));
      else if (type === 'string') everything += await redis.get(key);
      else if (type === 'hash') everything += JSON.stringify(await redis.hgetall(key));
      else if (type === 'set') everything += JSON.stringify(await redis.smembers(key));
      else if (type === 'zset') everything += JSON.stringify(await redis.zrange(key, 0, -1));
      else if (type === 'list') everything += JSON.stringify(await redis.lrange(key, 0, -1));
    }
    return everything;
  } finally {
    redis.disconnect();
  }
}

test('a card number typed into a statement is recorded and shown to approvers masked; the policy decides on the real text', async () => {
  const approver = await s.svc.principal('dba-values', ['approver'], ['dba']);
  const c = s.client();
  await c.connect();
  let approvalId: string | undefined;
  try {
    // Simple protocol: runs with the real text (no customer has this card).
    const simple = await c.query(`SELECT id FROM customers WHERE card_number = '${CARD}' /* literal simple */`);
    assert.deepEqual(simple.rows, []);
    // The real text reaches the server: a seeded card named in the text finds its row.
    const seeded = await c.query(
      `SELECT id FROM customers WHERE card_number = '4111111111111111' /* literal seeded */`,
    );
    assert.deepEqual(seeded.rows, [{ id: 1 }]);
    // Extended protocol: the text of a prepared statement, with a bound value beside it.
    const bound = await c.query({
      text: `SELECT id FROM customers WHERE card_number <> '${CARD}' AND id = $1 /* literal extended */`,
      values: [2],
    });
    assert.deepEqual(bound.rows, [{ id: 2 }]);
    // The policy reads the real text: a rule that names the card in `sql.text` denies the statement.
    await assert.rejects(
      c.query(`SELECT id FROM customers WHERE card_number = '${GUARDED_CARD}' /* literal guarded */`),
      (e: { code?: string; message: string }) => {
        assert.equal(e.code, '42501');
        assert.match(e.message, /may not be named in a statement/);
        return true;
      },
    );
    // Text the parser rejects is refused and recorded as it was sent: masked too.
    await assert.rejects(c.query(`SELEC '${CARD}' /* literal unparsable */`), (e: { code?: string }) => {
      assert.equal(e.code, '42601');
      return true;
    });
    // A statement that needs approval: the approver is shown its text masked.
    const del = await c.query(`DELETE FROM orders WHERE note = '${CARD}' /* literal approval */`).then(
      () => assert.fail('ran without approval'),
      (e: { code?: string; message: string }) => e,
    );
    assert.equal(del.code, '42501');
    approvalId = /request (apr_[A-Za-z0-9]+)/.exec(del.message)?.[1];
    assert.ok(approvalId, del.message);
  } finally {
    await c.end();
  }

  const shown = await s.svc.call(approver.token, 'GET', `/v1/approvals/${approvalId}`);
  assert.equal(shown.status, 200, JSON.stringify(shown.body));
  const approval = JSON.stringify(shown.body);
  assert.ok(!approval.includes(CARD), `the approver sees the card: ${approval}`);
  assert.match(approval, /DELETE FROM orders WHERE note = '\*{12}1881'/);

  const events = await eventsOf(s.sessionId, 'auditor-values-1');
  const recorded = (marker: string, type = 'decision') => {
    const e = events.find(
      (x) =>
        x.type === type
        && ((type === 'decision' ? x.data.request?.statement : x.data.statement) ?? '').includes(marker),
    );
    assert.ok(e, `${marker} is recorded`);
    return e;
  };
  const simple = recorded('/* literal simple */');
  assert.equal(simple.data.action, 'allow');
  assert.equal(
    simple.data.request.statement,
    "SELECT id FROM customers WHERE card_number = '************1881' /* literal simple */",
  );
  assert.match(recorded('/* literal extended */').data.request.statement, /card_number <> '\*{12}1881' AND id = \$1/);
  const guarded = recorded('/* literal guarded */');
  assert.equal(guarded.data.action, 'deny');
  assert.equal(guarded.data.rule, 'no-guarded-card-literal');
  assert.match(guarded.data.request.statement, /card_number = '\*{12}5559'/);
  assert.match(recorded('/* literal unparsable */', 'action').data.statement, /SELEC '\*{12}1881'/);
  assert.match(recorded('/* literal approval */').data.request.statement, /note = '\*{12}1881'/);
  const all = JSON.stringify(events);
  for (const card of [CARD, GUARDED_CARD, '4111111111111111'])
    assert.ok(!all.includes(card), `the auditor reads ${card.slice(0, 6)}… in the recording`);

  // The statements are the session's search text: searched for, the card finds nothing; the statement's words do.
  const auditor = await s.svc.principal('auditor-values-2', ['auditor']);
  const byCard = await s.svc.call(auditor.token, 'GET', `/v1/sessions?q=${CARD}`);
  assert.equal(byCard.status, 200, JSON.stringify(byCard.body));
  assert.deepEqual(byCard.body.sessions, [], 'the card is in the search text');
  const byWords = await s.svc.call(auditor.token, 'GET', '/v1/sessions?q=literal%20simple');
  assert.ok(
    byWords.body.sessions.some((x: { id: string }) => x.id === s.sessionId),
    JSON.stringify(byWords.body),
  );

  const redis = await everythingInRedis();
  for (const card of [CARD, GUARDED_CARD, '4111111111111111'])
    assert.ok(!redis.includes(card), `found ${card.slice(0, 6)}… in Redis`);
});

test('bound values are recorded as keyed hashes: equal for the same value across statements, sessions and replicas, not testable against guesses', async () => {
  const SSN = SEEDED_CUSTOMERS[0].ssn; // 123-45-6789
  const OTHER_SSN = SEEDED_CUSTOMERS[1].ssn;
  const bySsn = 'SELECT id, ssn FROM customers WHERE ssn = $1';
  const query = async (c: pg.Client, value: string, marker: string) =>
    (await c.query({ text: `${bySsn} /* ${marker} */`, values: [value] })).rows;

  // Session A: the same value twice, another value once.
  const a = s.client();
  await a.connect();
  try {
    // The auditor reads the masked result: the last four digits narrow the value to 100,000 candidates.
    assert.deepEqual(await query(a, SSN, 'bound a1'), [{ id: 1, ssn: '***-**-6789' }]);
    await query(a, SSN, 'bound a2');
    await query(a, OTHER_SSN, 'bound a3');
  } finally {
    await a.end();
  }
  // Session B: another token of the agent, the same value.
  const b = await s.issueToken();
  const cb = s.client({ password: b.token });
  await cb.connect();
  try {
    await query(cb, SSN, 'bound b1');
  } finally {
    await cb.end();
  }
  // Another replica of the deployment (a restart is the same: only the configured key is shared), on the same Redis
  // and database: its own service process state, its own Envoy.
  const replica = await startTestService({
    redisUrl: s.redis.url,
    adapters: [postgresAdapter()],
    config: { recording: { ...DEFAULT_CONFIG.recording, anchorKeyRef: `file:${join(dir, 'anchor.key')}` } },
  });
  const replicaEnvoy = await startNetworkStandIn({
    processorAddress: `127.0.0.1:${replica.grpcPort}`,
    upstream: { host: '127.0.0.1', port: s.db.port },
  });
  const c = await s.issueToken();
  try {
    const cc = new pg.Client({
      host: '127.0.0.1',
      port: replicaEnvoy.port,
      user: s.agent,
      database: PG_TARGET,
      password: c.token,
    });
    await cc.connect();
    try {
      await query(cc, SSN, 'bound c1');
    } finally {
      await cc.end();
    }
    await replica.core.recorder.flush();
  } finally {
    await replicaEnvoy.close();
    await replica.close();
  }

  const hashOf = async (sessionId: string, marker: string): Promise<string> => {
    const events = await eventsOf(sessionId, `auditor-${randomBytes(4).toString('hex')}`);
    const d = events.find((e) => e.type === 'decision' && e.data.request?.statement?.includes(`/* ${marker} */`));
    assert.ok(d, `${marker} is recorded`);
    assert.equal(d.data.action, 'allow');
    assert.equal(d.data.request.parameters, 1);
    const [h] = d.data.request.parameterHashes;
    assert.match(h, /^[0-9a-f]{16}$/);
    return h;
  };
  const a1 = await hashOf(s.sessionId, 'bound a1');
  assert.equal(await hashOf(s.sessionId, 'bound a2'), a1, 'the same value, the same hash in a session');
  assert.notEqual(await hashOf(s.sessionId, 'bound a3'), a1, 'another value, another hash');
  assert.equal(await hashOf(b.sessionId, 'bound b1'), a1, 'the same hash in another session');
  assert.equal(await hashOf(c.sessionId, 'bound c1'), a1, 'the same hash on another replica');

  // The attack: try every SSN the masked result leaves. An unkeyed hash gave the value back; a keyed one matches none.
  const unkeyed = (v: string) => createHash('sha256').update(v).digest('hex').slice(0, 16);
  let recovered: string | undefined;
  for (let n = 0; n < 100_000 && !recovered; n++) {
    const digits = String(n).padStart(5, '0');
    const candidate = `${digits.slice(0, 3)}-${digits.slice(3)}-6789`;
    if (unkeyed(candidate) === a1) recovered = candidate;
  }
  assert.equal(recovered, undefined, `the SSN was recovered from its recorded hash: ${recovered}`);
  // It is the keyed digest under the deployment's key, and nothing else of the process.
  assert.equal(a1, valueDigestOf(valueDigestKey(ANCHOR_KEY), Buffer.from(SSN)));

  // Neither the value nor any key is in Redis.
  const redis = await everythingInRedis();
  for (const secret of [
    SSN,
    OTHER_SSN,
    ANCHOR_KEY.toString('hex'),
    valueDigestKey(ANCHOR_KEY).toString('hex'),
    valueDigestKey(ANCHOR_KEY).toString('base64'),
  ])
    assert.ok(!redis.includes(secret), `found ${secret.slice(0, 6)}… in Redis`);
});

test('without a key for the hashes, a statement with bound values is refused, never recorded with an unkeyed hash', async () => {
  const core = s.svc.core;
  const digest = core.valueDigest;
  assert.ok(digest, 'the service has a key');
  const c = s.client();
  await c.connect();
  delete core.valueDigest;
  try {
    await assert.rejects(
      c.query({ text: 'SELECT id FROM customers WHERE ssn = $1 /* keyless */', values: [SEEDED_CUSTOMERS[2].ssn] }),
      (e: { message: string }) => {
        assert.match(e.message, /cannot keep bound values/);
        return true;
      },
    );
    // Statements without bound values (and with NULLs only) still run.
    assert.deepEqual((await c.query('SELECT 1 AS one /* keyless simple */')).rows, [{ one: 1 }]);
    assert.deepEqual((await c.query({ text: 'SELECT $1::text IS NULL AS n', values: [null] })).rows, [{ n: true }]);
  } finally {
    core.valueDigest = digest;
    await c.end();
  }
  const events = await eventsOf(s.sessionId, 'auditor-keyless');
  const refused = events.find((e) => e.type === 'action' && e.data.statement?.includes('/* keyless */'));
  assert.ok(refused, 'the refused statement is recorded');
  assert.deepEqual(refused.data, { statement: refused.data.statement, parameters: 1 });
  const decision = events.find((e) => e.type === 'decision' && e.requestId === refused.requestId);
  assert.equal(decision?.data.code, 'recording-unavailable');
  assert.equal(decision?.data.detail, 'no-value-key');
  assert.ok(!JSON.stringify(events).includes(SEEDED_CUSTOMERS[2].ssn));
});
