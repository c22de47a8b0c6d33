/**
 * What the recorder keeps per session: where its chain stands (seq, last hash, whether it is loaded from Redis yet),
 * what it has written to the session's metadata and indexes, and its limits and drops. One object per session,
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
  loaded: boolean;
  seq: number;
  lastHash: string;
  /** Start time (ms) used as the index score; 0 until known. */
  startMs: number;
  indexed: boolean;
  /** Events recorded before the chain was loaded, chained in order once it is. */
  unassigned: Pending[];
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
  /** When lastSeq/lastHash/lastEventAt were last written (ms). */
  progressAt: number;
}

/**
 * A session first seen through its `session.start` starts a new chain here (loaded at once); any other is continued
 * from what Redis holds, loaded by the writer (recorder-chain-load.ts).
 */
export function newSessionState(id: string, isStart: boolean): SessionState {
  return {
    id,
    eventsKey: keys.events(id),
    idJson: JSON.stringify(id),
    loaded: isStart,
    seq: 0,
    lastHash: GENESIS_HASH,
    startMs: isStart ? Date.now() : 0,
    indexed: false,
    unassigned: [],
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
 * reloaded from Redis.
 */
export function evictIdleSessions(sessions: Map<string, SessionState>, maxSessions: number): void {
  const target = Math.floor(maxSessions * 0.9);
  for (const [id, s] of sessions) {
    if (sessions.size <= target) break;
    if (s.pending === 0 && s.droppedUnmarked === 0) sessions.delete(id);
  }
}
