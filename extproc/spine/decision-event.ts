/**
 * The `decision` event every action records exactly once: what the agent got, who decided and why. This is the
 * recording's contract with auditors (docs/recording.md); the spine is the only writer.
 */
import type { DecisionReason, RuleAction } from '../policy/types.ts';
import type { RefusalCode } from './refusal.ts';

export type ApprovalStatus = 'granted' | 'pending' | 'denied' | 'abandoned';

export interface DecisionEventData {
  /**
   * What was enforced: `allow` (the action went upstream), `deny` (refused), `require_approval` (refused or held
   * until a human approves). The policy's own verdict is `policyAction` when the gateway enforced something else.
   */
  action: RuleAction;
  /** Why the agent was refused (the closed list every adapter maps), or null when the action went upstream. */
  code: RefusalCode | null;
  /** The cause within `code`, e.g. `impersonation`, `approval-misconfigured`. */
  detail?: string;
  /** Who decided: a rule, the target's default, a rule that failed to evaluate (fail closed), or the gateway itself. */
  reason: DecisionReason | 'gateway';
  policy: string | null;
  policyVersion: number | null;
  rule: string | null;
  /** The words the agent read (empty when allowed). */
  message: string;
  /** The policy's verdict when the gateway refused what the policy allowed (e.g. no upstream credential). */
  policyAction?: RuleAction;
  /** What dry-run policies in scope would have decided. */
  dryRun?: { action: RuleAction; rule: string | null; policy: string | null; policyVersion: number | null };
  approval?: { requestId: string; status: ApprovalStatus; grant?: 'once' | 'window'; expiresAt?: string };
  /**
   * Set when the action was a question ("may I?", a Kubernetes access review) that the gateway answered itself: `action`
   * is then the answer policy gives for the action asked about; nothing went upstream and no approval was requested.
   */
  review?: true;
  /**
   * The action itself, as an `action` event would hold it, when the adapter records it with its decision (SQL
   * statements: Action.recordedWithDecision).
   */
  request?: Record<string, unknown>;
  /**
   * What came back (masked), as an `output` event would hold it: added by the recorder, not the spine, to the decision
   * of an action recorded with its decision when the output came before the decision was written (otherwise it is an
   * `output` event with the same requestId).
   */
  output?: Record<string, unknown>;
  /** Gateway time from the start of the action to this decision. */
  latencyMs: number;
  /** The action's span, when tracing is on and the span was sampled (its parent is the client's `traceparent`). */
  trace?: { traceId: string; spanId: string };
}
