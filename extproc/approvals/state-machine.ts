/** The one place an approval request changes state. Everything else computes a patch and calls transition(). */
import type { Logger } from 'pino';
import type { ApprovalRequest, ApprovalState } from './types.ts';

const LEGAL: Record<ApprovalState, readonly ApprovalState[]> = {
  pending: ['approved', 'denied', 'expired', 'revoked'],
  approved: ['consumed', 'expired', 'revoked'],
  denied: [],
  expired: [],
  revoked: [],
  consumed: [],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly id: string,
    readonly from: ApprovalState,
    readonly to: ApprovalState,
  ) {
    super(`approval ${id}: illegal transition ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function canTransition(req: ApprovalRequest, to: ApprovalState): boolean {
  if (!LEGAL[req.state].includes(to)) return false;
  // Only a once grant is consumed; a window grant lets many actions through until it ends.
  if (to === 'consumed') return req.grant === 'once';
  return true;
}

export function isFinal(state: ApprovalState): boolean {
  return LEGAL[state].length === 0;
}

/**
 * Returns a copy of `req` in state `to` with `patch` applied and the move appended to its history; throws
 * IllegalTransitionError for a move the table above does not allow. Pure apart from the log line: persisting the
 * result (atomically, against the revision it was read at) is the store's job.
 */
export function transition(
  req: ApprovalRequest,
  to: ApprovalState,
  at: string,
  by: string | null,
  patch: Partial<Omit<ApprovalRequest, 'id' | 'state' | 'history'>> = {},
  logger?: Logger,
): ApprovalRequest {
  if (!canTransition(req, to)) throw new IllegalTransitionError(req.id, req.state, to);
  logger?.info({ approval: req.id, from: req.state, to, by }, `approval ${req.state} -> ${to}`);
  return { ...req, ...patch, state: to, history: [...req.history, { from: req.state, to, at, by }] };
}
