/**
 * The spine's public face: everything a protocol adapter may use of the core. Adapters import this file (and the
 * masking engine), never policy/, identity/, approvals/ or recording/ directly.
 */
export { Spine, type Authentication, type AuthenticationRequest, type SpineOptions } from './spine.ts';
export { SessionEnds, type SessionEndReason, type SessionEndsOptions } from './session-ends.ts';
export type { ActionRun } from './action-run.ts';
export type { Session } from './session.ts';
export type {
  Action,
  ActionMeta,
  ActionSection,
  DecideOptions,
  FinalOutcome,
  HeldOutcome,
  Outcome,
  UpstreamAccess,
} from './action.ts';
export { REFUSAL_CODES, refusal, type Refusal, type RefusalCode } from './refusal.ts';
export type { DecisionEventData, ApprovalStatus } from './decision-event.ts';
export type { Decision } from '../policy/types.ts';
export type {
  GatewayCore,
  DataPathMetrics,
  DecisionTracer,
  TracedAction,
  TraceIds,
  CredentialSource,
  PolicySource,
  TargetSource,
  TokenVerifier,
} from './core.ts';
export type { UpstreamSecret } from '../identity/upstream-credentials.ts';
export {
  SCRAM_ITERATIONS,
  hmacSha256,
  saltedPassword,
  scramSalt,
  scramVerifier,
  type ScramCandidate,
  type ScramVerifier,
} from '../identity/scram-verifier.ts';
export type { K8sContext, SqlContext, SshContext, Protocol } from '../policy/context.ts';
export { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH } from '../policy/context.ts';
