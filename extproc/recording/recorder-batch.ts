/**
 * One write of a batch of chained events to Redis, as a single script call (redis-append.ts): the events' XADDs, then
 * the session metadata and index updates the batch implies (first sighting, decisions, terminal size, end, search
 * text, progress). Session states are marked written only after Redis acknowledged, so a failed batch is retried
 * whole. An XADD refused because its entry exists is resolved by reading the entry back (checkConflicts).
 */
import type { RedisClient } from '../common/redis-client.ts';
import { sealedHash, storedJson } from './event-slab.ts';
import { entryId, keys } from './keys.ts';
import type { ChainedPending, Pending } from './recorder-pending.ts';
import type { SessionState } from './recorder-session.ts';
import { AppendBatch } from './redis-append.ts';

/** Progress (last seq/hash/time) is written at most this often per session when nothing else changed. */
const PROGRESS_EVERY_MS = 1000;

/** What a batch changes in one session's metadata and indexes. */
interface Touched {
  last: Pending;
  metaExtra: Record<string, string>;
  decisions: string[];
  text: string[];
}

/**
 * Writes `batch` (every event chained); throws when it must be retried. `lost` is called for each event that
 * another writer's entry displaced (the event is not stored).
 */
export async function writeBatch(redis: RedisClient, batch: Pending[], lost: (p: Pending) => void): Promise<void> {
  const out = new AppendBatch(batch as ChainedPending[]);
  const now = Date.now();
  const touched = new Map<SessionState, Touched>();
  for (const p of batch) {
    const state = p.state;
    let t = touched.get(state);
    if (!t) {
      t = { last: p, metaExtra: {}, decisions: [], text: [] };
      touched.set(state, t);
    }
    t.last = p;
    if (p.type === 'session.end') {
      t.metaExtra.status = 'ended';
      t.metaExtra.endedAt = String(Date.parse(p.time));
    }
    const note = p.note;
    if (note) {
      if (note.terminal) {
        t.metaExtra.termWidth = String(note.terminal.width);
        t.metaExtra.termHeight = String(note.terminal.height);
      }
      if (note.decision && !state.decisions.has(note.decision) && !t.decisions.includes(note.decision))
        t.decisions.push(note.decision);
      if (note.truncated) t.metaExtra.truncated = '1';
      if (note.text) t.text.push(String(p.seq), note.text);
    }
  }
  const progressed: SessionState[] = [];
  for (const [s, t] of touched) {
    const ev = t.last;
    const meta = keys.meta(s.id);
    const start = String(s.startMs);
    if (!s.indexed) {
      out.command('HSET', meta, 'id', s.id, 'agent', ev.agent, 'target', ev.target, 'protocol', ev.protocol);
      out.command('HSETNX', meta, 'startedAt', start);
      out.command('HSETNX', meta, 'status', 'open');
      out.command('ZADD', keys.byStart, start, s.id);
      out.command('ZADD', keys.byAgent(ev.agent), start, s.id);
      out.command('ZADD', keys.byTarget(ev.target), start, s.id);
      out.command('ZADD', keys.byProtocol(ev.protocol), start, s.id);
    }
    for (const d of t.decisions) {
      out.command('HSET', meta, `decision:${d}`, '1');
      out.command('ZADD', keys.byDecision(d), start, s.id);
    }
    if (t.text.length) out.command('HSET', keys.text(s.id), ...t.text);
    const extra = Object.entries(t.metaExtra).flat();
    // Progress (last seq/hash/time) is written at most once a second per session, and with every state change:
    // it serves listings and retention; the chain itself lives in the stream.
    if (!s.indexed || extra.length || t.decisions.length || now - s.progressAt >= PROGRESS_EVERY_MS) {
      const lastMs = String(Date.parse(ev.time));
      out.command(
        'HSET',
        meta,
        'lastSeq',
        String(ev.seq),
        'lastHash',
        sealedHash(ev as ChainedPending),
        'lastEventAt',
        lastMs,
        ...extra,
      );
      out.command('ZADD', keys.byActivity, lastMs, s.id);
      progressed.push(s);
    }
  }
  const refused = await out.run(redis);
  const conflicts: Pending[] = [];
  for (const r of refused) {
    if (!/equal or smaller than the target stream top item/.test(r.error)) throw new Error(r.error);
    conflicts.push(batch[r.index]);
  }
  if (conflicts.length > 0) await checkConflicts(redis, conflicts, lost);
  for (const [s, t] of touched) {
    s.indexed = true;
    for (const d of t.decisions) s.decisions.add(d);
  }
  for (const s of progressed) s.progressAt = now;
}

/** An XADD refused because the entry exists: the same event written by an earlier try, or another writer's. */
async function checkConflicts(redis: RedisClient, conflicts: Pending[], lost: (p: Pending) => void): Promise<void> {
  const pipe = redis.pipeline();
  for (const p of conflicts) pipe.xrange(keys.events(p.sessionId), entryId(p.seq), entryId(p.seq));
  const res = (await pipe.exec()) ?? [];
  conflicts.forEach((p, i) => {
    const [err, entries] = res[i] ?? [new Error('no reply'), null];
    if (err) throw err;
    const stored = (entries as Array<[string, string[]]>)[0]?.[1]?.[1];
    if (stored !== storedJson(p as ChainedPending)) lost(p);
  });
}
