/** The approval workflow's public surface: what the protocol adapters, the admin API and the composition root use. */
export type {
  ActionForApproval,
  ApprovalAuditEvent,
  ApprovalCheck,
  BoundedApprovalCheck,
  ApprovalEventType,
  ApprovalListFilter,
  ApprovalNotification,
  ApprovalRequest,
  Approvals,
  ApprovalState,
  ApprovalTransition,
  ApprovalVote,
  Notifier,
} from './types.ts';
export { APPROVAL_STATES } from './types.ts';
export { actionFingerprint, canonicalJson } from './fingerprint.ts';
export { createApprovals, type ApprovalsOptions } from './service.ts';
export { boundedApprovals, type BoundedApprovals } from './deadline.ts';
export { createWebhookNotifier, slackBody, type WebhookNotifierOptions, type WebhookTarget } from './notifier.ts';
export { refusalMessage } from './messages.ts';
export { approvalRoutes, APPROVAL_REQUEST_SCHEMA } from './routes.ts';
export { IllegalTransitionError, transition } from './state-machine.ts';
