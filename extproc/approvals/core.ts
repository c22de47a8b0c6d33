/**
 * What every part of the approval workflow shares: the store, the clock, report() (each state change told once to
 * `audit` and to the notifier) and load(), which reads a request and expires it first when it is overdue, so no
 * caller ever acts on a request or grant whose time is up, whether or not the sweeper has run yet.
 */
import type { RedisClient } from '../common/redis-client.ts';
import type { Logger } from 'pino';
import { transition } from './state-machine.ts';
import { createApprovalStore, deadlineOf, type ApprovalStore, type StoredRequest } from './store.ts';
import type { ApprovalAuditEvent, ApprovalEventType, ApprovalRequest, Notifier } from './types.ts';

export interface ApprovalsOptions {
  redis: RedisClient;
  /** A connection for pub/sub (waitForDecision); default: a duplicate of `redis`, made on first use. */
  subscriber?: RedisClient;
  audit: (e: ApprovalAuditEvent) => void;
  notifier?: Notifier;
  now?: () => number;
  logger?: Logger;
  /** Redis key prefix, holding one hash tag (default `portcullis:{approvals}:`). */
  prefix?: string;
  /** How long a final request (consumed, denied, expired, revoked) is kept in Redis; default 30 days. */
  retentionSeconds?: number;
}

/** Compare-and-set retries before giving up; each retry means another writer won a race, so few are ever needed. */
export const MAX_ATTEMPTS = 16;

export interface ApprovalsCore {
  store: ApprovalStore;
  now: () => number;
  /** now() as an ISO 8601 time, for the times written into requests. */
  iso: () => string;
  log: Logger | undefined;
  /** Tells `audit` (a failing sink is logged, not thrown) and, unless `notify` is false, the notifier. */
  report(type: ApprovalEventType, req: ApprovalRequest, data?: Record<string, unknown>, notify?: boolean): void;
  /** Whether the request's pending time or grant has run out. */
  isDue(req: ApprovalRequest): boolean;
  /** Moves an overdue request to expired; false when someone else changed it first. */
  expire(s: StoredRequest): Promise<boolean>;
  /** Reads a request, expiring it first when it is overdue (lazy expiry). */
  load(id: string): Promise<StoredRequest | null>;
}

export function createCore(opts: ApprovalsOptions): ApprovalsCore {
  const store = createApprovalStore(opts.redis, {
    prefix: opts.prefix,
    retentionSeconds: opts.retentionSeconds ?? 30 * 86_400,
  });
  const now = opts.now ?? Date.now;
  const iso = (): string => new Date(now()).toISOString();
  const log = opts.logger;

  const report = (
    type: ApprovalEventType,
    req: ApprovalRequest,
    data: Record<string, unknown> = {},
    notify = true,
  ): void => {
    const event: ApprovalAuditEvent = {
      type,
      sessionId: req.sessionId,
      agent: req.agent,
      target: req.target,
      protocol: req.protocol,
      requestId: req.id,
      data: {
        state: req.state,
        summary: req.summary,
        ...(req.effect ? { effect: req.effect } : {}),
        fingerprint: req.fingerprint,
        policy: req.policy,
        policyVersion: req.policyVersion,
        rule: req.rule,
        group: req.group,
        grant: req.grant,
        createdAt: req.createdAt,
        ...data,
      },
    };
    try {
      opts.audit(event);
    } catch (err) {
      log?.error({ err, approval: req.id, type }, 'approval audit sink failed');
    }
    if (notify) opts.notifier?.notify({ type, request: req });
  };

  const isDue = (req: ApprovalRequest): boolean => {
    const d = deadlineOf(req);
    return d !== null && now() >= d;
  };

  const expire = async (s: StoredRequest): Promise<boolean> => {
    const next = transition(s.req, 'expired', iso(), null, {}, log);
    if (!(await store.save(next, s.rev))) return false;
    report('approval.expired', next, { was: s.req.state });
    return true;
  };

  const load = async (id: string): Promise<StoredRequest | null> => {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const s = await store.get(id);
      if (!s || !isDue(s.req)) return s;
      await expire(s);
    }
    throw new Error(`approval ${id}: could not settle its state`);
  };

  return { store, now, iso, log, report, isDue, expire, load };
}
