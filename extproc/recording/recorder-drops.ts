/**
 * Gaps in a chain, said in the chain. A best-effort target's events are dropped rather than refused when the buffer
 * is full, and an auditor must still see that something is missing: a session's drops are counted and recorded as
 * one `error {code:'dropped', count}` event before its next event, or as soon as the buffer has room again for a
 * session that records nothing more (else a session whose last, or every, event was dropped would show no gap).
 */
import type { Logger } from 'pino';
import type { SessionOwner, SessionState } from './recorder-session.ts';
import type { NewRecordingEvent } from './types.ts';

export class DropMarks {
  /** Sessions with drops not yet marked in their chain. */
  private readonly unmarked = new Set<SessionState>();
  private lastLog = 0;

  constructor(
    private readonly log: Logger,
    /** Whether the buffer can take another event now. */
    private readonly hasRoom: () => boolean,
    /** Buffers a marker event in the session's chain (the recorder's own data: not redacted). */
    private readonly recordMarker: (state: SessionState, as: NewRecordingEvent, data: Record<string, unknown>) => void,
  ) {}

  /** Sessions with drops not yet marked. */
  get size(): number {
    return this.unmarked.size;
  }

  /**
   * Counts a dropped event against its session, and logs it at most once a second (a full buffer drops many).
   * `dropped` and `buffered` are the recorder's totals, for the log line.
   */
  add(state: SessionState, input: NewRecordingEvent, why: string, dropped: number, buffered: number): void {
    state.droppedUnmarked++;
    state.droppedAs = {
      sessionId: input.sessionId,
      agent: input.agent,
      target: input.target,
      protocol: input.protocol,
    };
    this.unmarked.add(state);
    const now = Date.now();
    if (now - this.lastLog > 1_000) {
      this.lastLog = now;
      this.log.warn({ dropped, buffered, why }, 'recording events dropped (best-effort target)');
    }
  }

  /** Records `error {code:'dropped', count}` in the session's chain for its drops so far. */
  mark(state: SessionState, as: SessionOwner): void {
    const count = state.droppedUnmarked;
    this.forget(state);
    const message = `${count} event(s) of this session were not recorded (best-effort target, buffer full or store unreachable)`;
    this.recordMarker(state, { ...as, type: 'error', data: {} }, { code: 'dropped', count, message });
  }

  /**
   * Marks the drops of sessions that recorded nothing since, while the buffer has room. A truncated session records
   * nothing more but its session.end; its truncation marker already says so.
   */
  markAll(): void {
    for (const s of this.unmarked) {
      if (!this.hasRoom()) return;
      if (s.truncated) {
        this.forget(s);
        continue;
      }
      if (s.droppedAs) this.mark(s, s.droppedAs);
      else this.forget(s);
    }
  }

  private forget(state: SessionState): void {
    state.droppedUnmarked = 0;
    state.droppedAs = null;
    this.unmarked.delete(state);
  }
}
