/**
 * The short list of error codes the admin API (and the CLI that calls it) speaks. Every error body is
 * `{code, message, details}`; `message` is safe to show, `details` carries structured data such as policy positions.
 */
export const ERROR_STATUS = {
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  invalid_request: 400,
  invalid_policy: 422,
  conflict: 409,
  unavailable: 503,
  internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export class AdminError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AdminError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
  toJSON(): { code: ErrorCode; message: string; details: unknown } {
    return { code: this.code, message: this.message, details: this.details ?? null };
  }
}

/** What the admin API says when the store cannot be reached (a 503: the caller should retry, nothing is wrong). */
export const STORE_UNAVAILABLE_MESSAGE = 'the store (Redis) is unreachable; try again shortly';

const STORE_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);
const STORE_ERROR_MESSAGES = [
  'Connection is closed.',
  'Command timed out',
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
  'None of startup nodes is available',
  'Failed to refresh slots cache.',
];
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Whether an error means "Redis is not reachable right now" (as opposed to a bug or a bad request): the errors
 * ioredis raises when its connection is down, its retries for a command are spent, or a command timed out. Matched
 * by name, message and socket code, so this module needs no Redis client.
 */
export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (STORE_ERROR_NAMES.has(err.name) || STORE_ERROR_MESSAGES.includes(err.message)) return true;
  if (code && SOCKET_ERROR_CODES.has(code)) return true;
  // ClusterAllFailedError keeps the node's error as lastNodeError; other wrappers use cause.
  const inner = (err as { lastNodeError?: unknown }).lastNodeError ?? err.cause;
  return inner !== undefined && isStoreUnavailable(inner, depth + 1);
}
