/**
 * The ports the spine needs from the core, as interfaces. The composition root (service/) builds them from the
 * concrete stores; adapters never see them, only the Spine built over them.
 */
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { CounterTally, HistogramTally } from '../common/tallies.ts';
import type { BoundedApprovals } from '../approvals/index.ts';
import type { TokenVerification } from '../identity/agent-tokens.ts';
import type { Target } from '../identity/registry.ts';
import type { ScramCandidate } from '../identity/scram-verifier.ts';
import type { UpstreamSecret } from '../identity/upstream-credentials.ts';
import type { Protocol } from '../policy/context.ts';
import type { CompiledPolicy } from '../policy/load.ts';
import type { Recorder } from '../recording/index.ts';
import type { DecisionEventData } from './decision-event.ts';

export interface PolicySource {
  /** The policies in force, sorted by name; never waits on Redis. */
  current(): readonly CompiledPolicy[];
}

export interface TargetSource {
  get(name: string): Target | undefined;
}

export interface TokenVerifier {
  /** Never throws for a bad token. */
  verify(token: string | undefined, target: string): Promise<TokenVerification>;
  /** The agent's tokens with SCRAM verifiers, for protocols that prove a token without sending it. */
  scramCandidates(agent: string): Promise<ScramCandidate[]>;
  /** Like verify(), for a token whose possession the adapter proved against its verifier. */
  verifyProven(jti: string, target: string): Promise<TokenVerification>;
  /** An SSH public key login (signature already checked); absent where the core offers none. Never throws. */
  verifyPublicKey?(agent: string, keyBlob: string, target: string, login: string): Promise<TokenVerification>;
}

export interface CredentialSource {
  /** The target's upstream credential; throws CredentialError when there is none or it cannot be obtained now. */
  credentialFor(target: Target): Promise<UpstreamSecret>;
  /** The PEM that verifies the target's certificate (its caRef); needed by adapters that call the target themselves. */
  caFor?(target: Target): Promise<string | undefined>;
}

export interface DataPathMetrics {
  decisions: CounterTally<'protocol' | 'action' | 'reason'>;
  decisionSeconds: HistogramTally<'protocol'>;
  extprocStreams: Counter<'service' | 'outcome'>;
  /** Values masked in what went back to agents, by entity (built-in entities and the policies' own: a bounded set). */
  maskingFindings: CounterTally<'protocol' | 'entity'>;
}

/** One decided action as a trace sees it: who, where and when; never a statement, body, value or secret. */
export interface TracedAction {
  /** As the client sent it (ActionMeta); undefined or unparsable: the span is a root. */
  traceparent: string | undefined;
  /** When the action began, in ms since the epoch. */
  startedAtMs: number;
  protocol: Protocol;
  target: string;
  agent: string;
  sessionId: string;
  requestId: string;
}

/** The ids of an exported span, recorded in the decision event so that a trace and a recording can be joined. */
export interface TraceIds {
  traceId: string;
  spanId: string;
}

export interface DecisionTracer {
  /** Ends the action's span at its decision and queues it for export; null when the span was not sampled. */
  decided(action: TracedAction, decision: DecisionEventData): TraceIds | null;
}

export interface GatewayCore {
  policies: PolicySource;
  targets: TargetSource;
  tokens: TokenVerifier;
  credentials: CredentialSource;
  recorder: Recorder;
  /** Checks answer `unavailable` rather than wait on a hung Redis (approvals/deadline.ts). */
  approvals: BoundedApprovals;
  metrics: DataPathMetrics;
  logger: Logger;
  /** Unset when tracing is off: then the data path makes no span at all. */
  tracer?: DecisionTracer;
  /**
   * The recording's keyed digest of a value (a statement's bound values): the same value gives the same digest on every
   * replica of the deployment and across restarts, and a digest cannot be tested against a guess without the key
   * (recording/value-digest.ts). Unset: the core has no key, and an adapter records no such value at all (the action
   * is refused; never an unkeyed hash instead).
   */
  valueDigest?: (value: Uint8Array) => string;
}
