/**
 * Several independent commands in one round trip where the client allows it: a pipeline on a single Redis; on a Redis
 * Cluster, where one pipeline cannot span slots, each command on its own (ioredis still sends them without waiting).
 */
import type { RedisClient } from '../common/redis-client.ts';

/** Runs `cmds` (each `[command, ...args]`); resolves to their replies in order, or throws the first error. */
export async function runCommands(redis: RedisClient, cmds: Array<Array<string | number>>): Promise<unknown[]> {
  if (cmds.length === 0) return [];
  if (redis.isCluster) return Promise.all(cmds.map(([c, ...args]) => redis.call(String(c), ...args)));
  const res = (await redis.pipeline(cmds.map((c) => c.map(String))).exec()) ?? [];
  return res.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}
