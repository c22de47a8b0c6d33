/**
 * Waking the data paths that hold an action for a decision. The store publishes `{id, state}` after every write; one
 * subscription per service, made on the first wait, fans each message out to the waiters of that request, so
 * waiting costs no polling and no connection per waiter.
 */
import { handleResubscribes, type RedisClient } from '../common/redis-client.ts';
import type { ApprovalsCore } from './core.ts';

export interface DecisionWaits {
  /**
   * Resolves once the request leaves 'pending' (or is gone), or after timeoutMs; rejects with the signal's reason when
   * it aborts first.
   */
  wait(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Releases every waiter and ends the subscription. */
  close(): Promise<void>;
}

/**
 * `given`: the pub/sub connection from the options (ApprovalsOptions.subscriber), only unsubscribed on close; without
 * it a duplicate of `redis` is made on first use and disconnected on close.
 */
export function createDecisionWaits(core: ApprovalsCore, redis: RedisClient, given?: RedisClient): DecisionWaits {
  const { store, load } = core;
  const waiters = new Map<string, Set<(state: string) => void>>();
  let subscriber: RedisClient | null = null;
  let subscribed: Promise<void> | null = null;

  const subscribe = (): Promise<void> => {
    subscribed ??= (async () => {
      subscriber = given ?? redis.duplicate();
      subscriber.on('message', (channel: string, message: string) => {
        if (channel !== store.channel) return;
        let event: { id: string; state: string };
        try {
          event = JSON.parse(message) as { id: string; state: string };
        } catch {
          return; // not ours: the channel is only written by store.ts
        }
        for (const w of waiters.get(event.id) ?? []) w(event.state);
      });
      handleResubscribes(subscriber);
      await subscriber.subscribe(store.channel);
    })();
    // A failed subscription is retried by the next waiter rather than failing every wait from now on.
    subscribed.catch(() => {
      if (!given) (subscriber as RedisClient | null)?.disconnect();
      subscriber = null;
      subscribed = null;
    });
    return subscribed;
  };

  return {
    async wait(requestId, timeoutMs, signal) {
      signal?.throwIfAborted();
      await subscribe();
      // The agent may have gone while the subscription was made: an abort event fired then would never be seen.
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const set = waiters.get(requestId) ?? new Set();
        waiters.set(requestId, set);
        const finish = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          set.delete(onState);
          if (set.size === 0) waiters.delete(requestId);
        };
        const done = (): void => {
          finish();
          resolve();
        };
        const onAbort = (): void => {
          finish();
          reject(signal?.reason);
        };
        const onState = (state: string): void => {
          if (state !== 'pending') done();
        };
        set.add(onState);
        const timer = setTimeout(done, Math.max(0, timeoutMs));
        signal?.addEventListener('abort', onAbort, { once: true });
        // Subscribed before this read, so a decision made in between is seen either here or as a message.
        load(requestId).then(
          (s) => {
            if (s?.req.state !== 'pending') done();
          },
          () => done(),
        );
      });
    },

    async close() {
      for (const set of waiters.values()) for (const w of set) w('closed');
      if (subscribed) {
        await subscribed.catch(() => undefined);
        const sub = subscriber as RedisClient | null;
        if (sub && !given) sub.disconnect();
        else if (sub) await sub.unsubscribe(store.channel);
      }
      subscribed = null;
      subscriber = null;
    },
  };
}
