/**
 * Fail closed in time: a fail-closed target refuses new actions once the oldest event Redis has not acknowledged has
 * waited longer than maxUnacknowledgedMs, and accepts again once that backlog is acknowledged. The clock is injected;
 * Redis is real (held back by a long batch window, or frozen with SIGSTOP).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRecorder, verifySession, type NewRecordingEvent } from '../../extproc/recording/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

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

const ev = (sessionId: string, type: NewRecordingEvent['type'], target = 'closed'): NewRecordingEvent => ({
  type,
  sessionId,
  agent: 'agent-1',
  target,
  protocol: 'kubernetes',
  data: {},
});
const mode = (target: string) => (target === 'closed' ? 'fail-closed' : 'best-effort');

describe('recorder: oldest unacknowledged event bound', () => {
  it('refuses new actions of a fail-closed target once the oldest unacknowledged event is older than the bound', async () => {
    let now = 1_800_000_000_000;
    // A batch window far longer than the test: nothing is written until flush().
    const rec = createRecorder({
      redis,
      failureMode: mode,
      coalesceMs: 600_000,
      maxUnacknowledgedMs: 2000,
      now: () => now,
    });
    assert.equal(rec.record(ev('u-1', 'session.start')).accepted, true);
    now += 1500;
    assert.equal(rec.record(ev('u-1', 'action')).accepted, true);
    now += 500;
    assert.equal(rec.canAccept('closed'), true, 'exactly at the bound: still accepted');
    assert.equal(rec.stats().oldestUnacknowledgedMs, 2000);
    now += 1;
    assert.equal(rec.canAccept('closed'), false);
    const refused = rec.record(ev('u-1', 'action'));
    assert.equal(refused.accepted, false);
    assert.match((refused as { reason: string }).reason, /not acknowledged events in time/);
    assert.equal(rec.record(ev('u-2', 'session.start')).accepted, false);
    // Events of an action already under way are still taken.
    assert.equal(rec.record(ev('u-1', 'decision')).accepted, true);
    // Best-effort targets are unaffected.
    assert.equal(rec.canAccept('open'), true);
    assert.equal(rec.record(ev('u-3', 'session.start', 'open')).accepted, true);
    assert.equal(rec.record(ev('u-3', 'action', 'open')).accepted, true);

    await rec.flush();
    assert.equal(rec.canAccept('closed'), true, 'accepts again once the backlog is acknowledged');
    assert.equal(rec.stats().oldestUnacknowledgedMs, 0);
    assert.equal(rec.record(ev('u-1', 'action')).accepted, true);
    await rec.close();
    assert.deepEqual(await verifySession(redis, 'u-1'), { valid: true, events: 4, anchored: false });
  });

  it('a hung Redis (SIGSTOP, connection still ready): refused after the bound, accepted again after SIGCONT', async () => {
    let now = 1_800_000_000_000;
    const rec = createRecorder({ redis, failureMode: mode, coalesceMs: 0, maxUnacknowledgedMs: 2000, now: () => now });
    assert.equal(rec.record(ev('h-1', 'session.start')).accepted, true);
    await rec.flush();
    server.pause();
    try {
      assert.equal(rec.record(ev('h-1', 'action')).accepted, true);
      assert.equal(rec.record(ev('h-1', 'decision')).accepted, true);
      // Let the writer send its batch into the frozen server.
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(redis.status, 'ready', 'the client still sees the server connected');
      assert.equal(rec.stats().redisUp, true);
      now += 1000;
      assert.equal(rec.canAccept('closed'), true);
      now += 1001;
      assert.equal(rec.canAccept('closed'), false);
      assert.equal(rec.record(ev('h-1', 'action')).accepted, false);
      assert.equal(rec.canAccept('open'), true);
    } finally {
      server.resume();
    }
    await rec.flush();
    assert.equal(rec.canAccept('closed'), true);
    assert.equal(rec.record(ev('h-1', 'action')).accepted, true);
    await rec.close();
    assert.deepEqual(await verifySession(redis, 'h-1'), { valid: true, events: 4, anchored: false });
  });
});
