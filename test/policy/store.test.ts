import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { PolicyLoadError } from '../../extproc/policy/load.ts';
import { PolicySet } from '../../extproc/policy/policy-set.ts';
import { POLICY_PREFIX, PolicyStore } from '../../extproc/policy/store.ts';
import { waitFor } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

let redis: TestRedis;
const clients: Redis[] = [];
const client = (): Redis => {
  const c = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await redis.close();
});

const v = (n: number): string => `name: ops\nrules:\n  - name: r${n}\n    when: k8s.verb == "get"\n    action: allow\n`;

test('every write is a new version with author and time; history, diff and rollback', async () => {
  const store = new PolicyStore(client());
  const v1 = await store.put(v(1), 'alice');
  const v2 = await store.put(v(2), 'bob');
  assert.deepEqual([v1.version, v1.author, v2.version, v2.author], [1, 'alice', 2, 'bob']);
  assert.ok(Date.parse(v2.time) > 0);
  assert.equal((await store.get('ops'))?.version, 2);
  assert.deepEqual(
    (await store.history('ops')).map((h) => h.version),
    [1, 2],
  );
  const back = await store.rollback('ops', 1, 'carol');
  assert.deepEqual([back.version, back.rolledBackFrom, back.source], [3, 1, v(1)]);
  assert.equal((await store.get('ops'))?.source, v(1));
  await assert.rejects(
    store.put('name: ops\nrules:\n  - name: x\n    when: k8s.nope\n    action: allow\n', 'eve'),
    PolicyLoadError,
  );
  assert.equal((await store.history('ops')).length, 3, 'an invalid policy writes no version');
  await store.remove('ops', 'dave');
  assert.equal(await store.get('ops'), null);
  assert.equal(
    (await store.list()).find((p) => p.name === 'ops'),
    undefined,
  );
});

test('concurrent writers never share a version number', async () => {
  const store = new PolicyStore(client());
  const written = await Promise.all(
    Array.from({ length: 10 }, (_, i) => new PolicyStore(client()).put(v(i).replace('ops', 'race'), `w${i}`)),
  );
  assert.deepEqual(
    written.map((w) => w.version).sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.equal((await store.history('race')).length, 10);
});

test('two replicas sharing one Redis pick up a change within a second, without restart', async () => {
  const replicaA = new PolicySet(new PolicyStore(client()), client());
  const replicaB = new PolicySet(new PolicyStore(client()), client());
  await replicaA.start(60_000);
  await replicaB.start(60_000);
  const writer = new PolicyStore(client());
  const started = Date.now();
  const written = await writer.put(v(7).replace('ops', 'hot'), 'alice');
  for (const replica of [replicaA, replicaB]) {
    await waitFor(
      () => replica.current().find((p) => p.doc.name === 'hot' && p.version === written.version),
      1000,
      'hot reload',
    );
  }
  assert.ok(Date.now() - started < 1000);
  await replicaA.stop();
  await replicaB.stop();
});

test('a bad stored version and a Redis outage both leave the last good policies in force', async () => {
  const redisClient = client();
  const subscriber = client();
  const set = new PolicySet(new PolicyStore(redisClient), subscriber);
  await set.start(60_000);
  const store = new PolicyStore(client());
  const good = await store.put(v(1).replace('ops', 'keep'), 'alice');
  await waitFor(() => set.current().find((p) => p.doc.name === 'keep'), 1000, 'first version');
  // Bypass validation as a buggy writer (or an older replica) might, and announce it.
  await redisClient.rpush(
    `${POLICY_PREFIX}keep:versions`,
    JSON.stringify({
      name: 'keep',
      version: 2,
      author: 'x',
      time: new Date().toISOString(),
      deleted: false,
      source: 'name: keep\nrules: nope',
    }),
  );
  await redisClient.set(`${POLICY_PREFIX}keep:current`, '2');
  await set.reload();
  assert.equal(set.current().find((p) => p.doc.name === 'keep')?.version, good.version);
  await redis.stop();
  await set.reload();
  assert.equal(set.current().find((p) => p.doc.name === 'keep')?.version, good.version);
  await redis.start();
  // Back up, the subscriber's client subscribes again on its own (ioredis does not handle that command's promise):
  // let it finish before the clients are closed, or its reply's loss is an unhandled rejection after the test.
  await waitFor(() => subscriber.status === 'ready', 10_000, 'subscriber back');
  await subscriber.ping();
  await set.stop();
});
