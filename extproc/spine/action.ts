/**
 * What an adapter hands the spine (a typed action) and what it gets back (an outcome it renders in its protocol).
 */
import type { UpstreamSecret } from '../identity/upstream-credentials.ts';
import type { K8sContext, SqlContext, SshContext } from '../policy/context.ts';
import type { Refusal } from './refusal.ts';

/** The protocol section of the policy context the adapter filled; the spine fills every other section with zeros. */
export type ActionSection =
  | { protocol: 'kubernetes'; k8s: K8sContext }
  | { protocol: 'postgres'; sql: SqlContext }
  | { protocol: 'ssh'; ssh: SshContext };

export interface Action {
  section: ActionSection;
  /** What the recording keeps of the action: the adapter has already left out or masked what must not be stored. */
  recorded: Record<string, unknown>;
  /**
   * The canonical bytes of exactly this action: an approval granted once covers this and nothing else. Called only
   * when a rule requires approval (it may hash a body).
   */
  canonical(): string | Uint8Array;
  /** One line for approvers, e.g. "PATCH deployments/web/scale in prod: replicas 20" (called with canonical()). */
  summary(): string;
  /** What the action would change, masked, one line per change ("spec.replicas: 3 → 20"), where the adapter knows. */
  effect?(): string[];
  /**
   * The decision fast path (policy/decision-cache.ts): the session's decision for an earlier action whose section
   * had the same values in every field a rule in scope reads may be reused. For adapters whose actions repeat a few
   * shapes (SQL statements) and whose section is cheap to compare.
   */
  reusableDecision?: true;
  /**
   * Record `recorded` in the action's decision event (`data.request`) instead of an `action` event of its own: one
   * event less per action, for adapters whose actions are many and small (SQL statements). The recording must still
   * accept a new action before it is decided, exactly as for an `action` event (fail-closed targets refuse it). Its
   * output is then folded into the decision too when the decision is not written yet (NewRecordingEvent).
   */
  recordedWithDecision?: true;
}

/**
 * What the adapter knows of an action beyond its content: context its protocol carried alongside it, read from the
 * adapter's one decoded view of the wire. Never used to decide.
 */
export interface ActionMeta {
  /**
   * The W3C trace context the client sent with the action (a Kubernetes request's `traceparent` header), as sent;
   * when tracing is on, the action's span is its child. Unset (PostgreSQL, SSH): a root span.
   */
  traceparent?: string;
}

export interface DecideOptions {
  /** How long the adapter's protocol can keep the action waiting for a quick approval (0: refuse at once). */
  maxHoldMs: number;
  /**
   * The kind of upstream credential an allowed action goes with (a Kubernetes request: a bearer token), or null for
   * none (a statement inside an already authenticated database connection). A target whose credential is of another
   * kind refuses the action with `upstream-credential`.
   */
  credential: UpstreamSecret['kind'] | null;
}

/** The spine's answer for one action. */
export type Outcome = FinalOutcome | HeldOutcome;

export type FinalOutcome =
  /** Go upstream, presenting `credential` (null when the action needed none). */
  | { kind: 'allow'; credential: UpstreamSecret | null }
  /** Answer the agent with the refusal in the protocol's own terms; nothing goes upstream. */
  | { kind: 'refuse'; refusal: Refusal };

/**
 * The action waits for a human: keep the agent waiting up to `holdMs` (the protocol's way: an Envoy message-timeout
 * override, a blocked channel request), then render what `resume` resolves to. If the agent goes away first, abort
 * `signal`: resume() then records the action as abandoned, consumes nothing, and rejects with the signal's reason.
 */
export interface HeldOutcome {
  kind: 'hold';
  holdMs: number;
  resume(signal: AbortSignal): Promise<FinalOutcome>;
}

/** How an adapter reaches the target for a request of its own before the decision (a Kubernetes dry run). */
export interface UpstreamAccess {
  /** The target's address, e.g. https://10.0.0.1:6443. */
  address: string;
  /** PEM that verifies the target's certificate; undefined: the system's roots. */
  ca: string | undefined;
  credential: UpstreamSecret;
}
