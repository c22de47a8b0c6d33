/**
 * The approval workflow the data paths call for `require_approval`: find or raise the request for an action, consume
 * grants, take humans' decisions, expire what is overdue. Every state change is written with a compare-and-set
 * (store.ts), then reported once to `audit` and to the notifier (which never blocks).
 *
 * This module assembles the parts: core.ts (shared store, clock, reporting, lazy expiry), check.ts (the data path),
 * wake-ups.ts (waiting for a decision), decide.ts (approve, deny, revoke), read.ts (list, get), sweeper.ts (expiry).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createCheck } from './check.ts';
import { createCore } from './core.ts';
import { createDecisions } from './decide.ts';
import { createReads } from './read.ts';
import { createSweeper } from './sweeper.ts';
import type { ApprovalAuditEvent, Approvals, Notifier } from './types.ts';
import { createDecisionWaits } from './wake-ups.ts';

export interface ApprovalsOptions {
  redis: Redis;
  /** A connection for pub/sub (waitForDecision); default: a duplicate of `redis`, made on first use. */
  subscriber?: Redis;
  audit: (e: ApprovalAuditEvent) => void;
  notifier?: Notifier;
  now?: () => number;
  logger?: Logger;
  /** Redis key prefix (default `portcullis:approvals:`). */
  prefix?: string;
  /** How long a final request (consumed, denied, expired, revoked) is kept in Redis; default 30 days. */
  retentionSeconds?: number;
}

export function createApprovals(opts: ApprovalsOptions): Approvals {
  const core = createCore(opts);
  const check = createCheck(core);
  const waits = createDecisionWaits(core, opts.redis, opts.subscriber);
  const sweeper = createSweeper(core);
  return {
    check,
    async waitForDecision(a, requestId, timeoutMs, signal) {
      await waits.wait(requestId, timeoutMs, signal);
      // The same answer a fresh check gives: a once grant is consumed here, by the call that waited for it.
      return check(a);
    },
    ...createDecisions(core),
    ...createReads(core),
    sweep: sweeper.sweep,
    startExpirySweeper: sweeper.start,
    async close() {
      sweeper.stop();
      await waits.close();
    },
  };
}
