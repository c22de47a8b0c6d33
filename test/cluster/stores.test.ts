/**
 * The stores on a real Redis Cluster (three masters, three replicas), as two gateway replicas use them: each "replica"
 * has its own clients from the service's factory. Every multi-key command, MULTI and Lua script must find its keys in
 * one slot (a cluster refuses CROSSSLOT otherwise), pub/sub must reach the other replica, and a master failing over
 * while writes run must lose none that was acknowledged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApprovals, type Approvals } from '../../extproc/approvals/index.ts';
import { APPROVALS_PREFIX } from '../../extproc/approvals/store.ts';
import type { RedisClient } from '../../extproc/common/redis-client.ts';
import { AgentTokens } from '../../extproc/identity/agent-tokens.ts';
import { Principals } from '../../extproc/identity/principals.ts';
import { Registry } from '../../extproc/identity/registry.ts';
import { SigningKeys } from '../../extproc/identity/signing-keys.ts';
import { PolicySet } from '../../extproc/policy/policy-set.ts';
import { POLICY_PREFIX, PolicyStore } from '../../extproc/policy/store.ts';
import { createRedisClient, whenReady } from '../../extproc/service/redis.ts';
import { auditSink, bob, sqlAction } from '../approvals/fixtures.ts';
import { waitFor } from '../harness/ports.ts';
import { startRedisCluster, type TestRedisCluster } from '../harness/redis-cluster.ts';

const silent = pino({ level: 'silent' });
let cluster: TestRedisCluster;
const clients: RedisClient[] = [];
const client = (): RedisClient => {
  const c = createRedisClient({ kind: 'cluster', nodes: cluster.nodes }, { commandTimeoutMs: 5000 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

/** One gateway replica's view of the stores: its own command and subscriber connections, ready as at a start. */
async function replica(): Promise<{ redis: RedisClient; sub: RedisClient }> {
  const r = { redis: client(), sub: client() };
  await Promise.all([whenReady(r.redis, 15_000), whenReady(r.sub, 15_000)]);
  return r;
}

const policy = (name: string, verb: string): string =>
  `name: ${name}\nrules:\n  - name: no-${verb}\n    when: k8s.verb == "${verb}"\n    action: deny\n`;

before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await cluster.close();
});

describe('on a Redis Cluster', () => {
  test('policies: versions appended from two replicas never share a number; the other replica hears of each', async () => {
    const a = await replica();
    const b = await replica();
    const storeA = new PolicyStore(a.redis);
    const storeB = new PolicyStore(b.redis);
    const setB = new PolicySet(storeB, b.sub, silent);
    await setB.start(60_000);
    try {
      const written = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? storeA : storeB).put(policy('shared', i % 2 ? 'delete' : 'create'), `author-${i}`),
        ),
      );
      assert.deepEqual(
        written.map((v) => v.version).sort((x, y) => x - y),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      const history = await storeA.history('shared');
      assert.deepEqual(
        history.map((v) => v.version),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      for (const v of written)
        assert.equal(history[v.version - 1]!.author, v.author, 'each entry holds its own number');
      // Pub/sub on a cluster: replica B hears of A's write without its poll (which is a minute away).
      const last = await storeA.put(policy('other', 'patch'), 'alice');
      await waitFor(
        () => setB.current().find((p) => p.doc.name === 'other' && p.version === last.version),
        10_000,
        'replica B to load the policy A wrote',
      );
      await storeB.rollback('shared', 1, 'bob');
      assert.equal((await storeA.get('shared'))?.rolledBackFrom, 1);
      assert.deepEqual(
        (await storeA.list()).map((v) => v.name),
        ['other', 'shared'],
      );
    } finally {
      await setB.stop();
    }
  });

  test('approvals: raised on one replica, approved on the other, the waiting replica is woken and consumes once', async () => {
    const a = await replica();
    const b = await replica();
    const sinkA = auditSink();
    const approvalsA = createApprovals({ redis: a.redis, subscriber: a.sub, audit: sinkA.audit });
    const approvalsB = createApprovals({ redis: b.redis, subscriber: b.sub, audit: () => undefined });
    try {
      const del = sqlAction('DELETE FROM orders WHERE id = 7');
      const first = await approvalsA.check(del);
      assert.equal(first.status, 'pending');
      const waiting = approvalsA.waitForDecision(del, first.requestId, 20_000);
      await approvalsB.approve(first.requestId, bob, 'fine');
      assert.deepEqual(await waiting, { status: 'granted', requestId: first.requestId, grant: 'once' });
      // Consumed by A's wait: B's retry of the same action asks again.
      const again = await approvalsB.check(del);
      assert.equal(again.status, 'pending');
      assert.notEqual(again.requestId, first.requestId);
      assert.deepEqual(
        (await approvalsB.list({ state: 'pending' }, bob)).map((r) => r.id),
        [again.requestId],
      );
      assert.deepEqual(sinkA.types(first.requestId), ['approval.requested', 'approval.consumed']);
    } finally {
      await approvalsA.close();
      await approvalsB.close();
    }
  });

  test('approvals: a once grant raced by two replicas is consumed exactly once', async () => {
    const replicas: Approvals[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await replica();
      replicas.push(createApprovals({ redis: r.redis, subscriber: r.sub, audit: () => undefined }));
    }
    try {
      const drop = sqlAction('DROP TABLE invoices');
      const { requestId } = await replicas[0]!.check(drop);
      await replicas[1]!.approve(requestId, bob);
      const results = await Promise.all(replicas.flatMap((s) => [s.check(drop), s.check(drop)]));
      assert.equal(results.filter((r) => r.status === 'granted').length, 1, JSON.stringify(results));
    } finally {
      for (const r of replicas) await r.close();
    }
  });

  test('identity: principals, signing keys and agent tokens work across replicas; a revocation reaches the other', async () => {
    const a = await replica();
    const b = await replica();
    const principalsA = new Principals(a.redis, { tokenTtlSeconds: 3600 });
    const created = await principalsA.create({ name: 'ops', roles: ['admin'] });
    const principalsB = new Principals(b.redis, { tokenTtlSeconds: 3600 });
    assert.equal((await principalsB.authenticate(created.token))?.id, created.principal.id);
    await principalsB.revoke(created.principal.id);
    await assert.rejects(principalsA.authenticate(created.token), /revoked/);

    const registryA = new Registry(a.redis);
    await registryA.putAgent({
      id: 'agent-x',
      groups: [],
      labels: {},
      owner: created.principal.id,
      disabled: false,
      createdAt: new Date().toISOString(),
    });
    await registryA.putTarget({
      name: 'kube-dev',
      kind: 'kubernetes',
      address: 'https://127.0.0.1:6443',
      labels: {},
      defaultAction: 'deny',
      recording: 'fail-closed',
    });
    const keysA = new SigningKeys(a.redis);
    await keysA.load();
    const keysB = new SigningKeys(b.redis);
    await keysB.load();
    const ttl = { defaultTtlSeconds: 600, maxTtlSeconds: 3600 };
    const tokensA = new AgentTokens(a.redis, a.sub, keysA, registryA, ttl, silent);
    const tokensB = new AgentTokens(b.redis, b.sub, keysB, new Registry(b.redis), ttl, silent);
    await tokensA.start();
    await tokensB.start();
    try {
      const issued = await tokensA.issue({ agent: 'agent-x', targets: ['kube-dev'], issuedBy: 'ops' });
      assert.equal((await tokensB.verify(issued.token, 'kube-dev')).ok, true, 'B verifies what A signed');
      const second = await tokensA.issue({ agent: 'agent-x', targets: ['kube-dev'], issuedBy: 'ops' });
      assert.deepEqual(
        (await tokensB.scramCandidates('agent-x')).map((c) => c.jti).sort(),
        [issued.record.jti, second.record.jti].sort(),
        "B finds the agent's tokens for a SCRAM proof (records in many slots)",
      );
      await tokensA.revoke(issued.record.jti);
      await waitFor(
        async () => !(await tokensB.verify(issued.token, 'kube-dev')).ok,
        10_000,
        'the revocation to reach replica B',
      );
      // A rotation on one replica: the other still verifies tokens of the old key and, once reloaded, the new key's.
      await keysB.rotate(3600_000);
      await keysA.load();
      const next = await tokensA.issue({ agent: 'agent-x', targets: ['kube-dev'], issuedBy: 'ops' });
      assert.equal((await tokensB.verify(next.token, 'kube-dev')).ok, true);
    } finally {
      await tokensA.stop();
      await tokensB.stop();
    }
  });

  test('a master failing over while two replicas write loses no acknowledged policy version or approval', async () => {
    const a = await replica();
    const b = await replica();
    const stores = [new PolicyStore(a.redis), new PolicyStore(b.redis)];
    const approvals = [
      createApprovals({ redis: a.redis, subscriber: a.sub, audit: () => undefined }),
      createApprovals({ redis: b.redis, subscriber: b.sub, audit: () => undefined }),
    ];
    const policyMaster = await cluster.masterOf(`${POLICY_PREFIX}x`);
    const approvalsMaster = await cluster.masterOf(`${APPROVALS_PREFIX}x`);
    const acknowledged = { versions: [] as number[], requests: [] as string[] };
    let stop = false;
    const writer = async (i: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        try {
          const v = await stores[i]!.put(policy('failover', n % 2 ? 'get' : 'list'), `replica-${i}`);
          acknowledged.versions.push(v.version);
          const r = await approvals[i]!.check(sqlAction(`DELETE FROM t${i} WHERE id = ${n}`));
          acknowledged.requests.push(r.requestId);
        } catch {
          // Not acknowledged: the writer (an admin call, an agent's action) is told so and may retry.
        }
      }
    };
    const writers = [writer(0), writer(1)];
    try {
      await waitFor(() => acknowledged.versions.length >= 20, 30_000, 'writes before the failover');
      const promoted = await cluster.failover(policyMaster);
      if (approvalsMaster !== policyMaster) await cluster.failover(approvalsMaster);
      const before = acknowledged.versions.length;
      await waitFor(() => acknowledged.versions.length >= before + 20, 30_000, 'writes after the failover');
      stop = true;
      await Promise.all(writers);
      assert.equal(await promoted.role(), 'master');
      const history = await stores[0]!.history('failover');
      const stored = new Set(history.map((v) => v.version));
      for (const v of acknowledged.versions) assert.ok(stored.has(v), `acknowledged version ${v} is stored`);
      // A write whose answer was lost in the failover may be stored too; every entry still holds its own number.
      assert.deepEqual(
        history.map((v) => v.version),
        history.map((_, i) => i + 1),
      );
      assert.equal(new Set(acknowledged.versions).size, acknowledged.versions.length, 'no number given twice');
      const found = await approvals[1]!.list({ state: 'pending', limit: 1000 }, bob);
      const ids = new Set(found.map((r) => r.id));
      for (const id of acknowledged.requests) assert.ok(ids.has(id), `acknowledged approval request ${id} is stored`);
    } finally {
      stop = true;
      await Promise.all(writers);
      for (const s of approvals) await s.close();
    }
  });
});
