/**
 * Start-up is all or nothing: a fatal problem becomes one StartupError whose message names the value at fault (the
 * config key, its environment variable, the address), and everything started before it is stopped again (see
 * startService's undo list), so the process can exit instead of lingering half-started.
 */
import type { RedisClient } from '../common/redis-client.ts';
import type { RedisTarget } from './redis.ts';

export class StartupError extends Error {}

/** The listeners a service opens, with the config key and environment variable that set each address. */
export type ListenerName = 'grpc' | 'admin' | 'metrics' | 'ssh';
const LISTENER_SETTINGS: Record<ListenerName, { what: string; env: string }> = {
  grpc: { what: 'the gRPC (ext_proc) server', env: 'PORTCULLIS_GRPC_PORT' },
  admin: { what: 'the admin API', env: 'PORTCULLIS_ADMIN_PORT' },
  metrics: { what: 'the metrics endpoint', env: 'PORTCULLIS_METRICS_PORT' },
  ssh: { what: 'the SSH gateway', env: 'PORTCULLIS_SSH_PORT' },
};

/** Awaits a listener's start; a bind failure becomes a StartupError naming the address and how to change it. */
export async function listening<T>(name: ListenerName, host: string, port: number, start: Promise<T>): Promise<T> {
  try {
    return await start;
  } catch (err) {
    const { what, env } = LISTENER_SETTINGS[name];
    const text = String((err as Error).message);
    const reason = /EADDRINUSE/.test(text)
      ? 'the address is already in use'
      : /EACCES/.test(text)
        ? 'permission denied'
        : /EADDRNOTAVAIL|ENOTFOUND/.test(text)
          ? 'no such local address'
          : text.split('\n')[0];
    throw new StartupError(`cannot listen for ${what} on ${host}:${port} (${name}.port / ${env}): ${reason}`);
  }
}

/** A Redis URL fit for a message: the password replaced by `***`. */
export function redactedRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/** Where the service looks for Redis, for a message, with the setting that names it. */
function describeRedis(target: RedisTarget): string {
  return target.kind === 'cluster'
    ? `the Redis Cluster at ${target.nodes.map(redactedRedisUrl).join(', ')} (redis.cluster / REDIS_CLUSTER)`
    : `Redis at ${redactedRedisUrl(target.url)} (redisUrl / REDIS_URL)`;
}

/**
 * Waits until Redis answers PING, retrying while the client reconnects, for at most timeoutMs; then gives up with a
 * StartupError naming the (redacted) URL and the last error. The data path never waits on Redis, but start-up must:
 * keys, policies and tokens are read from it before anything is served.
 */
export async function waitForRedis(redis: RedisClient, target: RedisTarget, timeoutMs: number): Promise<void> {
  let last = 'no answer';
  const onError = (err: Error): void => {
    last = err.message;
  };
  redis.on('error', onError);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const answered = await Promise.race([
        redis.ping().then(
          () => true,
          (err: Error) => {
            last = err.message;
            // A refused password will not be accepted on the next try either.
            if (/NOAUTH|WRONGPASS|invalid (username-)?password/i.test(last)) throw err;
            return false;
          },
        ),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), Math.min(left, 1000)).unref()),
      ]);
      if (answered) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now()))).unref());
    }
  } catch {
    // a refused password: reported below with its reason
  } finally {
    redis.off('error', onError);
  }
  throw new StartupError(
    `${describeRedis(target)} did not answer within ${Math.round(timeoutMs / 1000)} s: ${last.split('\n')[0]}`,
  );
}
