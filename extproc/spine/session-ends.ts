/**
 * Sessions end. A session authenticated by this process is remembered with its token's expiry and its last activity
 * (an authentication or a recorded event of one of its actions); a timer records `session.end` once, when the token
 * expires (`reason: 'token-expired'`) or after `idleMs` without activity (`reason: 'idle'`). A session ended for
 * idleness is refused afterwards in this process (its token may still be valid): the agent asks for a new token and
 * so a new session, rather than adding events after its `session.end`.
 *
 * Across replicas (with `claims`, the service's default): a session served by several replicas (Kubernetes requests
 * are spread across pods) is ended once. A replica that finds a session due asks the store first
 * (recording/session-end-claims.ts): only the claim that succeeds records `session.end`; a replica told the session was
 * active elsewhere since takes that as its last activity; one told it has ended refuses it from then on (so every
 * replica refuses an idle-ended session within about a sweep interval of its end). Without `claims` (tests, one
 * process) the decision is this process's alone.
 *
 * Known limits: activity is what passes through the spine; a long watch that sends nothing for `idleMs`, or outlives
 * the token, gets its later output recorded after the `session.end`.
 */
import type { Logger } from 'pino';
import type { Protocol } from '../policy/context.ts';
import type { Recorder, SessionEndClaims, SessionEndReason } from '../recording/index.ts';

export type { SessionEndReason };

interface OpenSession {
  id: string;
  agent: string;
  target: string;
  protocol: Protocol;
  /** The token's expiry (ms since the epoch); the latest when several tokens name the session. */
  expiresAt: number;
  lastActivity: number;
  /** A claim on its end is being asked of the store. */
  asking: boolean;
  /** This process's claim on its end succeeded: it records the end (again on the next sweep if refused). */
  claimed: boolean;
}

export interface SessionEndsOptions {
  recorder: Pick<Recorder, 'record'>;
  /** No activity for this long ends a session (ms). */
  idleMs: number;
  /** How often open sessions are checked (ms, default 1,000). */
  intervalMs?: number;
  /** The clock (ms since the epoch; default Date.now). For tests. */
  now?: () => number;
  logger?: Logger;
  /** Open sessions remembered; beyond this the least recently opened is forgotten without an end (default 100,000). */
  maxSessions?: number;
  /** Where replicas agree on who ends a session; unset: this process decides alone. */
  claims?: SessionEndClaims;
}

/** How long an idle-ended session id is refused after its token's expiry (its token no longer verifies by then). */
const FORGET_ENDED_AFTER_MS = 5 * 60_000;

export class SessionEnds {
  private readonly open = new Map<string, OpenSession>();
  /** Sessions ended here for idleness, with when to forget them. */
  private readonly ended = new Map<string, number>();
  private readonly now: () => number;
  private readonly maxSessions: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SessionEndsOptions) {
    this.now = opts.now ?? Date.now;
    this.maxSessions = opts.maxSessions ?? 100_000;
  }

  /**
   * A session authenticated (on Kubernetes, every request): remembered or refreshed. Allocates only the first time a
   * session is seen.
   */
  opened(
    session: { id: string; agent: { id: string }; target: { name: string }; protocol: Protocol },
    expiresAt: number,
  ): void {
    const now = this.now();
    const o = this.open.get(session.id);
    if (o) {
      o.lastActivity = now;
      if (expiresAt > o.expiresAt) o.expiresAt = expiresAt;
      return;
    }
    if (this.open.size >= this.maxSessions) {
      const oldest = this.open.keys().next();
      if (!oldest.done) this.open.delete(oldest.value);
    }
    this.open.set(session.id, {
      id: session.id,
      agent: session.agent.id,
      target: session.target.name,
      protocol: session.protocol,
      expiresAt,
      lastActivity: now,
      asking: false,
      claimed: false,
    });
  }

  /** Something happened in the session (an event of one of its actions). */
  active(sessionId: string): void {
    const o = this.open.get(sessionId);
    if (o) o.lastActivity = this.now();
  }

  /** Whether this process ended the session for idleness. */
  endedIdle(sessionId: string): boolean {
    return this.ended.size > 0 && this.ended.has(sessionId);
  }

  /** Open sessions remembered. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Records `session.end` for every session due (with `claims`: every session due whose claim succeeded, the claims
   * of the others being asked now); returns how many were ended.
   */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const o of this.open.values()) {
      const reason: SessionEndReason | null =
        now >= o.expiresAt ? 'token-expired' : now - o.lastActivity >= this.opts.idleMs ? 'idle' : null;
      if (!reason) continue;
      if (this.opts.claims && !o.claimed) {
        this.ask(this.opts.claims, o, reason, now);
        continue;
      }
      if (this.end(o, reason, now)) n++;
    }
    for (const [id, forgetAt] of this.ended) if (now >= forgetAt) this.ended.delete(id);
    if (n > 0) this.opts.logger?.debug({ ended: n }, 'sessions ended');
    return n;
  }

  /** Asks the store whether this process ends `o`; a successful claim records the end at once. */
  private ask(claims: SessionEndClaims, o: OpenSession, reason: SessionEndReason, now: number): void {
    if (o.asking) return;
    o.asking = true;
    claims.claim(o.id, reason, now, this.opts.idleMs).then(
      (c) => {
        o.asking = false;
        if (this.open.get(o.id) !== o) return;
        if (c.kind === 'active') o.lastActivity = Math.max(o.lastActivity, c.lastActivity);
        else if (c.kind === 'ended') this.forget(o, true);
        else {
          o.claimed = true;
          this.end(o, reason, this.now());
        }
      },
      (err: unknown) => {
        // The store is unreachable: asked again on the next sweep.
        o.asking = false;
        this.opts.logger?.warn({ err: String(err), sessionId: o.id }, 'could not claim the end of a session');
      },
    );
  }

  /** Records the end of `o`; false when the recorder refused it (tried again on the next sweep). */
  private end(o: OpenSession, reason: SessionEndReason, now: number): boolean {
    const r = this.opts.recorder.record({
      type: 'session.end',
      sessionId: o.id,
      agent: o.agent,
      target: o.target,
      protocol: o.protocol,
      data: {
        reason,
        ...(reason === 'idle' ? { idleMs: now - o.lastActivity } : {}),
        expiresAt: new Date(o.expiresAt).toISOString(),
      },
    });
    // A refused end (the recorder's buffer is full) is tried again on the next sweep.
    if (!r.accepted) return false;
    this.forget(o, reason === 'idle');
    return true;
  }

  /**
   * The session has ended (here or, with claims, by another replica). `refuse`: its token may still be valid, so it
   * is refused from now on (an expired token no longer authenticates anyway).
   */
  private forget(o: OpenSession, refuse: boolean): void {
    this.open.delete(o.id);
    if (refuse) this.ended.set(o.id, o.expiresAt + FORGET_ENDED_AFTER_MS);
  }

  /** Starts the periodic sweep (the timer does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.sweep();
      } catch (err) {
        this.opts.logger?.error({ err: String(err) }, 'ending sessions failed');
      }
    }, this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
