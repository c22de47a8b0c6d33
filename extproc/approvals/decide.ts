/**
 * The approvers' actions: approve (a vote; the request is approved once `minApprovals` distinct approvers agree),
 * deny and revoke. Each reads the request, checks who may act and that the state allows it, and writes with
 * compare-and-set, recomputing from a fresh read when another writer got there first.
 */
import { AdminError } from '../admin/errors.ts';
import type { Principal } from '../identity/principal.ts';
import { assertCanDecide, assertCanRevoke } from './authorize.ts';
import { MAX_ATTEMPTS, type ApprovalsCore } from './core.ts';
import { transition } from './state-machine.ts';
import type { ApprovalEventType, ApprovalRequest, Approvals, ApprovalVote } from './types.ts';

/** What one approver action does to a request: the new request, and how the change is reported. */
type Change = (req: ApprovalRequest) => {
  next: ApprovalRequest;
  type: ApprovalEventType;
  data: Record<string, unknown>;
};

function conflictUnless(req: ApprovalRequest, ...states: ApprovalRequest['state'][]): void {
  if (!states.includes(req.state)) {
    throw new AdminError('conflict', `approval ${req.id} is ${req.state}`, { state: req.state });
  }
}

export function createDecisions(core: ApprovalsCore): Pick<Approvals, 'approve' | 'deny' | 'revoke'> {
  const { store, iso, log, report, load } = core;

  /** Reads, applies `change` and writes with compare-and-set, retrying when another writer got there first. */
  const update = async (id: string, change: Change): Promise<ApprovalRequest> => {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const s = await load(id);
      if (!s) throw new AdminError('not_found', `no approval request ${id}`);
      const { next, type, data } = change(s.req);
      if (!(await store.save(next, s.rev))) continue;
      report(type, next, data);
      return next;
    }
    throw new AdminError('unavailable', `approval ${id} is changing too often; try again`);
  };

  const vote = (p: Principal, reason: string | undefined): ApprovalVote => ({
    by: p.id,
    name: p.name,
    at: iso(),
    reason: reason?.trim() || null,
  });

  return {
    approve(requestId, approver, reason) {
      return update(requestId, (req) => {
        assertCanDecide(approver, req);
        conflictUnless(req, 'pending');
        if (req.approvals.some((v) => v.by === approver.id)) {
          throw new AdminError(
            'conflict',
            `you have already approved ${req.id}; approvals must come from distinct approvers`,
          );
        }
        const v = vote(approver, reason);
        const approvals = [...req.approvals, v];
        const data = { approver: v.by, reason: v.reason, approvals: approvals.length, required: req.minApprovals };
        if (approvals.length < req.minApprovals) {
          // Quorum not met yet: the vote is recorded and notified, the state stays pending.
          return { next: { ...req, approvals }, type: 'approval.approved', data: { ...data, quorumMet: false } };
        }
        const lifetime = req.grant === 'window' ? req.windowSeconds : req.ttlSeconds;
        const next = transition(
          req,
          'approved',
          v.at,
          v.by,
          {
            approvals,
            decidedAt: v.at,
            grantExpiresAt: new Date(Date.parse(v.at) + lifetime * 1000).toISOString(),
          },
          log,
        );
        return {
          next,
          type: 'approval.approved',
          data: { ...data, quorumMet: true, grantExpiresAt: next.grantExpiresAt },
        };
      });
    },

    deny(requestId, approver, reason) {
      return update(requestId, (req) => {
        assertCanDecide(approver, req);
        conflictUnless(req, 'pending');
        const v = vote(approver, reason);
        const next = transition(req, 'denied', v.at, v.by, { denial: v, decidedAt: v.at }, log);
        return { next, type: 'approval.denied', data: { approver: v.by, reason: v.reason } };
      });
    },

    revoke(requestId, by, reason) {
      return update(requestId, (req) => {
        assertCanRevoke(by, req);
        conflictUnless(req, 'pending', 'approved');
        const v = vote(by, reason);
        const next = transition(req, 'revoked', v.at, v.by, { revocation: v }, log);
        return { next, type: 'approval.revoked', data: { by: v.by, reason: v.reason, was: req.state } };
      });
    },
  };
}
