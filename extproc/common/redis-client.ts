/**
 * The Redis client every store takes: one server (ioredis `Redis`) or a Redis Cluster (ioredis `Cluster`), as
 * configured (`redisUrl` or `redis.cluster`). Both speak the same commands; on a cluster, the keys of one multi-key
 * command, MULTI or Lua script must share a hash slot, so each store names such keys with one hash tag (`{…}`).
 */
import { Cluster, type Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

/**
 * A new connection like `client` but without its command timeout, for a command that blocks on purpose (XREAD BLOCK):
 * the service's clients time out every command so that a hung Redis is refused within a bound, which would cut a
 * blocking read short.
 */
export function blockingConnection(client: RedisClient): RedisClient {
  if (client instanceof Cluster)
    return client.duplicate([], { redisOptions: { ...client.options.redisOptions, commandTimeout: undefined } });
  return client.duplicate({ commandTimeout: undefined });
}

const guarded = new WeakSet<RedisClient>();

/**
 * Makes every SUBSCRIBE of `client` a handled promise, its own callers still getting the result. After a reconnect,
 * ioredis subscribes again to the client's channels on its own and drops that command's promise: if the connection
 * closes before Redis answers (a shutdown right after Redis came back), the rejection is unhandled and ends the
 * process. Call it on a pub/sub connection before its first subscribe.
 */
export function handleResubscribes(client: RedisClient): void {
  if (guarded.has(client)) return;
  guarded.add(client);
  const subscribe = client.subscribe.bind(client) as (...channels: string[]) => Promise<unknown>;
  (client as { subscribe: (...channels: string[]) => Promise<unknown> }).subscribe = (...channels) => {
    const reply = subscribe(...channels);
    reply.catch(() => undefined);
    return reply;
  };
}
