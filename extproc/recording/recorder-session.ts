/**
 * What the recorder keeps per session: where this writer believes its chain ends (seq, last hash: corrected by the
 * store when another writer moved it on, recorder-batch.ts), what it has written to the session's metadata and indexes, and its limits and drops. One object per session,
 * made on its first event here; the events hold it, so no map lookup is needed again on the write side.
 */
import { GENESIS_HASH } from './hash-chain.ts';
import { keys } from './keys.ts';
import type { Pending } from './recorder-pending.ts';
import type { NewRecordingEvent } from './types.ts';

/** Who a session belongs to: what a `dropped` marker is recorded as when the session's own events were dropped. */
export type SessionOwner = Pick<NewRecordingEvent, 'sessionId' | 'agent' | 'target' | 'protocol'>;

export interface SessionState {
  id: string;
  eventsKey: string;
  /** JSON of the id, made once per session rather than per event. */
  idJson: string;
  seq: number;
  lastHash: string;
  /** When this process first saw the session (ms): its start time, unless another writer indexed it first. */
  startMs: number;
  indexed: boolean;
  /** Events recorded and not chained yet, in order (all chained when any is about to be sent). */
  unassigned: Pending[];
  /** Events chained and not acknowledged yet, in order: what a moved tip makes chain again. */
  chained: Pending[];
  /** Its recorded end was found without a valid anchor: this writer appends but anchors nothing (anchor.ts). */
  unanchored: boolean;
  /** Events buffered, not yet acknowledged. */
  pending: number;
  /** Events accepted for this session by this process (for the per-session limit). */
  count: number;
  ended: boolean;
  truncated: boolean;
  /** best-effort drops not yet marked in the chain by an `error {code:'dropped'}` event. */
  droppedUnmarked: number;
  /** Who the session belongs to, from its last dropped event: what the `dropped` marker is recorded as. */
  droppedAs: SessionOwner | null;
  textBytes: number;
  /** Decisions already in the session's index entries. */
  decisions: Set<string>;
  /** When the session's last-activity index entry was last written (ms). */
  progressAt: number;
}

/**
 * A session new to this process is chained from the start (seq 1); when Redis already holds some of it (another
 * replica, an earlier process), the first append is answered with the stored tip and chained again from there.
 */
export function newSessionState(id: string, now: number): SessionState {
  return {
    id,
    eventsKey: keys.events(id),
    idJson: JSON.stringify(id),
    seq: 0,
    lastHash: GENESIS_HASH,
    startMs: now,
    indexed: false,
    unassigned: [],
    chained: [],
    unanchored: false,
    pending: 0,
    count: 0,
    ended: false,
    truncated: false,
    droppedUnmarked: 0,
    droppedAs: null,
    textBytes: 0,
    decisions: new Set(),
    progressAt: 0,
  };
}

/**
 * Forgets idle sessions (nothing buffered, no drops to mark) down to 90% of the limit, in the order they were first
 * seen, so that a full map is not scanned again on every new session. An evicted session that records again is
 * chained again from the tip Redis holds.
 */
export function evictIdleSessions(sessions: Map<string, SessionState>, maxSessions: number): void {
  const target = Math.floor(maxSessions * 0.9);
  for (const [id, s] of sessions) {
    if (sessions.size <= target) break;
    if (s.pending === 0 && s.droppedUnmarked === 0) sessions.delete(id);
  }
}
