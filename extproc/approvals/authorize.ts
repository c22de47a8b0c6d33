/**
 * Who may see, decide and revoke approval requests. Separation of duties: only the `approver` role decides (an
 * admin who is not also an approver cannot approve); admins may revoke any grant (incident response); auditors
 * and admins may read every request. Agents are never principals; the admin server refuses their tokens, and these
 * checks refuse any principal without the roles below regardless.
 */
import { AdminError } from '../admin/errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { ApprovalRequest } from './types.ts';

export function canSeeAll(p: Principal): boolean {
  return p.roles.includes('admin') || p.roles.includes('auditor');
}

export function assertCanView(p: Principal, req: ApprovalRequest): void {
  if (canSeeAll(p)) return;
  if (p.roles.includes('approver') && p.groups.includes(req.group)) return;
  throw new AdminError(
    'forbidden',
    `approval ${req.id} belongs to approver group "${req.group}", which you are not in`,
  );
}

/** For approve and deny. */
export function assertCanDecide(p: Principal, req: ApprovalRequest): void {
  if (!p.roles.includes('approver'))
    throw new AdminError('forbidden', 'only principals with the approver role can approve or deny');
  if (!p.groups.includes(req.group)) {
    throw new AdminError('forbidden', `approval ${req.id} needs a member of approver group "${req.group}"`, {
      group: req.group,
    });
  }
  assertNotSelf(p, req);
}

export function assertCanRevoke(p: Principal, req: ApprovalRequest): void {
  if (p.roles.includes('admin')) return;
  if (!p.roles.includes('approver')) throw new AdminError('forbidden', 'only approvers and admins can revoke');
  if (!p.groups.includes(req.group)) {
    throw new AdminError(
      'forbidden',
      `approval ${req.id} belongs to approver group "${req.group}", which you are not in`,
    );
  }
}

function assertNotSelf(p: Principal, req: ApprovalRequest): void {
  // The agent's owner raised the request through the agent; an id equal to the agent's is the agent itself. Owners
  // are principal ids (checked when an agent is written); the name comparison covers agents recorded before that
  // check, whose owner may be a name. It can only refuse more, never allow more.
  if (p.id === req.agentOwner || p.id === req.agent || (req.agentOwner !== null && p.name === req.agentOwner)) {
    throw new AdminError('forbidden', `you cannot decide approval ${req.id}: it was raised by your own identity`, {
      reason: 'self_approval',
    });
  }
}
