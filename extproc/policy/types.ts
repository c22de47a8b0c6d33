/** Policy documents and decisions: plain data, no I/O. */
import type { MaskingRule } from '../masking/types.ts';
import type { Protocol, TargetKind } from './context.ts';

export type PolicyMode = 'enforce' | 'dry-run';
export type RuleAction = 'allow' | 'deny' | 'require_approval';

export interface AgentSelector {
  ids: string[];
  groups: string[];
  labels: Record<string, string>;
}

export interface TargetSelector {
  names: string[];
  kinds: TargetKind[];
  labels: Record<string, string>;
}

/** Who may grant a `require_approval` action, and what the grant covers. */
export interface ApprovalRequirement {
  /** Approver group; an approver must be a member. */
  group: string;
  /** `once`: the identical action, one time. `window`: anything this rule matches, for `windowSeconds`. */
  grant: 'once' | 'window';
  windowSeconds: number;
  /** How many distinct approvers must approve (quorum). */
  minApprovals: number;
  /** How long a pending request stays open before it expires. */
  ttlSeconds: number;
  /** Where the protocol allows waiting, hold the action up to this long for a quick approval (0 = refuse at once). */
  holdSeconds: number;
}

export interface Rule {
  name: string;
  protocol?: Protocol;
  /** CEL source; absent means "always". */
  when?: string;
  action: RuleAction;
  /** Shown to the agent for deny and require_approval (it then leads the approval text with the request id). */
  message?: string;
  approval?: ApprovalRequirement;
}

export interface PolicyDocument {
  name: string;
  description?: string;
  mode: PolicyMode;
  scope: { agents: AgentSelector; targets: TargetSelector };
  rules: Rule[];
  masking: MaskingRule[];
}

/** What decided: a rule, the target's default (nothing matched), or a failure to evaluate (fail closed). */
export type DecisionReason = 'rule' | 'default' | 'error';

export interface Verdict {
  action: RuleAction;
  reason: DecisionReason;
  policy: string | null;
  policyVersion: number | null;
  rule: string | null;
  message: string;
  approval?: ApprovalRequirement;
}

/** The enforced verdict, plus what dry-run policies would have decided had they been enforced. */
export interface Decision extends Verdict {
  /** Present when at least one dry-run policy was in scope. */
  dryRun?: Verdict;
}
