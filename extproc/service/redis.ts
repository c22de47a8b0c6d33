/**
 * The one place Redis clients are made: a single server (`redisUrl`) or a Redis Cluster (`redis.cluster`), with the
 * same failure behaviour either way. Every store and subscriber gets its client from here.
 */
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../common/redis-client.ts';

export type RedisTarget = { kind: 'server'; url: string } | { kind: 'cluster'; nodes: string[] };

export interface RedisClientOptions {
  /** A command not answered within this many ms fails ("Command timed out") instead of waiting on a hung Redis. */
  commandTimeoutMs: number;
}

export function createRedisClient(target: RedisTarget, opts: RedisClientOptions): RedisClient {
  // Commands fail fast while Redis is away (one retry after a reconnect) instead of queueing behind it, and fail within
  // the command timeout while it is hung; reconnects back off to one attempt a second.
  const perConnection = { maxRetriesPerRequest: 1, commandTimeout: opts.commandTimeoutMs };
  const retryStrategy = (n: number): number => Math.min(n * 100, 1000);
  if (target.kind === 'server')
    return new Redis(target.url, { ...perConnection, lazyConnect: false, enableOfflineQueue: true, retryStrategy });
  return new Cluster(
    target.nodes.map((n) => {
      const at = n.lastIndexOf(':');
      return { host: n.slice(0, at), port: Number(n.slice(at + 1)) };
    }),
    {
      redisOptions: perConnection,
      // A cluster client queues commands without any timeout while it has no slot map (all nodes away, or not yet
      // connected): they fail at once instead, as a single server's do once their retry is spent (see whenReady).
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      // Reads go to masters: a replica may not have a write acknowledged a moment ago (an approval just granted).
      scaleReads: 'master',
      // A failover moves a slot within a couple of seconds (cluster-node-timeout): commands that meet MOVED, TRYAGAIN
      // or CLUSTERDOWN meanwhile are retried after these delays rather than failed.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 200,
    },
  );
}

/**
 * Resolves once `client` can take commands. A single server's client queues the first commands until it connects;
 * a cluster client must first learn the slot map, or refuses them (enableOfflineQueue off): the service waits for
 * that at start, and fails to start if the cluster cannot be reached within `timeoutMs`.
 */
export async function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (!(client instanceof Cluster) || client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', ready);
      reject(new Error(`the Redis Cluster (redis.cluster) did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const ready = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', ready);
  });
}
