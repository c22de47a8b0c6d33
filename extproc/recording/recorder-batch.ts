/**
 * One write of a batch of buffered events to Redis. The events are chained here (seq, prevHash, hash) from where this
 * writer believes each session's chain ends, and appended by one script call (redis-append.ts) that checks, per
 * session and atomically, that the chain still ends there. A session another writer (a replica, a restarted or
 * earlier process) moved on in the meantime is answered with its current tip: its events are chained again from it
 * and sent again, until they are appended. So any number of writers append to one session's chain, none loses an
 * event, and the chain stays one unbroken sequence 1, 2, 3… The tip moves only together with its keyed anchor
 * (anchor.ts).
 *
 * With the events go the session's metadata (first sighting, decisions, terminal size, end, search text, last event
 * time), applied in the same script only if the events are; the cross-session indexes (sorted sets, one key each)
 * are written beside it with ZADD NX, first score wins, idempotent. Session states are marked written only after
 * Redis acknowledged, so a failed batch is retried whole; a retry whose first try was applied is recognised by the
 * script (its first event is already stored) and not stored twice.
 */
import type { RedisClient } from '../common/redis-client.ts';
import { anchorMatches, anchorOf } from './anchor.ts';
import type { EventSlabs } from './event-slab.ts';
import { sealedHash } from './event-slab.ts';
import { runCommands } from './commands.ts';
import { keys } from './keys.ts';
import { chainEvent, type ChainedPending, type Pending, rechainEvent } from './recorder-pending.ts';
import type { SessionState } from './recorder-session.ts';
import { type AppendOutcome, appendEvents, type SessionAppend } from './redis-append.ts';

/** A session's last activity (metadata and index) is written at most this often per session. */
const ACTIVITY_EVERY_MS = 1000;
/**
 * Rounds of "chain again from the tip another writer left" within one batch before the batch is retried later; each
 * round appends some writer's events, so this is reached only by a session under constant concurrent appends.
 */
const MAX_REBASES = 16;

export interface BatchWriter {
  redis: RedisClient;
  slabs: EventSlabs;
  /**
   * Makes an event's JSON if it is not made yet (chaining needs it): a decision whose serialization waits for the end
   * of its turn, or for its output (chained without it: the output becomes an event of its own).
   */
  serialize: (p: Pending) => void;
  /** The anchor key; null: tips are not anchored. */
  anchorKey: Buffer | null;
  /** An event the store refused for good (its stream was written around its tip): counted and logged as lost. */
  lost: (p: Pending, why: string) => void;
  /** Another writer had moved a session's chain on; its events were chained again (for stats). */
  rebased: (events: number) => void;
  /** A session's recorded end does not carry a valid anchor (tampering, or written without the key). */
  unanchoredTip: (sessionId: string, seq: number) => void;
}

/**
 * Events chained per turn of the event loop. Chained in one go, a batch (a hundred events and more under load, about
 * 5 µs each) held every request that arrived meanwhile for most of a millisecond; in slices of 8 a request waits for
 * at most about 40 µs of it.
 */
const CHAIN_SLICE = 8;
/**
 * A batch this large means the writer is behind (saturation: the buffer, bounded by maxBuffered, is the backpressure),
 * and it is chained in one go: every turn given back lets more requests record more events, so slicing it cut the
 * recorder's own throughput by a fifth with one writer and by half with two writers appending to the same sessions
 * (bench/recording.bench.ts). A writer keeping up sends far smaller batches (about 100-200 events in the PostgreSQL
 * bench) and slices them. Two writers contending for one session still pay for it: their smaller batches are sliced,
 * so more of them are re-chained after the other's append (that case ran at 23-25k events/s against 32-41k unsliced).
 */
const SLICED_BELOW = 512;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Chains every waiting event of the sessions about to be sent (and drops its data string), not only the batch's:
 * buffered events then hold no large strings for the collector to copy. Events recorded while it yields join their
 * session's waiting list behind those being chained, so the order is the order recorded.
 */
async function chainWaiting(batch: Pending[], w: BatchWriter): Promise<void> {
  const slice = batch.length < SLICED_BELOW ? CHAIN_SLICE : Number.POSITIVE_INFINITY;
  let chained = 0;
  for (const p of batch) {
    const waiting = p.state.unassigned;
    if (waiting.length === 0) continue;
    p.state.unassigned = [];
    for (const q of waiting) {
      // Events recorded while this yields may still wait for their serialization, as may a decision's output.
      if (q.data !== null) w.serialize(q);
      chainEvent(q, w.slabs);
      if (++chained % slice === 0) await nextTurn();
    }
  }
  if (chained > 0 && slice === CHAIN_SLICE) await nextTurn();
}

/** Writes `batch` (chaining what is not chained yet); throws when it must be retried. */
export async function writeBatch(w: BatchWriter, batch: Pending[]): Promise<void> {
  await chainWaiting(batch, w);
  const groups = new Map<SessionState, Pending[]>();
  for (const p of batch) {
    const g = groups.get(p.state);
    if (g) g.push(p);
    else groups.set(p.state, [p]);
  }
  const now = Date.now();
  // Sent beside the appends, not before their replies; a failure is thrown once the appends are settled.
  // Sessions whose last activity is written with this batch: new here, ended, or not written for a second.
  const progressing = new Set<SessionState>();
  for (const [s, g] of groups)
    if (!s.indexed || now - s.progressAt >= ACTIVITY_EVERY_MS || g[g.length - 1].type === 'session.end') {
      progressing.add(s);
      s.progressAt = now;
    }
  const indexing = writeIndexes(w.redis, groups, progressing).then(
    () => null,
    (err: unknown) => err,
  );
  let todo = [...groups.entries()];
  for (let round = 0; todo.length > 0; round++) {
    if (round === MAX_REBASES) throw new Error('recording chain contended: batch retried later');
    const calls = w.redis.isCluster ? todo.map((g) => [g]) : [todo];
    const outcomes = await Promise.all(calls.map((c) => appendCall(w, c, progressing)));
    const again: typeof todo = [];
    calls.forEach((c, i) => {
      c.forEach(([state, events], j) => {
        const o = outcomes[i][j];
        if (o.kind === 'moved') {
          // A tip that does not carry its anchor was moved by someone without the key: the events are still
          // appended (nothing is lost), but never anchored, so the session keeps failing verification.
          if (
            w.anchorKey
            && !state.unanchored
            && o.tipSeq > 0
            && !anchorMatches(w.anchorKey, state.id, o.tipSeq, o.tipHash, o.tipAnchor)
          ) {
            state.unanchored = true;
            w.unanchoredTip(state.id, o.tipSeq);
          }
          state.seq = o.tipSeq;
          state.lastHash = o.tipHash;
          // This batch's events of the session and any chained after them, in order.
          for (const q of state.chained) rechainEvent(q as ChainedPending, w.slabs);
          w.rebased(events.length);
          again.push([state, events]);
        } else if (o.kind === 'refused') {
          for (const p of events) w.lost(p, o.error);
        }
      });
    });
    todo = again;
  }
  const indexFailed = await indexing;
  if (indexFailed) throw indexFailed;
  for (const [s, events] of groups) {
    s.indexed = true;
    for (const p of events) if (p.note?.decision) s.decisions.add(p.note.decision);
  }
}

/** One script call appending `groups` (one session each), each with what its events change in its metadata. */
function appendCall(
  w: BatchWriter,
  groups: Array<[SessionState, Pending[]]>,
  progressing: Set<SessionState>,
): Promise<AppendOutcome[]> {
  const events: Pending[] = [];
  for (const [, g] of groups) for (const p of g) events.push(p);
  return appendEvents(
    w.redis,
    events as ChainedPending[],
    groups.map(([s, g]) => sessionAppend(w, s, g as ChainedPending[], progressing)),
  );
}

/** A session's part: the tip its events were chained from and the one they lead to, and its metadata changes. */
function sessionAppend(
  w: BatchWriter,
  s: SessionState,
  g: ChainedPending[],
  progressing: Set<SessionState>,
): SessionAppend {
  const first = g[0];
  const last = g[g.length - 1];
  const lastHash = sealedHash(last);
  // The last event's time serves listings and idle ends across replicas: written at most once a second per session.
  const set = progressing.has(s) ? ['lastEventAt', String(Date.parse(last.time))] : [];
  const text: string[] = [];
  for (const p of g) {
    if (p.type === 'session.end') set.push('status', 'ended', 'endedAt', String(Date.parse(p.time)));
    const note = p.note;
    if (!note) continue;
    if (note.terminal) set.push('termWidth', String(note.terminal.width), 'termHeight', String(note.terminal.height));
    if (note.truncated) set.push('truncated', '1');
    if (note.text) text.push(String(p.seq), note.text);
  }
  for (const d of newDecisions(s, g)) set.push(`decision:${d}`, '1');
  if (!s.indexed) set.push('id', s.id, 'agent', last.agent, 'target', last.target, 'protocol', last.protocol);
  return {
    metaKey: keys.meta(s.id),
    eventsKey: s.eventsKey,
    textKey: keys.text(s.id),
    firstSeq: first.seq,
    firstHash: sealedHash(first),
    lastSeq: last.seq,
    lastHash,
    anchor: w.anchorKey && !s.unanchored ? anchorOf(w.anchorKey, s.id, last.seq, lastHash) : '',
    set,
    setIfAbsent: s.indexed ? [] : ['startedAt', String(s.startMs), 'status', 'open'],
    text,
  };
}

/** Decisions of `g` not yet in the session's metadata and indexes. */
function newDecisions(s: SessionState, g: Pending[]): Set<string> {
  const out = new Set<string>();
  for (const p of g) {
    const d = p.note?.decision;
    if (d && !s.decisions.has(d)) out.add(d);
  }
  return out;
}

/**
 * The cross-session indexes a batch implies: first sighting of a session (by start, agent, target, protocol), its
 * decisions, and (at most once a second per session) its last activity. NX keeps the first start score when several
 * writers index one session.
 */
function writeIndexes(
  redis: RedisClient,
  groups: Map<SessionState, Pending[]>,
  progressing: Set<SessionState>,
): Promise<unknown> {
  const cmds: string[][] = [];
  for (const [s, g] of groups) {
    const last = g[g.length - 1];
    const start = String(s.startMs);
    if (!s.indexed) {
      for (const k of [
        keys.byStart,
        keys.byAgent(last.agent),
        keys.byTarget(last.target),
        keys.byProtocol(last.protocol),
      ])
        cmds.push(['zadd', k, 'NX', start, s.id]);
    }
    for (const d of newDecisions(s, g)) cmds.push(['zadd', keys.byDecision(d), 'NX', start, s.id]);
    if (progressing.has(s)) cmds.push(['zadd', keys.byActivity, String(Date.parse(last.time)), s.id]);
  }
  return runCommands(redis, cmds);
}
