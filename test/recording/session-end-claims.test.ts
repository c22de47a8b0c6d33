/**
 * A session served by two replicas ends once: each replica's SessionEnds finds it due by its own sight of it, and the
 * store decides (activity seen by the other replica postpones an idle end; only one claim records `session.end`; the
 * replica that did not end it refuses it too).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';
import {
  createRecorder,
  readEvents,
  sessionEndClaims,
  verifySession,
  type NewRecordingEvent,
  type RecorderWithStats,
} from '../../extproc/recording/index.ts';
import { SessionEnds } from '../../extproc/spine/index.ts';

const KEY = Buffer.from('session-end-claims-test-key-01234');
const IDLE_MS = 60_000;

let server: TestRedis;
let redis: Redis;
const conns: Redis[] = [];
/** Every replica's clock. */
let now = Date.now();

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

interface Replica {
  recorder: RecorderWithStats;
  ends: SessionEnds;
  asked: () => number;
}

async function replica(): Promise<Replica> {
  const conn = new Redis(server.url);
  conns.push(conn);
  await conn.ping();
  const recorder = createRecorder({
    redis: conn,
    failureMode: () => 'fail-closed',
    anchorKey: KEY,
    now: () => now,
    coalesceMs: 0,
  });
  const claims = sessionEndClaims(conn);
  let asked = 0;
  const ends = new SessionEnds({
    recorder,
    idleMs: IDLE_MS,
    now: () => now,
    claims: {
      claim: async (...args) => {
        const c = await claims.claim(...args);
        asked++;
        return c;
      },
    },
  });
  return { recorder, ends, asked: () => asked };
}

function session(id: string) {
  return { id, agent: { id: 'agent-e' }, target: { name: 'kube-e' }, protocol: 'kubernetes' as const };
}

function ev(sessionId: string, type: NewRecordingEvent['type'], data: Record<string, unknown> = {}): NewRecordingEvent {
  return { type, sessionId, agent: 'agent-e', target: 'kube-e', protocol: 'kubernetes', data };
}

/** Sweeps and waits until the replica's claims asked by this sweep are answered. */
async function sweep(r: Replica): Promise<void> {
  const before = r.asked();
  r.ends.sweep();
  await waitFor(() => r.asked() > before, 5_000, 'the claim to be answered');
}

async function ends(id: string): Promise<NewRecordingEvent[]> {
  const out: NewRecordingEvent[] = [];
  for await (const e of readEvents(redis, id)) if (e.event?.type === 'session.end') out.push(e.event);
  return out;
}

describe('session ends across replicas', () => {
  it('an idle end waits for activity seen by the other replica, is recorded once, and both replicas refuse after it', async () => {
    const [a, b] = [await replica(), await replica()];
    const id = 'end-idle';
    now = Date.now();
    const expiresAt = now + 3_600_000;
    a.ends.opened(session(id), expiresAt);
    a.recorder.record(ev(id, 'session.start'));
    a.recorder.record(ev(id, 'action', { n: 1 }));
    await a.recorder.flush();

    now += 30_000;
    b.ends.opened(session(id), expiresAt);
    b.recorder.record(ev(id, 'session.start'));
    b.recorder.record(ev(id, 'action', { n: 2 }));
    await b.recorder.flush();

    // Idle by what a saw, not by what b saw: the store says so, and a does not end it.
    now += 31_000;
    await sweep(a);
    assert.equal(a.ends.size, 1);
    assert.deepEqual(await ends(id), []);

    now += 30_000;
    // Both find it idle now; a claims first and ends it, b learns it has ended.
    await sweep(a);
    await a.recorder.flush();
    await sweep(b);
    await b.recorder.flush();
    assert.equal(b.ends.sweep(), 0);
    const found = await ends(id);
    assert.equal(found.length, 1);
    assert.equal(found[0].data.reason, 'idle');
    assert.equal(found[0].data.idleMs, 61_000, 'idle since the activity b saw');
    assert.equal(a.ends.endedIdle(id), true);
    assert.equal(b.ends.endedIdle(id), true, 'the replica that did not end it refuses it too');
    assert.equal(a.ends.size + b.ends.size, 0);
    assert.deepEqual(await verifySession(redis, id, KEY), { valid: true, events: 5, anchored: true });
    for (const r of [a, b]) await r.recorder.close();
  });

  it('a token expiry seen by both replicas at once is recorded once', async () => {
    const [a, b] = [await replica(), await replica()];
    const id = 'end-expired';
    now = Date.now();
    for (const r of [a, b]) {
      r.ends.opened(session(id), now + 10_000);
      r.recorder.record(ev(id, 'action', { by: r === a ? 'a' : 'b' }));
      await r.recorder.flush();
    }
    now += 10_000;
    await Promise.all([sweep(a), sweep(b)]);
    await Promise.all([a.recorder.flush(), b.recorder.flush()]);
    const found = await ends(id);
    assert.equal(found.length, 1);
    assert.equal(found[0].data.reason, 'token-expired');
    assert.equal(a.ends.size + b.ends.size, 0);
    assert.deepEqual(await verifySession(redis, id, KEY), { valid: true, events: 3, anchored: true });
    for (const r of [a, b]) await r.recorder.close();
  });
});
