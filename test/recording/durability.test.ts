import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';
import {
  createRecorder,
  readEvents,
  recordingKeys,
  verifySession,
  type NewRecordingEvent,
} from '../../extproc/recording/index.ts';

let server: TestRedis;
let redis: Redis;

before(async () => {
  server = await startRedis();
  // Quick reconnects, so the tests do not wait out ioredis' default backoff.
  redis = new Redis(server.url, { retryStrategy: () => 50 });
  await redis.ping();
});
after(async () => {
  redis.disconnect();
  await server.close();
});

function ev(
  sessionId: string,
  type: NewRecordingEvent['type'],
  target: string,
  data: Record<string, unknown> = {},
): NewRecordingEvent {
  return { type, sessionId, agent: 'agent-d', target, protocol: 'postgres', data };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('recorder durability and failure modes', () => {
  it('loses nothing acknowledged (nor anything buffered) across a Redis restart mid-run', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'best-effort', batchSize: 100 });
    const sessions = Array.from({ length: 20 }, (_, i) => `restart-${i}`);
    const recorded = new Map<string, number>(sessions.map((s) => [s, 0]));
    const round = (n: number): void => {
      for (const s of sessions) {
        rec.record(ev(s, n === 0 ? 'session.start' : 'action', 'db-restart', { sql: `select ${n}` }));
        recorded.set(s, recorded.get(s)! + 1);
      }
    };
    for (let n = 0; n < 30; n++) {
      round(n);
      await tick();
    }
    await rec.flush();
    const acknowledged = rec.stats().written;
    assert.equal(acknowledged, 600);

    // Writes in flight while the server goes down, then more events while it is down.
    for (let n = 30; n < 40; n++) round(n);
    const inFlight = rec.flush();
    await server.stop();
    await waitFor(() => redis.status !== 'ready', 5_000, 'client to notice the server is gone');
    for (let n = 40; n < 60; n++) {
      round(n);
      await tick();
    }
    assert.equal(rec.stats().dropped, 0);
    await server.start();
    await inFlight;
    for (let n = 60; n < 70; n++) {
      round(n);
      await tick();
    }
    for (const s of sessions) {
      rec.record(ev(s, 'session.end', 'db-restart'));
      recorded.set(s, recorded.get(s)! + 1);
    }
    await rec.flush();
    assert.equal(rec.stats().dropped, 0);
    assert.equal(rec.stats().buffered, 0);

    for (const s of sessions) {
      const seqs: number[] = [];
      for await (const e of readEvents(redis, s)) seqs.push(e.event!.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: recorded.get(s)! }, (_, i) => i + 1),
        s,
      );
      assert.deepEqual(await verifySession(redis, s), { valid: true, events: recorded.get(s)!, anchored: false });
    }
    await rec.close();
  });

  it('with Redis stopped, fail-closed refuses new actions and best-effort keeps serving and counts drops', async () => {
    const modes: Record<string, 'fail-closed' | 'best-effort'> = { strict: 'fail-closed', lenient: 'best-effort' };
    const rec = createRecorder({ redis, failureMode: (t) => modes[t] ?? 'fail-closed', maxBuffered: 50 });
    rec.record(ev('fc-1', 'session.start', 'strict'));
    rec.record(ev('be-1', 'session.start', 'lenient'));
    await rec.flush();
    assert.equal(rec.canAccept('strict'), true);

    await server.stop();
    await waitFor(() => !rec.canAccept('strict'), 5_000, 'fail-closed target to stop accepting');
    assert.equal(rec.canAccept('lenient'), true);
    const refused = rec.record(ev('fc-1', 'action', 'strict', { sql: 'delete from t' }));
    assert.equal(refused.accepted, false);
    assert.match(refused.accepted ? '' : refused.reason, /session recording is unavailable/);
    assert.equal(rec.record(ev('fc-2', 'session.start', 'strict')).accepted, false);
    // The outcome of an action already under way is still buffered, so its trail stays complete.
    assert.equal(rec.record(ev('fc-1', 'session.end', 'strict')).accepted, true);

    for (let i = 0; i < 100; i++)
      assert.equal(rec.record(ev('be-1', 'action', 'lenient', { sql: `select ${i}` })).accepted, true);
    const { dropped, buffered } = rec.stats();
    assert.equal(buffered, 50);
    assert.equal(dropped, 51);
    // A full buffer refuses everything on a fail-closed target.
    assert.equal(rec.record(ev('fc-1', 'error', 'strict', { code: 'x' })).accepted, false);

    await server.start();
    await waitFor(() => rec.canAccept('strict'), 10_000, 'fail-closed target to accept again');
    assert.equal(rec.record(ev('fc-3', 'session.start', 'strict')).accepted, true);
    rec.record(ev('be-1', 'session.end', 'lenient'));
    await rec.flush();

    const be: NewRecordingEvent[] = [];
    for await (const e of readEvents(redis, 'be-1')) be.push(e.event!);
    // 1 start + 49 actions that fit, then one marker counting the 51 dropped, then session.end.
    assert.equal(be.length, 52);
    assert.deepEqual(be[50].data, { code: 'dropped', count: 51, message: be[50].data.message });
    assert.deepEqual(await verifySession(redis, 'be-1'), { valid: true, events: 52, anchored: false });
    assert.deepEqual(await verifySession(redis, 'fc-1'), { valid: true, events: 2, anchored: false });
    await rec.close();
  });

  // Issue 4: a best-effort session whose events were dropped, and which records nothing afterwards (or whose every
  // event was dropped), used to leave no trace in its chain; only stats().dropped counted the loss.
  it('marks best-effort drops in the chain once recording works again, even for sessions that record nothing more', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'best-effort', maxBuffered: 5 });
    rec.record(ev('gap-stored', 'session.start', 'lenient'));
    rec.record(ev('gap-stored', 'action', 'lenient', { sql: 'select 1' }));
    await rec.flush();

    await server.stop();
    await waitFor(() => redis.status !== 'ready', 5_000, 'client to notice the server is gone');
    for (let i = 0; i < 5; i++)
      rec.record(ev('gap-filler', i === 0 ? 'session.start' : 'action', 'lenient', { sql: `select ${i}` }));
    assert.equal(rec.stats().buffered, 5);
    // The buffer is full: these are all dropped. gap-stored never records again; gap-lost has nothing stored at all.
    for (let i = 0; i < 3; i++) rec.record(ev('gap-stored', 'action', 'lenient', { sql: `select ${i}` }));
    rec.record(ev('gap-lost', 'session.start', 'lenient'));
    for (let i = 0; i < 3; i++) rec.record(ev('gap-lost', 'action', 'lenient', { sql: `select ${i}` }));
    rec.record(ev('gap-lost', 'session.end', 'lenient'));
    assert.equal(rec.stats().dropped, 8);

    await server.start();
    await waitFor(() => rec.stats().redisUp && rec.stats().buffered === 0, 10_000, 'the buffer to drain');
    await rec.flush();

    const stored: Record<string, NewRecordingEvent[]> = {};
    for (const id of ['gap-stored', 'gap-lost', 'gap-filler']) {
      stored[id] = [];
      for await (const e of readEvents(redis, id)) stored[id].push(e.event!);
    }
    assert.deepEqual(
      stored['gap-stored'].map((e) => e.type),
      ['session.start', 'action', 'error'],
    );
    assert.equal(stored['gap-stored'][2].data.code, 'dropped');
    assert.equal(stored['gap-stored'][2].data.count, 3);
    assert.deepEqual(
      stored['gap-lost'].map((e) => [e.type, e.data.code, e.data.count]),
      [['error', 'dropped', 5]],
    );
    assert.deepEqual(
      stored['gap-filler'].map((e) => e.type),
      ['session.start', 'action', 'action', 'action', 'action'],
    );
    assert.deepEqual(await verifySession(redis, 'gap-stored'), { valid: true, events: 3, anchored: false });
    assert.deepEqual(await verifySession(redis, 'gap-lost'), { valid: true, events: 1, anchored: false });
    // The session whose every event was lost is still listed for the auditor, under its agent and target.
    const meta = await redis.hgetall(recordingKeys.meta('gap-lost'));
    assert.equal(meta.agent, 'agent-d');
    assert.equal(meta.target, 'lenient');
    assert.equal(rec.stats().dropped, 8);
    await rec.close();
  });

  // A write whose reply is lost (the client timed out while Redis was frozen) is sent again; Redis then runs both. The
  // second must be recognised as the first's, not stored again nor re-chained after it.
  it('stores a write whose reply was lost once, when its retry reaches Redis after it', async () => {
    const conn = new Redis(server.url, { commandTimeout: 200, retryStrategy: () => 50 });
    await conn.ping();
    const rec = createRecorder({ redis: conn, failureMode: () => 'best-effort', coalesceMs: 0 });
    rec.record(ev('lost-reply', 'session.start', 'db-lost'));
    await rec.flush();
    server.pause();
    try {
      for (let i = 0; i < 5; i++) rec.record(ev('lost-reply', 'action', 'db-lost', { n: i }));
      // The write times out and is retried (queued behind the first on the same connection) while Redis is frozen.
      await waitFor(() => !rec.stats().redisUp, 5_000, 'the write to time out');
    } finally {
      server.resume();
    }
    rec.record(ev('lost-reply', 'session.end', 'db-lost'));
    await rec.flush();
    const seqs: number[] = [];
    const ns: unknown[] = [];
    for await (const e of readEvents(redis, 'lost-reply')) {
      seqs.push(e.event!.seq);
      if (e.event!.type === 'action') ns.push(e.event!.data.n);
    }
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(ns, [0, 1, 2, 3, 4]);
    assert.deepEqual(await verifySession(redis, 'lost-reply'), { valid: true, events: 7, anchored: false });
    assert.equal(rec.stats().dropped, 0);
    await rec.close();
    conn.disconnect();
  });
});
