/**
 * The spine: the one pipeline every data path runs each action through. An adapter authenticates the agent once per
 * session (or per request, where the protocol sends a token each time), begins an ActionRun per action, hands it the
 * typed action and renders the outcome in its protocol. The spine never sees a wire format.
 */
import type { Logger } from 'pino';
import { MaskingPlans } from '../policy/masking-plans.ts';
import type { Protocol } from '../policy/context.ts';
import type { SessionEndClaims } from '../recording/index.ts';
import { ActionRun, RECORDING_UNAVAILABLE } from './action-run.ts';
import type { GatewayCore } from './core.ts';
import { DecisionMetrics } from './decision-metrics.ts';
import { refusal, type Refusal } from './refusal.ts';
import { SeenSessions } from './seen-sessions.ts';
import { SessionEnds } from './session-ends.ts';
import { Session } from './session.ts';

const MAX_CACHED_SESSIONS = 10_000;

export type Authentication = { ok: true; session: Session } | { ok: false; refusal: Refusal };

export interface AuthenticationRequest {
  protocol: Protocol;
  /** The target the listener serves (from Envoy's stream metadata, or the agent's login name). */
  target: string;
  /** The agent's short-lived token, as presented; undefined when none was. */
  token: string | undefined;
}

export interface SpineOptions {
  /** No activity for this long ends a session (ms, default 15 minutes). */
  sessionIdleMs?: number;
  /** The clock of session ends (ms since the epoch; default Date.now). For tests. */
  now?: () => number;
  /** Where replicas agree on who records a session's end (SessionEnds); unset: this process decides alone. */
  sessionEndClaims?: SessionEndClaims;
}

const DEFAULT_SESSION_IDLE_MS = 15 * 60_000;

/** What an agent reads when its session was ended for idleness and its token still names it. */
const SESSION_ENDED = refusal(
  'unauthenticated',
  'this session has ended after a period without activity; request a new agent token',
  'session-ended',
);

export class Spine {
  private readonly plans = new MaskingPlans();
  private readonly seen = new SeenSessions();
  private readonly metrics: DecisionMetrics;
  /** Sessions by token id (a token names one session). */
  private readonly sessions = new Map<string, Session>();
  /** Records each session's `session.end`; its timer is started and stopped by the service (start(), stop()). */
  readonly sessionEnds: SessionEnds;

  constructor(
    private readonly core: GatewayCore,
    opts: SpineOptions = {},
  ) {
    this.metrics = new DecisionMetrics(core.metrics);
    this.sessionEnds = new SessionEnds({
      recorder: core.recorder,
      idleMs: opts.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS,
      now: opts.now,
      logger: core.logger,
      claims: opts.sessionEndClaims,
    });
  }

  get logger(): Logger {
    return this.core.logger;
  }

  /**
   * Token → agent, target scope, revocation; then whether the target's recording can accept a new action. The first
   * time this process sees a session it records `session.start`. A refusal here is logged and counted, not recorded:
   * there is no session to record it in.
   */
  async authenticate(req: AuthenticationRequest): Promise<Authentication> {
    const target = this.core.targets.get(req.target);
    if (!target || target.kind !== req.protocol) {
      this.core.logger.error(
        { target: req.target, protocol: req.protocol },
        "stream names no known target of its protocol (check the listener's x-portcullis-target metadata); refusing",
      );
      return this.refused(
        req.protocol,
        refusal('misconfigured', `gateway misconfigured: this listener names no ${req.protocol} target`, 'no-target'),
      );
    }
    const verified = await this.core.tokens.verify(req.token, target.name);
    if (!verified.ok) {
      const code =
        verified.failure === 'out_of_scope' || verified.failure === 'agent_disabled' ? 'forbidden' : 'unauthenticated';
      this.core.logger.info({ target: target.name, failure: verified.failure }, 'agent token refused');
      return this.refused(req.protocol, refusal(code, verified.message, `token-${verified.failure}`));
    }
    const { token, agent } = verified;
    if (this.sessionEnds.endedIdle(token.sessionId)) return this.refused(req.protocol, SESSION_ENDED);
    if (!this.core.recorder.canAccept(target.name)) return this.refused(req.protocol, RECORDING_UNAVAILABLE);
    // Where the protocol authenticates each request (Kubernetes), the same session comes back many times a second:
    // it is rebuilt only when its agent or target changed (the caches hand out new objects when they do).
    let session = this.sessions.get(token.jti);
    if (!session || session.agent !== agent || session.target !== target || session.protocol !== req.protocol) {
      session = new Session(token.sessionId, req.protocol, agent, target, token.plan, token.jti);
      if (this.sessions.size >= MAX_CACHED_SESSIONS) this.sessions.clear();
      this.sessions.set(token.jti, session);
    }
    if (this.seen.first(session.id)) {
      this.core.recorder.record({
        type: 'session.start',
        sessionId: session.id,
        agent: agent.id,
        target: target.name,
        protocol: req.protocol,
        data: { agent: agent.id, target: target.name, plan: session.plan, tokenId: token.jti },
      });
    }
    this.sessionEnds.opened(session, token.expiresAt.getTime());
    return { ok: true, session };
  }

  /** Starts one action of `session`; `requestId` is minted by the adapter at the start of the action. */
  begin(session: Session, requestId: string): ActionRun {
    return new ActionRun(this.core, this.plans, this.metrics, session, requestId, this.sessionEnds);
  }

  private refused(protocol: Protocol, r: Refusal): Authentication {
    this.metrics.decided(protocol, 'deny', r.code);
    return { ok: false, refusal: r };
  }
}
