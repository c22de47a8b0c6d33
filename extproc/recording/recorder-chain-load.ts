/**
 * Continuing a chain this process did not start: a session whose first event seen here is not its `session.start`
 * (another process recorded it before, or its state was evicted from memory). The writer loads it off the data path
 * from the last entry Redis holds, then chains the events that waited for it, in the order they were recorded.
 */
import type { RedisClient } from '../common/redis-client.ts';
import type { EventSlabs } from './event-slab.ts';
import { keys, seqOfEntryId } from './keys.ts';
import { chainEvent, type Pending } from './recorder-pending.ts';
import type { RecordingEvent } from './types.ts';

/** Loads and chains the sessions of `batch` that are not loaded yet, in one pipeline. */
export async function loadChains(redis: RedisClient, batch: Pending[], slabs: EventSlabs): Promise<void> {
  const toLoad = [...new Set(batch.filter((p) => !p.state.loaded).map((p) => p.state))];
  if (toLoad.length === 0) return;
  const pipe = redis.pipeline();
  for (const s of toLoad) {
    pipe.xrevrange(keys.events(s.id), '+', '-', 'COUNT', 1);
    pipe.hget(keys.meta(s.id), 'startedAt');
  }
  const res = await pipe.exec();
  if (!res) throw new Error('pipeline aborted');
  toLoad.forEach((s, i) => {
    const [e1, last] = res[2 * i];
    const [e2, startedAt] = res[2 * i + 1];
    if (e1 || e2) throw e1 ?? e2;
    const entries = last as Array<[string, string[]]>;
    if (entries.length > 0) {
      const ev = JSON.parse(entries[0][1][1]) as RecordingEvent;
      s.seq = seqOfEntryId(entries[0][0]);
      s.lastHash = ev.hash;
    }
    s.startMs = startedAt ? Number(startedAt) : Date.parse(s.unassigned[0]?.time ?? new Date().toISOString());
    s.loaded = true;
    for (const p of s.unassigned) chainEvent(p, slabs);
    s.unassigned = [];
  });
}
