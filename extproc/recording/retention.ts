/**
 * Retention: sessions whose last event is older than maxAgeSeconds are removed with all their keys and index
 * entries, after `exportTo` (when given) has taken their events. A session whose export fails is kept for the next run.
 */
import type { RedisClient } from '../common/redis-client.ts';
import type { Logger } from 'pino';
import { runCommands } from './commands.ts';
import { DECISION_ACTIONS, keys } from './keys.ts';
import { readEvents } from './queries.ts';
import type { RecordingEvent } from './types.ts';

export interface RetentionOptions {
  redis: RedisClient;
  maxAgeSeconds: number;
  exportTo?: (sessionId: string, events: RecordingEvent[]) => Promise<void>;
  logger?: Logger;
  /** For tests: the current time in ms. */
  now?: number;
}

export interface RetentionResult {
  removed: number;
  exported: number;
  failed: number;
}

const SCAN = 100;

export async function applyRetention(opts: RetentionOptions): Promise<RetentionResult> {
  const { redis } = opts;
  const cutoff = (opts.now ?? Date.now()) - opts.maxAgeSeconds * 1000;
  const result: RetentionResult = { removed: 0, exported: 0, failed: 0 };
  let offset = 0;
  for (;;) {
    const ids = await redis.zrangebyscore(keys.byActivity, '-inf', `(${cutoff}`, 'LIMIT', offset, SCAN);
    if (ids.length === 0) return result;
    for (const id of ids) {
      if (opts.exportTo) {
        try {
          const events: RecordingEvent[] = [];
          for await (const e of readEvents(redis, id)) if (e.event) events.push(e.event);
          await opts.exportTo(id, events);
          result.exported++;
        } catch (err) {
          result.failed++;
          offset++;
          opts.logger?.error({ err: String(err), sessionId: id }, 'retention: export failed; session kept');
          continue;
        }
      }
      await removeSession(redis, id);
      result.removed++;
    }
  }
}

/**
 * Deletes a session's keys (one slot: one DEL), then its entries in every index (other slots). An index entry left by
 * a failure in between names a session without metadata, which listings skip; the next run removes it.
 */
export async function removeSession(redis: RedisClient, id: string): Promise<void> {
  const [agent, target, protocol] = await redis.hmget(keys.meta(id), 'agent', 'target', 'protocol');
  await redis.del(keys.events(id), keys.meta(id), keys.text(id));
  const cmds: string[][] = [
    ['zrem', keys.byStart, id],
    ['zrem', keys.byActivity, id],
  ];
  if (agent) cmds.push(['zrem', keys.byAgent(agent), id]);
  if (target) cmds.push(['zrem', keys.byTarget(target), id]);
  if (protocol) cmds.push(['zrem', keys.byProtocol(protocol), id]);
  for (const d of DECISION_ACTIONS) cmds.push(['zrem', keys.byDecision(d), id]);
  await runCommands(redis, cmds);
}

/** Runs applyRetention every intervalSeconds until stop(); runs never overlap. */
export function startRetention(opts: RetentionOptions & { intervalSeconds: number }): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    applyRetention(opts)
      .then((r) => {
        if (r.removed || r.failed) opts.logger?.info(r, 'retention run');
      })
      .catch((err: unknown) => opts.logger?.error({ err: String(err) }, 'retention run failed'))
      .finally(() => {
        running = false;
      });
  }, opts.intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
