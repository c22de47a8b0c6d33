/**
 * Many writers, one record: replicas and restarts append to the same sessions, every event is stored once in one
 * unbroken chain, and the chain's end is anchored so truncation and appended forgeries fail verification.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import {
  anchorOf,
  createRecorder,
  getSession,
  readEvents,
  recordingKeys,
  verifySession,
  type NewRecordingEvent,
  type RecordingEvent,
} from '../../extproc/recording/index.ts';
import { hashEvent } from '../../extproc/recording/hash-chain.ts';
import { formatTip, parseTip } from '../../extproc/recording/tip.ts';

const KEY = Buffer.from('many-writers-test-anchor-key-0123');

let server: TestRedis;
let redis: Redis;
const conns: Redis[] = [];

before(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  await redis.ping();
});
after(async () => {
  for (const c of conns) c.disconnect();
  redis.disconnect();
  await server.close();
});

/** A writer as a replica has it: its own connection and recorder. */
async function replica(opts: { anchorKey?: Buffer } = { anchorKey: KEY }) {
  const conn = new Redis(server.url);
  conns.push(conn);
  await conn.ping();
  return createRecorder({ redis: conn, failureMode: () => 'fail-closed', batchSize: 50, coalesceMs: 1, ...opts });
}

function ev(sessionId: string, type: NewRecordingEvent['type'], data: Record<string, unknown> = {}): NewRecordingEvent {
  return { type, sessionId, agent: 'agent-m', target: 'kube-m', protocol: 'kubernetes', data };
}

async function stored(id: string): Promise<RecordingEvent[]> {
  const out: RecordingEvent[] = [];
  for await (const e of readEvents(redis, id)) out.push(e.event!);
  return out;
}

/** What a forger without the key can do: move the session's recorded end, keeping the anchor that was there. */
async function moveTip(id: string, seq: number, hash: string): Promise<void> {
  const old = parseTip(await redis.hget(recordingKeys.meta(id), 'tip'));
  await redis.hset(recordingKeys.meta(id), 'tip', formatTip(seq, hash, old?.anchor ?? ''));
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Records a session of `n` actions through three replicas in turn, the first two at once; returns its id. */
async function recordThroughReplicas(id: string, n: number): Promise<void> {
  const a = await replica();
  const b = await replica();
  a.record(ev(id, 'session.start', { by: 'a' }));
  for (let i = 0; i < n; i++) {
    (i % 3 === 0 ? b : a).record(ev(id, 'action', { n: i }));
    if (i % 7 === 0) await tick();
  }
  await Promise.all([a.flush(), b.flush()]);
  await a.close();
  await b.close();
}

describe('recording with many writers', () => {
  it('two replicas at once and a restarted one append every event of shared sessions once, in one verifiable chain', async () => {
    const a = await replica();
    const b = await replica();
    const sessions = ['mw-1', 'mw-2', 'mw-3'];
    const sent = new Map<string, string[]>(sessions.map((s) => [s, []]));
    // Each replica announces the session (as the spine does the first time a process sees it), then both record
    // actions of every session, interleaved, yielding so that their batches overlap.
    for (const s of sessions)
      for (const [name, rec] of [
        ['a', a],
        ['b', b],
      ] as const) {
        assert.equal(rec.record(ev(s, 'session.start', { by: name })).accepted, true);
        sent.get(s)!.push(`start:${name}`);
      }
    for (let n = 0; n < 120; n++) {
      for (const s of sessions) {
        const [name, rec] = n % 2 ? (['a', a] as const) : (['b', b] as const);
        assert.equal(rec.record(ev(s, 'action', { by: name, n })).accepted, true);
        sent.get(s)!.push(`${name}:${n}`);
      }
      if (n % 5 === 0) await tick();
    }
    await Promise.all([a.flush(), b.flush()]);
    // Both wrote every session: at least one had to chain again from a tip the other had moved.
    assert.ok(a.stats().rebased + b.stats().rebased > 0);
    await a.close();

    // A restarted process (no state in memory) continues the sessions, still beside b.
    const c = await replica();
    for (const s of sessions) {
      c.record(ev(s, 'action', { by: 'c', n: 0 }));
      b.record(ev(s, 'action', { by: 'b', n: 1000 }));
      c.record(ev(s, 'session.end', { reason: 'idle' }));
      sent.get(s)!.push('c:0', 'b:1000', 'end');
    }
    await Promise.all([b.flush(), c.flush()]);
    for (const r of [a, b, c]) assert.equal(r.stats().dropped, 0);
    await b.close();
    await c.close();

    for (const s of sessions) {
      const events = await stored(s);
      const want = sent.get(s)!;
      assert.deepEqual(
        events.map((e) => e.seq),
        want.map((_, i) => i + 1),
        `${s}: seqs 1..${want.length}, no gap`,
      );
      const got = events.map((e) =>
        e.type === 'session.start'
          ? `start:${e.data.by}`
          : e.type === 'session.end'
            ? 'end'
            : `${e.data.by}:${e.data.n}`,
      );
      assert.deepEqual([...got].sort(), [...want].sort(), `${s}: every event once`);
      // Each writer's own events keep their order.
      for (const w of ['a', 'b'])
        assert.deepEqual(
          got.filter((x) => x.startsWith(`${w}:`)),
          want.filter((x) => x.startsWith(`${w}:`)),
        );
      assert.deepEqual(await verifySession(redis, s, KEY), { valid: true, events: want.length, anchored: true });
      assert.equal((await getSession(redis, s))?.events, want.length);
      assert.equal((await getSession(redis, s))?.status, 'ended');
    }
  });

  it('deleting the newest event fails verification, even with the stream and the recorded end rewritten to match', async () => {
    await recordThroughReplicas('tail-del', 20);
    assert.equal((await verifySession(redis, 'tail-del', KEY)).valid, true);
    const events = await stored('tail-del');
    const last = events[events.length - 1];

    await redis.xdel(recordingKeys.events('tail-del'), `${last.seq}-0`);
    const r1 = await verifySession(redis, 'tail-del', KEY);
    assert.equal(r1.valid, false);
    assert.equal(r1.valid === false && r1.firstBadSeq, last.seq);

    // A forger with Redis write access: recreate the stream without it (no trace of the deleted id) and move the
    // recorded end back. Only the anchor, which needs the key, still says where the session ended.
    const kept = (await redis.xrange(recordingKeys.events('tail-del'), '-', '+')) as Array<[string, string[]]>;
    await redis.del(recordingKeys.events('tail-del'));
    for (const [id, f] of kept) await redis.xadd(recordingKeys.events('tail-del'), id, 'e', f[1]);
    const prev = events[events.length - 2];
    await moveTip('tail-del', prev.seq, prev.hash);
    const r2 = await verifySession(redis, 'tail-del', KEY);
    assert.equal(r2.valid, false);
    assert.equal(r2.valid === false && r2.firstBadSeq, prev.seq);
    assert.match(r2.valid === false ? r2.reason : '', /does not match its anchor/);
    // Without the key the same forgery is not caught, and the answer says the end was not anchored.
    assert.deepEqual(await verifySession(redis, 'tail-del'), { valid: true, events: prev.seq, anchored: false });
  });

  it('appending a well-formed forged event fails verification, with or without a matching recorded end', async () => {
    await recordThroughReplicas('tail-add', 10);
    const events = await stored('tail-add');
    const last = events[events.length - 1];
    const forged: Omit<RecordingEvent, 'hash'> & { hash?: string } = {
      ...last,
      type: 'decision',
      seq: last.seq + 1,
      prevHash: last.hash,
      time: new Date().toISOString(),
      data: { action: 'allow', reason: 'rule', rule: 'forged' },
    };
    forged.hash = hashEvent(forged);
    await redis.xadd(recordingKeys.events('tail-add'), `${forged.seq}-0`, 'e', JSON.stringify(forged));
    const r1 = await verifySession(redis, 'tail-add', KEY);
    assert.equal(r1.valid === false && r1.firstBadSeq, forged.seq);
    assert.match(r1.valid === false ? r1.reason : '', /beyond the recorded end/);

    await moveTip('tail-add', forged.seq, forged.hash!);
    const r2 = await verifySession(redis, 'tail-add', KEY);
    assert.equal(r2.valid === false && r2.firstBadSeq, forged.seq);
    assert.match(r2.valid === false ? r2.reason : '', /does not match its anchor/);

    // A writer that continues the session after the forgery keeps its events but never anchors the forged tip.
    const d = await replica();
    assert.equal(d.record(ev('tail-add', 'action', { after: 'forgery' })).accepted, true);
    await d.flush();
    await d.close();
    assert.equal(d.stats().dropped, 0);
    assert.deepEqual((await stored('tail-add')).at(-1)?.data, { after: 'forgery' });
    const r3 = await verifySession(redis, 'tail-add', KEY);
    assert.equal(r3.valid, false);
    assert.match(r3.valid === false ? r3.reason : '', /has no anchor/);

    // The anchor is all that tells the two apart: with the key, the same stream and end verify.
    const tip = (await stored('tail-add')).at(-1)!;
    await redis.hset(
      recordingKeys.meta('tail-add'),
      'tip',
      formatTip(tip.seq, tip.hash, anchorOf(KEY, 'tail-add', tip.seq, tip.hash)),
    );
    assert.equal((await verifySession(redis, 'tail-add', KEY)).valid, true);
  });

  it('a session recorded without the key fails verification by a verifier that has one', async () => {
    const rec = await replica({});
    rec.record(ev('no-key', 'session.start'));
    rec.record(ev('no-key', 'action', { n: 1 }));
    await rec.flush();
    await rec.close();
    assert.deepEqual(await verifySession(redis, 'no-key'), { valid: true, events: 2, anchored: false });
    const r = await verifySession(redis, 'no-key', KEY);
    assert.equal(r.valid, false);
    assert.match(r.valid === false ? r.reason : '', /has no anchor/);
  });

  it('refuses session ids that would split a session over Redis Cluster slots', async () => {
    const rec = await replica();
    assert.throws(() => rec.record(ev('}x', 'session.start')), /no control characters or braces/);
    await rec.close();
  });
});
