/**
 * Why the gateway refused an action: one closed list of codes shared by every data path, the logs, the metrics and the
 * recording. Each adapter maps every code to its protocol (a Kubernetes `Status` reason and HTTP status, a Postgres
 * SQLSTATE, an SSH exit status and message) with an exhaustive switch, so a new code cannot go unmapped.
 */
export const REFUSAL_CODES = [
  /** No agent token, or one that is malformed, forged, expired, revoked or names an unknown agent. */
  'unauthenticated',
  /** A valid token that does not cover this target, or a disabled agent. */
  'forbidden',
  /** The gateway cannot serve this listener as configured (e.g. it names no known target). */
  'misconfigured',
  /** The action could not be understood: a malformed message, path, query or body. */
  'bad-request',
  /** A protocol feature the gateway does not let through (impersonation, an ambiguous path, an unsupported method). */
  'unsupported',
  /** A body whose encoding or media type the gateway cannot inspect. */
  'unsupported-media',
  /** Over the gateway's size limits. */
  'too-large',
  /** A policy rule (or the target's default) denies the action. */
  'policy-deny',
  /** The action waits for a human approval that has not been given yet. */
  'approval-required',
  /** An approver denied the action. */
  'approval-denied',
  /** The target requires recording and the recorder cannot accept events now. */
  'recording-unavailable',
  /** State the decision needs (an approval) is kept in Redis, and Redis did not answer within its bound. */
  'store-unavailable',
  /** The gateway could not obtain the target's upstream credential. */
  'upstream-credential',
  /** The upstream answered in a form the gateway cannot mask. */
  'unmaskable-response',
  /** A fault inside the gateway. */
  'internal',
] as const;

export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface Refusal {
  code: RefusalCode;
  /** What the agent reads. Never holds a secret or a value the agent did not send. */
  message: string;
  /** A short machine-readable cause within the code (`token-expired`, `impersonation`), for logs and the recording. */
  detail: string;
}

export function refusal(code: RefusalCode, message: string, detail: string = code): Refusal {
  return { code, message, detail };
}
