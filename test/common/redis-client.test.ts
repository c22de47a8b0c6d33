/**
 * A pub/sub connection that Redis drops and takes back subscribes again on its own (ioredis does it when the
 * connection is ready again); a shutdown at that moment must not leave an unhandled rejection, which ends a Node
 * process.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { handleResubscribes } from '../../extproc/common/redis-client.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

let redis: TestRedis;

before(async () => {
  redis = await startRedis({ appendonly: false });
});
after(async () => {
  await redis.close();
});

test('a SUBSCRIBE nobody handles (ioredis subscribing again after a reconnect) does not become an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const record = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', record);
  const client = new Redis(redis.url, { retryStrategy: () => 50 });
  client.on('error', () => undefined);
  try {
    handleResubscribes(client);
    await client.subscribe('channel');
    client.disconnect();
    // What ioredis does on its own once a dropped connection is ready again: subscribe, and drop the promise. Here
    // the connection is closed, so the command fails.
    void client.subscribe('channel');
    // Its own callers still get the result.
    await assert.rejects(client.subscribe('other'), /Connection is closed/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled.map(String), []);
  } finally {
    process.off('unhandledRejection', record);
    client.disconnect();
  }
});
