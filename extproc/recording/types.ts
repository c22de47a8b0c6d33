/** The recording event model: one typed, versioned, hash-chained event per step of a session. */
import type { Protocol } from '../policy/context.ts';

export const RECORDING_EVENT_TYPES = [
  'session.start',
  'session.end',
  'action',
  'decision',
  'approval.requested',
  'approval.approved',
  'approval.denied',
  'approval.expired',
  'approval.revoked',
  'approval.consumed',
  'approval.used',
  'output',
  'error',
] as const;
export type RecordingEventType = (typeof RECORDING_EVENT_TYPES)[number];

export interface NewRecordingEvent {
  type: RecordingEventType;
  sessionId: string;
  agent: string;
  target: string;
  protocol: Protocol;
  /** id of the request/decision this event belongs to, minted by the adapter at request start */
  requestId?: string;
  /**
   * The event's data, which becomes the recorder's: a decision's is serialized after the turn it was recorded in, and
   * may gain its action's output (`output`) first. Pass an object of the event's own, not one shared or read again.
   */
  data: Record<string, unknown>;
  /**
   * For an `output`: the decision of its action (as record() returned it), to store the output inside (the decision's
   * `data.output`) when that decision is not chained yet: one event per action instead of two, for adapters whose
   * actions are many and small (SQL statements). Otherwise the output is an event of its own.
   */
  into?: RecordedEvent;
  /**
   * For a decision: its action's output is coming (an allowed action recorded with its decision, whose output the
   * adapter records `into` it). Its serialization then waits for that output, so that both are serialized in one pass,
   * or for the writer, whichever comes first.
   */
  outputFollows?: true;
}

declare const RECORDED: unique symbol;
/** An event record() has buffered, opaque outside the recorder: what an output may be folded into. */
export type RecordedEvent = { readonly [RECORDED]: true };

export interface RecordingEvent extends Omit<NewRecordingEvent, 'into'> {
  v: 1;
  /** 1 for the first event of a session, then +1 per event, no gaps. */
  seq: number;
  /** RFC 3339, millisecond precision, UTC. */
  time: string;
  /** `hash` of the previous event of the session; GENESIS_HASH for seq 1. */
  prevHash: string;
  /** SHA-256 (hex) of the canonical JSON of every other field, prevHash included. */
  hash: string;
}

export type FailureMode = 'fail-closed' | 'best-effort';

/** `event`: the event as buffered (absent when it was dropped: a best-effort target's full buffer, a session's limit). */
export type RecordResult = { accepted: true; event?: RecordedEvent } | { accepted: false; reason: string };

export interface RecorderStats {
  buffered: number;
  written: number;
  dropped: number;
}

export interface Recorder {
  /**
   * Never awaits Redis. Returns { accepted: false, reason } when the event cannot be buffered and the target is
   * fail-closed (the adapter then refuses the action with a clear error). best-effort targets always return
   * accepted (drops are counted).
   */
  record(event: NewRecordingEvent): RecordResult;
  /** Whether a new action for this target may proceed right now (fail-closed: false while Redis is unreachable or the buffer is full). */
  canAccept(target: string): boolean;
  /** Resolves when everything recorded so far is acknowledged by Redis. */
  flush(): Promise<void>;
  close(): Promise<void>;
  stats(): RecorderStats;
}

/** A session as the audit API lists it, built from the session's metadata hash. */
export interface SessionSummary {
  id: string;
  agent: string;
  target: string;
  protocol: Protocol;
  status: 'open' | 'ended';
  startedAt: string;
  endedAt: string | null;
  lastEventAt: string | null;
  events: number;
  decisions: Array<'allow' | 'deny' | 'require_approval'>;
  terminal: { width: number; height: number } | null;
  truncated: boolean;
}

/**
 * `anchored`: the session's recorded end was checked against its keyed anchor (the verifier has the anchor key), so
 * truncation and appended events are detected even by someone who rewrote the stream and the metadata.
 */
export type VerifyResult =
  | { valid: true; events: number; anchored: boolean }
  | { valid: false; events: number; firstBadSeq: number; reason: string; anchored: boolean };
