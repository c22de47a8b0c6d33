/**
 * One agent session served by two gateway replicas at once and then by a restarted one, end to end: real kubectl
 * through an Envoy stand-in per replica, one Redis, one anchor key. Every action is recorded once in one chain that
 * verifies, anchored; cutting its newest event or appending a forged one makes verification fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { kubeExtProcAdapter } from '../../extproc/kube/index.ts';
import { hashEvent } from '../../extproc/recording/hash-chain.ts';
import { readEvents, recordingKeys, type RecordingEvent } from '../../extproc/recording/index.ts';
import { DEFAULT_CONFIG, type ServiceConfig } from '../../extproc/service/config.ts';
import { startEnvoyStandIn, type EnvoyStandIn } from '../envoy/stand-in.ts';
import { waitFor } from '../harness/ports.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { kubectlEnv, type KubectlEnv } from '../kube-apiserver/kubectl.ts';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';

const KEY_ENV = 'PORTCULLIS_TEST_RECORDING_ANCHOR_KEY';
process.env[KEY_ENV] = randomBytes(32).toString('hex');
const POLICIES = ['examples/policies/kubernetes-guardrails.yaml'];
/** What every replica is configured with: the same store and the same anchor key. */
const CONFIG: Partial<ServiceConfig> = {
  recording: { ...DEFAULT_CONFIG.recording, anchorKeyRef: `env:${KEY_ENV}` },
  log: { level: 'warn' },
};

let stack: KubeStack;
let redis: Redis;
const closers: Array<() => unknown> = [];

before(async () => {
  stack = await startKubeStack({
    policies: POLICIES,
    agent: 'replicated-agent',
    vaultToken: 'vault-kube-token-replicas',
    credential: 'static-token',
    config: CONFIG,
  });
  redis = new Redis(stack.redis.url);
  closers.push(() => redis.disconnect());
});
after(async () => {
  for (const c of closers.reverse()) await c();
  await stack?.close();
});

/** Another replica on the same Redis, with its own Envoy stand-in and kubectl holding the agent's token. */
async function replica(): Promise<{
  svc: TestService;
  envoy: EnvoyStandIn;
  kubectl: KubectlEnv;
  stop(): Promise<void>;
}> {
  const svc = await startTestService({
    redisUrl: stack.redis.url,
    adapters: [kubeExtProcAdapter()],
    config: { ...CONFIG, bootstrap: { policies: POLICIES, targets: [] } },
  });
  await svc.core.targets.refresh();
  const envoy = await startEnvoyStandIn({
    processorAddress: `127.0.0.1:${svc.grpcPort}`,
    upstream: { url: stack.api.url, ca: stack.api.caPem },
  });
  const kubectl = kubectlEnv(envoy.url, envoy.caPem, stack.agentToken);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await svc.close();
  };
  closers.push(
    stop,
    () => envoy.close(),
    () => kubectl.cleanup(),
  );
  return { svc, envoy, kubectl, stop };
}

async function get(k: KubectlEnv): Promise<void> {
  const r = await k.run(['get', 'pods', '-n', 'dev']);
  assert.equal(r.code, 0, r.stderr);
}

async function deleteNamespace(k: KubectlEnv): Promise<void> {
  const r = await k.run(['delete', 'namespace', 'prod']);
  assert.match(r.stderr, /Forbidden/);
}

test('a session served by two replicas and across a restart is recorded whole, verifies anchored, and tampering fails', async () => {
  const first = await replica();
  const second = { svc: stack.svc, kubectl: stack.kubectl };
  let deletes = 0;
  // Both replicas serve the session, their requests overlapping.
  for (let i = 0; i < 3; i++) {
    await Promise.all([get(first.kubectl), get(second.kubectl), deleteNamespace(second.kubectl)]);
    deletes++;
  }
  await deleteNamespace(first.kubectl);
  deletes++;
  // The first replica goes away (its recorder flushed on close); a new one takes its place beside the second.
  await first.stop();
  const third = await replica();
  await Promise.all([get(third.kubectl), get(second.kubectl), deleteNamespace(third.kubectl)]);
  deletes++;
  const id = stack.sessionId;
  const events: RecordingEvent[] = [];
  // Everything the three recorders acknowledged is in the one session, once. A stream's output is recorded when its
  // ext_proc stream ends, which can follow kubectl's exit, so the count is compared once the recorders are quiet: the
  // acknowledged total read after a flush, then the stored events; a write between the two reads shows as a mismatch
  // and is read again (a lost event never matches, and the wait fails).
  await waitFor(
    async () => {
      await Promise.all([second.svc.core.recorder.flush(), third.svc.core.recorder.flush()]);
      const written = [first.svc, second.svc, third.svc].reduce((n, s) => n + s.core.recorder.stats().written, 0);
      events.length = 0;
      for await (const e of readEvents(redis, id)) events.push(e.event!);
      return events.length === written;
    },
    20_000,
    'the stored events to match what the recorders acknowledged',
  );
  assert.deepEqual(
    [first.svc, second.svc, third.svc].map((s) => s.core.recorder.stats().dropped),
    [0, 0, 0],
  );
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => i + 1),
  );
  const decisions = events.filter((e) => e.type === 'decision');
  assert.equal(decisions.length, events.filter((e) => e.type === 'action').length, 'one decision per action');
  // Every request the API server saw was an allowed, recorded action; every delete was a recorded denial. An allowed
  // request may not reach it when its stand-in gave up on the processor first (the message timeout: the decision is
  // recorded and the agent gets Envoy's 504, as with Envoy), so the allowed decisions may exceed the requests by no
  // more than the stand-ins' timeouts and failed streams (seen once on a loaded machine).
  const allowed = decisions.filter((e) => e.data.action === 'allow').length;
  const gaveUp = [first.envoy, stack.envoy, third.envoy].reduce(
    (n, e) => n + e.counters.get('message_timeouts') + e.counters.get('streams_failed'),
    0,
  );
  assert.ok(
    allowed >= stack.api.requests.length && allowed <= stack.api.requests.length + gaveUp,
    `${allowed} allowed decisions, ${stack.api.requests.length} requests upstream, ${gaveUp} given up by the stand-ins`,
  );
  assert.equal(decisions.filter((e) => e.data.action === 'deny').length, deletes);
  assert.equal(events.filter((e) => e.type === 'session.start').length, 3, 'each replica announced the session');

  const auditor = (await third.svc.principal('auditor-r', ['auditor'])).token;
  const verify = async () => (await third.svc.call(auditor, 'GET', `/v1/sessions/${id}/verify`)).body;
  assert.deepEqual(await verify(), { valid: true, events: events.length, anchored: true });
  assert.equal((await third.svc.call(auditor, 'GET', `/v1/sessions/${id}`)).body.events, events.length);

  // A well-formed forged event appended after the last one.
  const last = events[events.length - 1];
  const forged: Omit<RecordingEvent, 'hash'> & { hash?: string } = {
    ...last,
    seq: last.seq + 1,
    prevHash: last.hash,
    type: 'decision',
    data: { action: 'allow', reason: 'rule', rule: 'forged' },
  };
  forged.hash = hashEvent(forged);
  await redis.xadd(recordingKeys.events(id), `${forged.seq}-0`, 'e', JSON.stringify(forged));
  const v1 = await verify();
  assert.equal(v1.valid, false);
  assert.equal(v1.firstBadSeq, forged.seq);

  // The newest genuine event cut off (and the forgery removed).
  await redis.xdel(recordingKeys.events(id), `${forged.seq}-0`, `${last.seq}-0`);
  const v2 = await verify();
  assert.equal(v2.valid, false);
  assert.equal(v2.firstBadSeq, last.seq);
});
