/**
 * The spine: the one pipeline every data path runs each action through. An adapter authenticates the agent once per
 * session (or per request, where the protocol sends a token each time), begins an ActionRun per action, hands it the
 * typed action and renders the outcome in its protocol. The spine never sees a wire format.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ScramCandidate } from '../identity/scram-verifier.ts';
import { CredentialError } from '../identity/upstream-credentials.ts';
import type { SecretValue } from '../identity/vault.ts';
import { DecisionCache } from '../policy/decision-cache.ts';
import { MaskingPlans } from '../policy/masking-plans.ts';
import { ScopedReads } from '../policy/scoped-reads.ts';
import type { Protocol } from '../policy/context.ts';
import type { SessionEndClaims } from '../recording/index.ts';
import { ActionRun, RECORDING_UNAVAILABLE } from './action-run.ts';
import type { ActionMeta } from './action.ts';
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
  /**
   * Instead of `token`: the id of a token the agent proved it holds without sending it (a SCRAM proof checked against
   * one of scramCandidates()).
   */
  provenTokenId?: string;
  /**
   * Instead of a token: an SSH public key whose signature the adapter verified (`keyBlob` base64), for `agent`, in the
   * login `login` (one per connection: the session's name).
   */
  publicKey?: { agent: string; keyBlob: string; login: string };
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
  private readonly views = (() => {
    const reads = new ScopedReads();
    return { plans: new MaskingPlans(), reads, decisions: new DecisionCache(reads) };
  })();
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
   * The recording's keyed digest of a value (GatewayCore.valueDigest), or null when the core has none: the adapter then
   * must not record the value in any form (it refuses the action). Read from the core each time.
   */
  get valueDigest(): ((value: Uint8Array) => string) | null {
    return this.core.valueDigest ?? null;
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
    const tokens = this.core.tokens;
    const verified = req.publicKey
      ? tokens.verifyPublicKey
        ? await tokens.verifyPublicKey(req.publicKey.agent, req.publicKey.keyBlob, target.name, req.publicKey.login)
        : ({ ok: false, failure: 'invalid', message: 'public key logins are not offered' } as const)
      : req.provenTokenId !== undefined
        ? await tokens.verifyProven(req.provenTokenId, target.name)
        : await tokens.verify(req.token, target.name);
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

  /**
   * The address and upstream login name of a target whose credential is a password (no secret): a database login
   * names its role before the agent has proved anything. Null when the target is unknown, of another protocol, or
   * has no password credential.
   */
  upstreamLogin(
    targetName: string,
    protocol: Protocol,
  ): { address: string; user: string; roles?: { group: string } } | null {
    const target = this.core.targets.get(targetName);
    if (!target || target.kind !== protocol || target.credential?.kind !== 'password') return null;
    const { user, roles } = target.credential;
    return { address: target.address, user, ...(roles ? { roles } : {}) };
  }

  /**
   * The vault's password credential of a target with short-lived upstream roles: the gateway's own administration
   * login (it creates and drops the agents' roles), never an agent's. Throws CredentialError when it cannot be read.
   */
  async upstreamAdmin(targetName: string): Promise<{ user: string; password: SecretValue }> {
    const target = this.core.targets.get(targetName);
    if (target?.credential?.kind !== 'password' || !target.credential.roles)
      throw new CredentialError(targetName, `target ${targetName} has no short-lived upstream roles`);
    const secret = await this.core.credentials.credentialFor(target);
    if (secret.kind !== 'password') throw new CredentialError(targetName, `target ${targetName} has no password`);
    return { user: secret.user, password: secret.password };
  }

  /** When the newest of `agent`'s live (unexpired, unrevoked) tokens expires; null when it has none. */
  async agentLiveUntil(agent: string): Promise<Date | null> {
    const now = Date.now();
    let until: Date | null = null;
    for (const c of await this.core.tokens.scramCandidates(agent)) {
      if (c.revoked || c.expiresAt.getTime() <= now) continue;
      if (!until || c.expiresAt > until) until = c.expiresAt;
    }
    return until;
  }

  /**
   * The SCRAM verifiers of `agent`'s live tokens: a protocol whose clients prove a password without sending it
   * (PostgreSQL) finds which token the agent holds, then authenticates with `provenTokenId`.
   */
  scramCandidates(agent: string): Promise<ScramCandidate[]> {
    return this.core.tokens.scramCandidates(agent);
  }

  /**
   * A terminal inside `session` (an SSH shell with a pty): a session of its own, so that its recording starts with the
   * terminal's size and exports as an asciicast; it shares the agent, target, plan and token, and names its parent.
   * End it with endTerminal().
   */
  openTerminal(session: Session, terminal: { width: number; height: number; term: string }): Session {
    const t = new Session(
      `${session.id}.t-${randomUUID()}`,
      session.protocol,
      session.agent,
      session.target,
      session.plan,
      session.tokenId,
    );
    this.core.recorder.record({
      type: 'session.start',
      sessionId: t.id,
      agent: t.agent.id,
      target: t.target.name,
      protocol: t.protocol,
      data: {
        agent: t.agent.id,
        target: t.target.name,
        plan: t.plan,
        tokenId: t.tokenId,
        parentSession: session.id,
        terminal,
      },
    });
    return t;
  }

  /** The terminal's channel closed: its recording ends here. */
  endTerminal(terminal: Session): void {
    this.core.recorder.record({
      type: 'session.end',
      sessionId: terminal.id,
      agent: terminal.agent.id,
      target: terminal.target.name,
      protocol: terminal.protocol,
      data: { reason: 'channel-closed' },
    });
  }

  /**
   * Starts one action of `session`; `requestId` is minted by the adapter at the start of the action, `meta` is what its
   * protocol carried alongside it.
   */
  begin(session: Session, requestId: string, meta: ActionMeta = {}): ActionRun {
    return new ActionRun(this.core, this.views, this.metrics, session, requestId, this.sessionEnds, meta);
  }

  private refused(protocol: Protocol, r: Refusal): Authentication {
    this.metrics.decided(protocol, 'deny', r.code);
    return { ok: false, refusal: r };
  }
}
