/**
 * Expiry without waiting for a reader: requests and grants are expired lazily whenever they are read (core.ts), and
 * the sweeper expires the rest from the store's deadline index, so an overdue request is reported (and its
 * approvers notified) even when no one looks at it again.
 */
import type { ApprovalsCore } from './core.ts';

/** Deadlines read per round. */
const ROUND = 100;

export interface Sweeper {
  /** Expires every overdue pending request and grant now; returns how many changed. */
  sweep(): Promise<number>;
  /** Runs sweep() every intervalMs until stop(); a sweep still running when the next is due is not overlapped. */
  start(intervalMs: number): void;
  stop(): void;
}

export function createSweeper(core: ApprovalsCore): Sweeper {
  const { store, now, log, isDue, expire } = core;
  let timer: NodeJS.Timeout | null = null;
  let sweeping = false;

  const sweep = async (): Promise<number> => {
    let changed = 0;
    for (;;) {
      const ids = await store.due(now(), ROUND);
      let progressed = false;
      for (const id of ids) {
        const s = await store.get(id);
        if (!s) {
          await store.forget([id]);
          progressed = true;
          continue;
        }
        if (isDue(s.req) && (await expire(s))) {
          changed++;
          progressed = true;
        }
      }
      // A round that changed nothing (every expiry lost a race) ends the sweep rather than spinning on the same ids.
      if (ids.length < ROUND || !progressed) return changed;
    }
  };

  return {
    sweep,
    start(intervalMs) {
      if (timer) return;
      timer = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        sweep()
          .catch((err: unknown) => log?.error({ err }, 'approval expiry sweep failed'))
          .finally(() => {
            sweeping = false;
          });
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
