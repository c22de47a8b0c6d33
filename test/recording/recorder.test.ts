import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';
import {
  createRecorder,
  getSession,
  listSessions,
  readEvents,
  recordingKeys,
  SecretRegistry,
  verifySession,
  type NewRecordingEvent,
  type RecordResult,
} from '../../extproc/recording/index.ts';
import { GENESIS_HASH, hashEvent } from '../../extproc/recording/hash-chain.ts';
import { canonicalJson } from '../../extproc/common/canonical-json.ts';

let server: TestRedis;
let redis: Redis;

before(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  await redis.ping();
});
after(async () => {
  redis.disconnect();
  await server.close();
});

function ev(
  sessionId: string,
  type: NewRecordingEvent['type'],
  data: Record<string, unknown> = {},
  target = 'db1',
): NewRecordingEvent {
  return { type, sessionId, agent: 'agent-1', target, protocol: 'postgres', data };
}

async function storedSeqs(id: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const e of readEvents(redis, id)) seqs.push(e.event!.seq);
  return seqs;
}

/** Reads a session's whole stream, lets `mutate` change it, and writes it back as a forger would. */
async function rewriteStream(id: string, mutate: (entries: Array<[string, string]>) => void): Promise<void> {
  const raw = (await redis.xrange(recordingKeys.events(id), '-', '+')) as Array<[string, string[]]>;
  const entries: Array<[string, string]> = raw.map(([eid, f]) => [eid, f[1]]);
  mutate(entries);
  await redis.del(recordingKeys.events(id));
  for (const [eid, json] of entries) await redis.xadd(recordingKeys.events(id), eid, 'e', json);
}

describe('recorder', () => {
  it('stores every event of many concurrent sessions once, in order, with a valid chain', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', batchSize: 300 });
    const sessions = Array.from({ length: 200 }, (_, i) => `conc-${i}`);
    const perSession = 50;
    for (const s of sessions) assert.equal(rec.record(ev(s, 'session.start')).accepted, true);
    // Interleave sessions, yielding to the event loop between rounds so writes overlap with recording.
    for (let n = 0; n < perSession - 2; n++) {
      for (const s of sessions) {
        const r = rec.record({
          ...ev(s, n % 2 ? 'action' : 'decision', { n, sql: `select ${n}` }),
          requestId: `${s}-r${n}`,
        });
        assert.equal(r.accepted, true);
      }
      await new Promise((r) => setImmediate(r));
    }
    for (const s of sessions) rec.record(ev(s, 'session.end'));
    await rec.flush();
    assert.equal(rec.stats().buffered, 0);
    assert.equal(rec.stats().written, sessions.length * perSession);
    assert.equal(rec.stats().dropped, 0);
    for (const s of sessions) {
      const seqs = await storedSeqs(s);
      assert.deepEqual(
        seqs,
        Array.from({ length: perSession }, (_, i) => i + 1),
        s,
      );
      assert.deepEqual(await verifySession(redis, s), { valid: true, events: perSession, anchored: false });
    }
    const first = (await readEvents(redis, 'conc-0').next()).value!.event!;
    assert.equal(first.prevHash, GENESIS_HASH);
    assert.equal(first.hash, hashEvent(first));
    assert.equal(first.v, 1);
    assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await rec.close();
  });

  it('verify names the first bad sequence number after an edit, a deletion or removal of the newest event', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed' });
    for (const id of ['tamper-edit', 'tamper-del', 'tamper-tail']) {
      rec.record(ev(id, 'session.start'));
      for (let i = 0; i < 8; i++) rec.record(ev(id, 'action', { sql: `select ${i}` }));
    }
    await rec.flush();
    await rec.close();

    // Edit event 4 (a forger can only rewrite the whole stream: Redis streams never take a lower id again).
    await rewriteStream('tamper-edit', (entries) => {
      const e = JSON.parse(entries[3][1]);
      e.data.sql = 'select 42';
      entries[3][1] = JSON.stringify(e);
    });
    const r1 = await verifySession(redis, 'tamper-edit');
    assert.equal(r1.valid, false);
    assert.equal(r1.valid === false && r1.firstBadSeq, 4);

    await redis.xdel(recordingKeys.events('tamper-del'), '6-0');
    const r2 = await verifySession(redis, 'tamper-del');
    assert.equal(r2.valid === false && r2.firstBadSeq, 6);
    assert.match(r2.valid === false ? r2.reason : '', /missing/);

    await redis.xdel(recordingKeys.events('tamper-tail'), '9-0');
    const r3 = await verifySession(redis, 'tamper-tail');
    assert.equal(r3.valid === false && r3.firstBadSeq, 9);

    // An edit whose hash was recomputed still breaks the link to the next event.
    await rewriteStream('tamper-tail', (entries) => {
      const e = JSON.parse(entries[2][1]);
      e.data.sql = 'select 43';
      e.hash = hashEvent(e);
      entries[2][1] = JSON.stringify(e);
    });
    const r4 = await verifySession(redis, 'tamper-tail');
    assert.equal(r4.valid === false && r4.firstBadSeq, 4);
  });

  it('continues the chain of a session another process started', async () => {
    const a = createRecorder({ redis, failureMode: () => 'fail-closed' });
    a.record(ev('handover', 'session.start'));
    a.record(ev('handover', 'action', { sql: 'select 1' }));
    await a.flush();
    await a.close();
    const b = createRecorder({ redis, failureMode: () => 'fail-closed' });
    b.record(ev('handover', 'action', { sql: 'select 2' }));
    b.record(ev('handover', 'session.end'));
    await b.flush();
    await b.close();
    assert.deepEqual(await storedSeqs('handover'), [1, 2, 3, 4]);
    assert.deepEqual(await verifySession(redis, 'handover'), { valid: true, events: 4, anchored: false });
  });

  it('marks oversized output as truncated and caps events per session with one truncation event', async () => {
    const rec = createRecorder({
      redis,
      failureMode: () => 'best-effort',
      limits: { maxEventBytes: 2048, maxSessionEvents: 10 },
    });
    rec.record(ev('limits', 'session.start'));
    rec.record(ev('limits', 'output', { rows: 'x'.repeat(10_000), columns: ['a'] }));
    for (let i = 0; i < 20; i++) rec.record(ev('limits', 'action', { sql: `select ${i}` }));
    rec.record(ev('limits', 'session.end'));
    await rec.flush();
    const events = [];
    for await (const e of readEvents(redis, 'limits')) events.push(e.event!);
    assert.equal(events.length, 10);
    const out = events[1];
    assert.equal(out.data.truncated, true);
    assert.ok((out.data.originalBytes as number) > 10_000);
    assert.ok(Buffer.byteLength(JSON.stringify(out.data)) <= 2048);
    assert.deepEqual(
      events.filter((e) => e.type === 'error').map((e) => e.data.code),
      ['truncated'],
    );
    assert.equal(events[8].type, 'error');
    assert.equal(events[9].type, 'session.end');
    assert.equal(rec.stats().dropped, 20 - 6);
    const meta = await redis.hgetall(recordingKeys.meta('limits'));
    assert.equal(meta.truncated, '1');
    assert.deepEqual(await verifySession(redis, 'limits'), { valid: true, events: 10, anchored: false });
    await rec.close();
  });

  it('indexes sessions and keeps them out of memory once ended', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed' });
    rec.record(ev('idx-1', 'session.start', { terminal: { width: 80, height: 24 } }, 'host-a'));
    rec.record(
      ev('idx-1', 'decision', { action: 'deny', rule: 'r', policy: 'p', policyVersion: 3, reason: 'rule' }, 'host-a'),
    );
    rec.record(ev('idx-1', 'session.end', {}, 'host-a'));
    await rec.flush();
    await waitFor(() => rec.stats().sessions === 0, 2000, 'session state released');
    assert.equal((await redis.zscore(recordingKeys.byTarget('host-a'), 'idx-1')) !== null, true);
    assert.equal((await redis.zscore(recordingKeys.byDecision('deny'), 'idx-1')) !== null, true);
    const meta = await redis.hgetall(recordingKeys.meta('idx-1'));
    assert.equal(meta.status, 'ended');
    assert.equal(meta.termWidth, '80');
    await rec.close();
  });

  it('a listing counts exactly the acknowledged events, however soon after the last batch', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 0 });
    const id = 'count-exact';
    rec.record(ev(id, 'session.start'));
    for (let i = 0; i < 5; i++) rec.record(ev(id, 'action', { i }));
    await rec.flush();
    assert.equal((await getSession(redis, id))?.events, 6);
    // Well within a second of the previous batch: the count still follows.
    for (let i = 0; i < 3; i++) {
      rec.record(ev(id, 'decision', { action: 'allow' }));
      await rec.flush();
      assert.equal((await getSession(redis, id))?.events, 7 + i);
    }
    const listed = (await listSessions(redis, { agent: 'agent-1', limit: 1000 })).sessions.find((x) => x.id === id);
    assert.equal(listed?.events, 9);
    assert.deepEqual(await verifySession(redis, id), { valid: true, events: 9, anchored: false });
    await rec.close();
  });
  it('flushes asked for together write each event once: the acknowledged count is what is stored, then more', async () => {
    // A batch waits out its window (coalesceMs) on a timer; flushes asked for within that window start the writer at
    // once. Two of them must start one writer: two would send the same batch twice and acknowledge it twice, and the
    // events recorded next would then count as acknowledged without ever being written.
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 50 });
    const id = 'double-flush';
    rec.record(ev(id, 'session.start'));
    for (let i = 0; i < 5; i++) rec.record(ev(id, 'action', { i }));
    await Promise.all([rec.flush(), rec.flush(), rec.flush()]);
    assert.equal(rec.stats().written, 6);
    assert.equal(rec.stats().buffered, 0);
    for (let i = 5; i < 9; i++) rec.record(ev(id, 'action', { i }));
    await Promise.all([rec.flush(), rec.flush()]);
    assert.deepEqual(await storedSeqs(id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual({ written: rec.stats().written, buffered: rec.stats().buffered }, { written: 10, buffered: 0 });
    await rec.close();
  });
  it('lets events go as soon as Redis acknowledges them, so a busy gateway does not promote them to the old generation', async () => {
    // Held by the buffer until a later compaction, acknowledged events lived through young-generation collections and
    // were copied into the old generation: the collector's main cost under load. Reached through the buffer itself
    // (private) because nothing else holds the events.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 0 });
    const id = 'released-after-ack';
    rec.record(ev(id, 'session.start'));
    for (let i = 0; i < 200; i++) rec.record({ ...ev(id, 'action', { sql: `select ${i}` }), requestId: `r${i}` });
    const buffered = (rec as unknown as { queue: object[] }).queue.map((p) => new WeakRef(p));
    assert.equal(buffered.length, 201);
    await rec.flush();
    assert.equal(rec.stats().buffered, 0);
    await new Promise((r) => setImmediate(r));
    gc();
    assert.deepEqual(
      buffered.filter((r) => r.deref() !== undefined).length,
      0,
      'acknowledged events are still referenced by the recorder',
    );
    await rec.close();
  });
  it('chains a large batch a few events per turn of the event loop, so requests arriving meanwhile are not held', async () => {
    // Chained in one go, a batch of a hundred events held every request that arrived during it for most of a
    // millisecond. Watched turn by turn (the session's chained list is private), the chaining must be seen part done.
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 0 });
    const id = 'chained-in-slices';
    rec.record(ev(id, 'session.start'));
    for (let i = 0; i < 99; i++) rec.record(ev(id, 'action', { i }));
    const session = (rec as unknown as { sessions: Map<string, { chained: unknown[] }> }).sessions.get(id)!;
    const seen = new Set<number>();
    let done = false;
    const flushed = rec.flush().then(() => {
      done = true;
    });
    while (!done) {
      seen.add(session.chained.length);
      await new Promise((r) => setImmediate(r));
    }
    await flushed;
    const partial = [...seen].filter((n) => n > 0 && n < 100);
    assert.ok(partial.length >= 5, `chained counts seen between turns: ${[...seen].join(', ')}`);
    assert.deepEqual(
      await storedSeqs(id),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    await rec.close();
  });

  it('stores whole the decisions recorded while the writer chains a batch, between its slices', async () => {
    // A decision's JSON is made after the turn that recorded it; the writer chains eight events a turn and takes, in
    // the same batch, what the session recorded meanwhile: it must not chain an event before its JSON exists.
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 60_000 });
    const id = 'slices-1';
    const decide = (requestId: string) =>
      rec.record({ ...ev(id, 'decision', { action: 'allow', request: { statement: requestId } }), requestId });
    for (let i = 0; i < 100; i++) decide(`a${i}`);
    const flushed = rec.flush();
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setImmediate(r));
      decide(`b${i}`);
    }
    await flushed;
    await rec.close();
    const ids: string[] = [];
    for await (const e of readEvents(redis, id)) {
      const event = e.event;
      assert.ok(event, e.raw);
      assert.equal((event.data.request as { statement: string }).statement, event.requestId);
      ids.push(event.requestId ?? '');
    }
    assert.deepEqual(ids, [
      ...Array.from({ length: 100 }, (_, i) => `a${i}`),
      ...Array.from({ length: 40 }, (_, i) => `b${i}`),
    ]);
    assert.deepEqual(await verifySession(redis, id), { valid: true, events: 140, anchored: false });
  });

  describe('an output folded into its decision', () => {
    const DECISION = { action: 'allow', code: null, message: '', policy: 'p', request: { statement: 'SELECT 1' } };
    // Each event's data is its own (the recorder may add the output to it).
    const decision = (id: string, requestId: string): NewRecordingEvent => ({
      ...ev(id, 'decision', { ...DECISION }),
      requestId,
    });
    const output = (
      id: string,
      requestId: string,
      into: RecordResult,
      data: Record<string, unknown>,
    ): NewRecordingEvent => ({
      ...ev(id, 'output', data),
      requestId,
      into: into.accepted ? into.event : undefined,
    });
    const stored = async (id: string) => {
      const out: Array<{ type: string; requestId?: string; data: Record<string, unknown>; raw: string }> = [];
      for await (const e of readEvents(redis, id)) out.push({ ...e.event!, raw: e.raw });
      return out;
    };

    it('is stored inside its decision while that is not written yet, even after other connections recorded', async () => {
      const secrets = new SecretRegistry();
      secrets.add('s3cr3t-vault-value');
      // A batch window far longer than the test: nothing is chained before the close.
      const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 60_000, secrets });
      rec.record(ev('fold-1', 'session.start'));
      const d1 = rec.record(decision('fold-1', 'r1'));
      // Another connection of the same session decides a statement before the first one's result ends.
      const d2 = rec.record(decision('fold-1', 'r2'));
      rec.record(
        output('fold-1', 'r1', d1, { rows: 1, sample: [['x s3cr3t-vault-value', 'Bearer abcdefghijkl.def']] }),
      );
      rec.record(output('fold-1', 'r2', d2, { rows: 2 }));
      await rec.close();
      const events = await stored('fold-1');
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.requestId ?? ''}`),
        ['session.start ', 'decision r1', 'decision r2'],
      );
      assert.deepEqual(events[1].data.output, { rows: 1, sample: [['x [REDACTED]', 'Bearer [REDACTED]']] });
      assert.deepEqual(events[1].data.request, DECISION.request);
      assert.deepEqual(events[2].data.output, { rows: 2 });
      // The stored data is the canonical form of the whole decision (members sorted), and the chain holds.
      for (const e of events.slice(1)) {
        const data = JSON.parse(e.raw).data;
        assert.ok(e.raw.includes(`"data":${canonicalJson(data)}`), e.raw);
      }
      assert.deepEqual(await verifySession(redis, 'fold-1'), { valid: true, events: 3, anchored: false });
    });

    it('is an event of its own once the decision is written, or when not given its own decision', async () => {
      const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 60_000 });
      const d1 = rec.record(decision('fold-2', 'r1'));
      await rec.flush();
      // The action holding its decision's event does not hold the slab the event was written in once it is stored.
      assert.equal((d1 as unknown as { event: { slab: Buffer | null } }).event.slab, null);
      rec.record(output('fold-2', 'r1', d1, { rows: 1 }));
      const d2 = rec.record(decision('fold-2', 'r2'));
      const e2 = rec.record({ ...ev('fold-2', 'error', { code: 'internal' }), requestId: 'r2' });
      rec.record(output('fold-2', 'r2', e2, { rows: 2 }));
      rec.record(output('fold-2', 'r9', d2, { rows: 9 }));
      const other = rec.record({ ...decision('fold-2b', 'r3') });
      rec.record(output('fold-2', 'r3', other, { rows: 3 }));
      // Not asked to fold: an output like any other.
      rec.record({ ...ev('fold-2', 'output', { rows: 4 }), requestId: 'r2' });
      await rec.close();
      const events = await stored('fold-2');
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.requestId ?? ''}`),
        ['decision r1', 'output r1', 'decision r2', 'error r2', 'output r2', 'output r9', 'output r3', 'output r2'],
      );
      assert.ok(events.every((e) => e.data.output === undefined));
      assert.equal((await verifySession(redis, 'fold-2')).valid, true);
      assert.equal((await stored('fold-2b'))[0].data.output, undefined);
    });

    it('is an event of its own when the two together would pass the size limit', async () => {
      const rec = createRecorder({
        redis,
        failureMode: () => 'fail-closed',
        coalesceMs: 60_000,
        limits: { maxEventBytes: 4096 },
      });
      const d = rec.record(decision('fold-3', 'r1'));
      rec.record(output('fold-3', 'r1', d, { rows: 1, sample: [['y'.repeat(4000)]] }));
      await rec.close();
      const events = await stored('fold-3');
      assert.deepEqual(
        events.map((e) => e.type),
        ['decision', 'output'],
      );
      assert.equal(events[0].data.output, undefined);
      assert.equal(events[1].data.rows, 1);
    });

    // A decision told its output follows is serialized once, with the output, when that comes; the writer serializes
    // it without one when it does not come in time. Either way the stored event is whole and the chain holds.
    it('told that its output follows, is serialized with it, or without it by the writer', async () => {
      const secrets = new SecretRegistry();
      secrets.add('s3cr3t-vault-value');
      const rec = createRecorder({ redis, failureMode: () => 'fail-closed', coalesceMs: 60_000, secrets });
      const follows = (requestId: string, statement: string): NewRecordingEvent => ({
        ...ev('fold-4', 'decision', { ...DECISION, request: { statement } }),
        requestId,
        outputFollows: true,
      });
      const d1 = rec.record(follows('r1', 'SELECT 1'));
      const d2 = rec.record(follows('r2', 'SELECT 2'));
      // An output that comes in a later turn, as a result does.
      await new Promise((resolve) => setImmediate(resolve));
      rec.record(output('fold-4', 'r1', d1, { rows: 1, sample: [['x s3cr3t-vault-value']] }));
      await rec.flush();
      // r2's output came after the writer chained r2: an event of its own.
      rec.record(output('fold-4', 'r2', d2, { rows: 2 }));
      rec.record(follows('r3', 'SELECT 3'));
      // r3's output never comes (the connection ended): the writer serializes it as it is.
      await rec.close();
      const events = await stored('fold-4');
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.requestId ?? ''}`),
        ['decision r1', 'decision r2', 'output r2', 'decision r3'],
      );
      assert.deepEqual(events[0].data.output, { rows: 1, sample: [['x [REDACTED]']] });
      assert.deepEqual(
        events.map((e) => (e.data.request as { statement?: string } | undefined)?.statement),
        ['SELECT 1', 'SELECT 2', undefined, 'SELECT 3'],
      );
      assert.equal(events[1].data.output, undefined);
      assert.equal(events[3].data.output, undefined);
      for (const e of events) assert.ok(e.raw.includes(`"data":${canonicalJson(JSON.parse(e.raw).data)}`), e.raw);
      assert.deepEqual(await verifySession(redis, 'fold-4'), { valid: true, events: 4, anchored: false });
      // The search text is the statements' (not their outputs').
      assert.deepEqual((await redis.hvals('pc:rec:s:{fold-4}:text')).sort(), ['SELECT 1', 'SELECT 2', 'SELECT 3']);
    });
  });
});
