/** The approval workflow's vocabulary: requests, their states, what the data paths ask and what they get back. */
import type { Principal } from '../identity/principal.ts';
import type { Protocol } from '../policy/context.ts';
import type { ApprovalRequirement } from '../policy/types.ts';

/**
 * pending → approved | denied | expired | revoked; approved → consumed (a once grant used) | expired (the grant's
 * lifetime ended unused, or a window closed) | revoked. consumed, denied, expired, revoked are final.
 */
export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked' | 'consumed';
export const APPROVAL_STATES: readonly ApprovalState[] = [
  'pending',
  'approved',
  'denied',
  'expired',
  'revoked',
  'consumed',
];

/** What the data path proposes: the agent, where, the exact action (fingerprint) and the rule that asked for approval. */
export interface ActionForApproval {
  agent: { id: string; groups: string[]; owner?: string /* principal id of the human the agent acts for, if any */ };
  target: string;
  protocol: Protocol;
  sessionId: string;
  /** From actionFingerprint(). */
  fingerprint: string;
  /** Human-readable, e.g. "PATCH deployments/web scale in prod: replicas 20". */
  summary: string;
  /** What the action would change, masked, one line each (e.g. "spec.replicas: 3 → 20"), where the adapter knows it. */
  effect?: string[];
  policy: string;
  policyVersion: number | null;
  rule: string;
  requirement: ApprovalRequirement;
}

export type ApprovalCheck =
  /** A once grant is consumed atomically by the call that returns this. */
  | { status: 'granted'; requestId: string; grant: 'once' | 'window' }
  /** Created now, or the existing pending request for the same action. */
  | { status: 'pending'; requestId: string; expiresAt: string }
  /** The latest request for this action was denied less than the rule's ttlSeconds ago (see docs/approvals.md). */
  | { status: 'denied'; requestId: string; reason: string };

/**
 * What the data path is told: a check's answer, or `unavailable` when the store (Redis) did not answer within the
 * data path's deadline. Then nothing is known and the action must not go ahead.
 */
export type BoundedApprovalCheck = ApprovalCheck | { status: 'unavailable' };

/** One human's approval, denial or revocation. */
export interface ApprovalVote {
  by: string;
  name: string;
  at: string;
  reason: string | null;
}

export interface ApprovalTransition {
  from: ApprovalState;
  to: ApprovalState;
  at: string;
  by: string | null;
}

export interface ApprovalRequest {
  id: string;
  state: ApprovalState;
  agent: string;
  agentGroups: string[];
  /** Principal id of the human the agent acts for; that human can never approve this request. */
  agentOwner: string | null;
  target: string;
  protocol: Protocol;
  sessionId: string;
  summary: string;
  /** ActionForApproval.effect; absent when the adapter could not know it (or on requests stored before it existed). */
  effect?: string[];
  fingerprint: string;
  policy: string;
  policyVersion: number | null;
  rule: string;
  group: string;
  grant: 'once' | 'window';
  windowSeconds: number;
  minApprovals: number;
  ttlSeconds: number;
  createdAt: string;
  /** When a pending request expires. */
  expiresAt: string;
  /** Distinct approvers so far; the request is approved once there are minApprovals of them. */
  approvals: ApprovalVote[];
  denial: ApprovalVote | null;
  revocation: ApprovalVote | null;
  decidedAt: string | null;
  /** When an approved grant stops covering actions (a once grant unused, or a window's end). */
  grantExpiresAt: string | null;
  consumedAt: string | null;
  history: ApprovalTransition[];
}

export type ApprovalEventType =
  | 'approval.requested'
  | 'approval.approved'
  | 'approval.denied'
  | 'approval.expired'
  | 'approval.revoked'
  | 'approval.consumed'
  /** A window grant let an action through (a once grant's use is `approval.consumed`). */
  | 'approval.used';

export interface ApprovalAuditEvent {
  type: ApprovalEventType;
  sessionId: string;
  agent: string;
  target: string;
  protocol: Protocol;
  requestId: string;
  data: Record<string, unknown>;
}

/** A new request or a change of one, for humans (webhooks). */
export interface ApprovalNotification {
  type: ApprovalEventType;
  request: ApprovalRequest;
}

export interface Notifier {
  /** Queues the notification and returns at once: delivery never blocks the caller. */
  notify(n: ApprovalNotification): void;
  close(): Promise<void>;
}

export interface ApprovalListFilter {
  state?: ApprovalState;
  agent?: string;
  target?: string;
  /** Most recent first; default 100, at most 1000. */
  limit?: number;
}

export interface Approvals {
  check(action: ActionForApproval): Promise<ApprovalCheck>;
  /**
   * Waits (pub/sub, no polling) until the request leaves 'pending' or timeoutMs passes; then re-runs check semantics
   * (consuming a once grant). When `signal` aborts first (the agent went away), it rejects with the abort reason and
   * consumes nothing, so the grant stays for the agent's retry.
   */
  waitForDecision(
    action: ActionForApproval,
    requestId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ApprovalCheck>;
  approve(requestId: string, approver: Principal, reason?: string): Promise<ApprovalRequest>;
  deny(requestId: string, approver: Principal, reason?: string): Promise<ApprovalRequest>;
  revoke(requestId: string, by: Principal, reason?: string): Promise<ApprovalRequest>;
  list(filter: ApprovalListFilter, viewer: Principal): Promise<ApprovalRequest[]>;
  get(id: string, viewer: Principal): Promise<ApprovalRequest>;
  /** Expires every overdue pending request and grant now; returns how many changed. */
  sweep(): Promise<number>;
  /** Requests waiting for a human, across every replica (read from Redis; for the metrics endpoint). */
  pendingCount(): Promise<number>;
  /** Runs sweep() every intervalMs until close(). */
  startExpirySweeper(intervalMs: number): void;
  /** Stops the sweeper and closes the subscriber connection if this service created it (not `redis`, not the notifier). */
  close(): Promise<void>;
}
