/**
 * The data path's view of approvals: every check answers within a deadline. A hung Redis would otherwise hold the
 * agent's request until Envoy's ext_proc message timeout and a proxy 504; within the deadline (below that timeout) it
 * is refused in the protocol's own words, and the agent may retry.
 */
import type { Logger } from 'pino';
import { isStoreUnavailable } from '../admin/errors.ts';
import type { ActionForApproval, Approvals, ApprovalCheck, BoundedApprovalCheck } from './types.ts';

export interface BoundedApprovals {
  check(action: ActionForApproval): Promise<BoundedApprovalCheck>;
  /**
   * Approvals.waitForDecision, answering `unavailable` when Redis is away. Not cut short by the deadline: the agent's
   * request is held (Envoy was told to wait longer), and the wait ends on a decision, its timeout or the signal.
   */
  waitForDecision(
    action: ActionForApproval,
    requestId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<BoundedApprovalCheck>;
}

const UNAVAILABLE: BoundedApprovalCheck = { status: 'unavailable' };

/**
 * `unavailable` when Redis is away or has not answered within `deadlineMs`. A check cut short may still complete in
 * Redis later (raise the pending request, or consume a once grant the agent then never gets): the agent's retry finds
 * the request either way, and a grant lost so is one more approval to ask for, never an action let through.
 */
export function boundedApprovals(
  approvals: Pick<Approvals, 'check' | 'waitForDecision'>,
  deadlineMs: number,
  logger?: Logger,
): BoundedApprovals {
  const storeErrors = (answer: Promise<ApprovalCheck>): Promise<BoundedApprovalCheck> =>
    answer.catch((err: unknown): BoundedApprovalCheck => {
      if (!isStoreUnavailable(err)) throw err;
      logger?.warn({ err: (err as Error).message }, 'approval check: the store is unreachable; refusing');
      return UNAVAILABLE;
    });
  const bounded = (answer: Promise<ApprovalCheck>): Promise<BoundedApprovalCheck> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<BoundedApprovalCheck>((resolve) => {
      timer = setTimeout(() => {
        logger?.warn({ deadlineMs }, 'approval check: the store did not answer in time; refusing');
        resolve(UNAVAILABLE);
      }, deadlineMs);
    });
    return Promise.race([storeErrors(answer), late]).finally(() => clearTimeout(timer));
  };
  return {
    check: (action) => bounded(approvals.check(action)),
    waitForDecision: (action, requestId, timeoutMs, signal) =>
      storeErrors(approvals.waitForDecision(action, requestId, timeoutMs, signal)),
  };
}
