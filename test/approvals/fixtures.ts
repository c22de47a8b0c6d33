/** Shared fixtures for the approval tests: actions, principals, a controllable clock and an audit sink. */
import type { Principal } from '../../extproc/identity/principal.ts';
import type { ApprovalRequirement } from '../../extproc/policy/types.ts';
import { actionFingerprint, type ActionForApproval, type ApprovalAuditEvent } from '../../extproc/approvals/index.ts';

export function requirement(over: Partial<ApprovalRequirement> = {}): ApprovalRequirement {
  return {
    group: 'db-owners',
    grant: 'once',
    windowSeconds: 600,
    minApprovals: 1,
    ttlSeconds: 300,
    holdSeconds: 0,
    ...over,
  };
}

/** A Postgres action whose fingerprint is the statement's bytes. */
export function sqlAction(sql: string, over: Partial<ActionForApproval> = {}): ActionForApproval {
  return {
    agent: { id: 'agent-planner', groups: ['planners'], owner: 'alice' },
    target: 'orders-db',
    protocol: 'postgres',
    sessionId: 'sess-1',
    fingerprint: actionFingerprint({ protocol: 'postgres', target: over.target ?? 'orders-db', canonical: sql }),
    summary: sql,
    policy: 'prod-db',
    policyVersion: 3,
    rule: 'destructive-writes',
    requirement: requirement(),
    ...over,
  };
}

export const bob: Principal = { id: 'bob', name: 'Bob', roles: ['approver'], groups: ['db-owners', 'sre'] };
export const carol: Principal = { id: 'carol', name: 'Carol', roles: ['approver'], groups: ['db-owners'] };
/** The human the test agent acts for; also an approver of the group. */
export const alice: Principal = { id: 'alice', name: 'Alice', roles: ['approver'], groups: ['db-owners'] };
export const dave: Principal = { id: 'dave', name: 'Dave', roles: ['approver'], groups: ['sre'] };
export const root: Principal = { id: 'root', name: 'Root', roles: ['admin'], groups: ['db-owners'] };
export const audrey: Principal = { id: 'audrey', name: 'Audrey', roles: ['auditor'], groups: [] };
export const paula: Principal = { id: 'paula', name: 'Paula', roles: ['policy-author'], groups: ['db-owners'] };

export function clock(start = Date.parse('2030-01-01T00:00:00Z')): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

export function auditSink(): {
  events: ApprovalAuditEvent[];
  audit: (e: ApprovalAuditEvent) => void;
  types(id?: string): string[];
} {
  const events: ApprovalAuditEvent[] = [];
  return {
    events,
    audit: (e) => {
      events.push(e);
    },
    types: (id) => events.filter((e) => !id || e.requestId === id).map((e) => e.type),
  };
}
