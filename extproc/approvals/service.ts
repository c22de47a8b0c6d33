/**
 * The approval workflow the data paths call for `require_approval`: find or raise the request for an action, consume
 * grants, take humans' decisions, expire what is overdue. Every state change is written with a compare-and-set
 * (store.ts), then reported once to `audit` and to the notifier (which never blocks).
 *
 * This module assembles the parts: core.ts (shared store, clock, reporting, lazy expiry), check.ts (the data path),
 * wake-ups.ts (waiting for a decision), decide.ts (approve, deny, revoke), read.ts (list, get), sweeper.ts (expiry).
 */
import { createCheck } from './check.ts';
import { type ApprovalsOptions, createCore } from './core.ts';
import { createDecisions } from './decide.ts';
import { createReads } from './read.ts';
import { createSweeper } from './sweeper.ts';
import type { Approvals } from './types.ts';
import { createDecisionWaits } from './wake-ups.ts';

export type { ApprovalsOptions };

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
    pendingCount: () => core.store.pendingCount(),
    startExpirySweeper: sweeper.start,
    async close() {
      sweeper.stop();
      await waits.close();
    },
  };
}
