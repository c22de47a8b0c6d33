/**
 * Keys written by earlier versions under names without a hash tag (which a Redis Cluster cannot serve together) are
 * moved to the current names when a service starts on a single Redis server. Only a single server can hold them:
 * earlier versions never ran on a cluster. Replicas of an earlier version must be stopped before the first replica of
 * this one starts, since they would go on writing the old names.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { APPROVALS_PREFIX } from '../approvals/store.ts';
import { POLICY_PREFIX } from '../policy/store.ts';

const MOVES: ReadonlyArray<{ from: string; to: string }> = [
  { from: 'portcullis:policy:', to: POLICY_PREFIX },
  { from: 'portcullis:approvals:', to: APPROVALS_PREFIX },
];

/** Renames every key under an old prefix that has no counterpart under the new one; returns how many moved. */
export async function migrateKeyLayout(redis: Redis, logger: Logger): Promise<number> {
  let moved = 0;
  for (const { from, to } of MOVES) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${from}*`, 'COUNT', 500);
      cursor = next;
      for (const key of found) {
        const renamed = await redis.renamenx(key, to + key.slice(from.length)).catch(() => 0); // gone meanwhile
        if (renamed === 1) moved++;
        else logger.warn({ key }, 'a key of the earlier layout was not moved: its new name is taken');
      }
    } while (cursor !== '0');
  }
  if (moved > 0) logger.info({ moved }, 'moved keys of the earlier layout to hash-tagged names (Redis Cluster ready)');
  return moved;
}
