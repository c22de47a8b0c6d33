import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import {
  applyRetention,
  createRecorder,
  listSessions,
  recordingKeys,
  type RecordingEvent,
} from '../../extproc/recording/index.ts';
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

describe('retention', () => {
  it('removes sessions idle longer than the maximum age, exporting them first, and keeps those whose export fails', async () => {
    const rec = createRecorder({ redis, failureMode: () => 'fail-closed' });
    for (const id of ['old-1', 'old-2', 'fresh']) {
      const base = { sessionId: id, agent: 'a', target: 't', protocol: 'postgres' as const };
      rec.record({ ...base, type: 'session.start', data: {} });
      rec.record({
        ...base,
        type: 'decision',
        data: { action: 'deny', rule: 'r', policy: 'p', policyVersion: 1, reason: 'rule' },
      });
      rec.record({ ...base, type: 'session.end', data: {} });
    }
    await rec.flush();
    await rec.close();
    // Age two sessions by moving their last activity an hour back.
    const hourAgo = Date.now() - 3_600_000;
    await redis.zadd(recordingKeys.byActivity, hourAgo, 'old-1', hourAgo, 'old-2');

    const exported = new Map<string, RecordingEvent[]>();
    const r1 = await applyRetention({
      redis,
      maxAgeSeconds: 600,
      async exportTo(id, events) {
        if (id === 'old-2') throw new Error('archive unavailable');
        exported.set(id, events);
      },
    });
    assert.deepEqual(r1, { removed: 1, exported: 1, failed: 1 });
    assert.deepEqual(
      exported.get('old-1')!.map((e) => e.type),
      ['session.start', 'decision', 'session.end'],
    );
    const left = async (): Promise<string[]> => (await listSessions(redis, {})).sessions.map((s) => s.id).sort();
    assert.deepEqual(await left(), ['fresh', 'old-2']);
    assert.equal(
      await redis.exists(recordingKeys.events('old-1'), recordingKeys.meta('old-1'), recordingKeys.text('old-1')),
      0,
    );
    assert.equal(await redis.zscore(recordingKeys.byDecision('deny'), 'old-1'), null);
    assert.equal(await redis.zscore(recordingKeys.byAgent('a'), 'old-1'), null);

    const r2 = await applyRetention({ redis, maxAgeSeconds: 600 });
    assert.deepEqual(r2, { removed: 1, exported: 0, failed: 0 });
    assert.deepEqual(await left(), ['fresh']);
  });
});
