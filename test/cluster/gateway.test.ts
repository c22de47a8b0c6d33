/**
 * Two gateway replicas on one Redis Cluster (three masters, three replicas), each behind its own Envoy stand-in, in
 * front of the Kubernetes API server stand-in: any replica serves any action of one agent's session. An approval
 * raised through one replica is granted over the other's admin API and used through it; a policy written through one
 * is enforced by the other; and a master failing over mid-run loses nothing acknowledged (the grant, the policy).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { APPROVALS_PREFIX } from '../../extproc/approvals/store.ts';
import { kubeExtProcAdapter } from '../../extproc/kube/index.ts';
import { POLICY_PREFIX } from '../../extproc/policy/store.ts';
import { DEFAULT_CONFIG } from '../../extproc/service/config.ts';
import { startEnvoyStandIn, type EnvoyStandIn } from '../envoy/stand-in.ts';
import { agentCall } from '../harness/agent-call.ts';
import { waitFor } from '../harness/ports.ts';
import { startRedisCluster, type TestRedisCluster } from '../harness/redis-cluster.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { startKubeApiServer, type KubeApiServer } from '../kube-apiserver/server.ts';

const UPSTREAM_TOKEN = 'cluster-upstream-token-93f1';
const ANCHOR_KEY_ENV = 'PORTCULLIS_TEST_CLUSTER_ANCHOR_KEY';
process.env[ANCHOR_KEY_ENV] = randomBytes(32).toString('hex');
const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: cluster-test
mode: enforce
scope:
  targets:
    kinds: [kubernetes]
rules:
  - name: read-anything
    when: k8s.verb in ["get", "list", "watch"]
    action: allow
  - name: big-scale-in-prod
    when: >-
      k8s.namespace == "prod" && k8s.resource == "deployments" && k8s.subresource == "scale"
      && has(k8s.body.spec) && has(k8s.body.spec.replicas) && int(k8s.body.spec.replicas) > 10
    action: require_approval
    message: Scaling production above 10 replicas needs an SRE.
    approval:
      group: sre
      grant: once
      ttl: 30m
`;

let cluster: TestRedisCluster;
let api: KubeApiServer;
const replicas: { svc: TestService; envoy: EnvoyStandIn }[] = [];
let agentToken = '';
let approverToken = '';
let sessionId = '';
const dir = mkdtempSync(join(tmpdir(), 'portcullis-cluster-'));

before(async () => {
  cluster = await startRedisCluster();
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  writeFileSync(join(dir, 'kube-token'), UPSTREAM_TOKEN);
  api = await startKubeApiServer({ tls: true, expectedToken: UPSTREAM_TOKEN });
  for (let i = 0; i < 2; i++) {
    const svc = await startTestService({
      redisCluster: cluster.nodes,
      adapters: [kubeExtProcAdapter()],
      config: {
        bootstrap: { policies: [join(dir, 'policy.yaml')], targets: [] },
        // Every replica signs the session's tail anchor with the same key.
        recording: { ...DEFAULT_CONFIG.recording, anchorKeyRef: `env:${ANCHOR_KEY_ENV}` },
      },
    });
    const envoy = await startEnvoyStandIn({
      processorAddress: `127.0.0.1:${svc.grpcPort}`,
      upstream: { url: api.url, ca: api.caPem },
    });
    replicas.push({ svc, envoy });
  }
  const [a, b] = replicas.map((r) => r.svc) as [TestService, TestService];
  const put = await a.call(a.adminToken, 'POST', '/v1/targets', {
    name: 'kube-dev',
    kind: 'kubernetes',
    address: api.url,
    caRef: `file:${api.caPath}`,
    recording: 'fail-closed',
    credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'kube-token')}` },
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal((await a.call(a.adminToken, 'POST', '/v1/agents', { id: 'scaler', groups: ['agents'] })).status, 201);
  await a.core.targets.refresh();
  await b.core.targets.refresh();
  const issued = await a.call(a.adminToken, 'POST', '/v1/tokens', { agent: 'scaler', targets: ['kube-dev'] });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  agentToken = issued.body.token;
  sessionId = issued.body.sessionId;
  approverToken = (await b.principal('sre-1', ['approver'], ['sre'])).token;
});

after(async () => {
  for (const { svc, envoy } of replicas) {
    await envoy.close();
    await svc.close();
  }
  await api?.close();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One call through replica `i`'s stand-in with the agent's token, as kubectl sends it. */
function call(i: number, method: string, path: string, body?: unknown): ReturnType<typeof agentCall> {
  return agentCall(replicas[i]!.envoy, agentToken, method, path, body);
}

const scale = (i: number, replicaCount: number) =>
  call(i, 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale', { spec: { replicas: replicaCount } });
const scalesOf = (n: number) =>
  api.requests.filter((q) => q.method === 'PATCH' && q.body !== undefined && JSON.parse(q.body).spec?.replicas === n);

async function pendingFor(svc: TestService, n: number): Promise<string> {
  const r = await svc.call(approverToken, 'GET', '/v1/approvals?state=pending');
  const item = (r.body.items as { id: string; summary: string }[]).find((x) => x.summary.endsWith(`replicas ${n}`));
  assert.ok(item, `a pending approval for replicas ${n}: ${JSON.stringify(r.body)}`);
  return item.id;
}

test('either replica serves the same session: a token issued through one is honoured by the other', async () => {
  for (const i of [0, 1]) {
    const r = await call(i, 'GET', '/api/v1/namespaces/prod/pods');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.kind, 'PodList');
  }
});

test('an approval raised through one replica, granted on the other, is used once through the other', async () => {
  const [a, b] = replicas.map((r) => r.svc) as [TestService, TestService];
  const refused = await scale(0, 20);
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.equal(refused.body.kind, 'Status');
  const id = await pendingFor(b, 20);
  const approved = await b.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, { reason: 'cluster test' });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const done = await scale(1, 20);
  assert.equal(done.status, 200, JSON.stringify(done.body));
  assert.equal(scalesOf(20).length, 1, 'the API server saw the approved scale once');
  const again = await scale(0, 20);
  assert.equal(again.status, 403, 'the once grant is spent, on every replica');
  assert.equal((await a.call(approverToken, 'GET', `/v1/approvals/${id}`)).body.state, 'consumed');
});

test('a policy written through one replica is enforced by the other', async () => {
  const [a, b] = replicas.map((r) => r.svc) as [TestService, TestService];
  const withSecretsDenied = POLICY.replace(
    'rules:\n',
    'rules:\n  - name: no-secrets\n    when: k8s.resource == "secrets"\n    action: deny\n',
  );
  const put = await b.call(b.adminToken, 'PUT', '/v1/policies/cluster-test', { source: withSecretsDenied });
  assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
  await waitFor(
    () => a.core.policies.current().find((p) => p.doc.name === 'cluster-test' && p.version === put.body.version),
    20_000,
    'replica A to load the new version',
  );
  const r = await call(0, 'GET', '/api/v1/namespaces/prod/secrets');
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.equal(r.body.reason, 'Forbidden');
});

test('a master failing over mid-run loses nothing acknowledged: the grant, the policy', async () => {
  const [a, b] = replicas.map((r) => r.svc) as [TestService, TestService];
  // A grant approved before the failover, to be used after it.
  assert.equal((await scale(0, 30)).status, 403);
  const id = await pendingFor(a, 30);
  assert.equal((await a.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, {})).status, 200);
  const policyBefore = (await a.call(a.adminToken, 'GET', '/v1/policies/cluster-test')).body.version as number;

  let stop = false;
  const served: number[] = [];
  const traffic = (async () => {
    for (let n = 0; !stop; n++) served.push((await call(n % 2, 'GET', '/api/v1/namespaces/prod/pods')).status);
  })();
  try {
    await waitFor(() => served.length >= 10, 30_000, 'requests before the failover');
    const masters = new Set([
      await cluster.masterOf(`${APPROVALS_PREFIX}x`),
      await cluster.masterOf(`${POLICY_PREFIX}x`),
    ]);
    for (const m of masters) await cluster.failover(m);
    const at = served.length;
    await waitFor(() => served.length >= at + 10, 30_000, 'requests after the failover');
  } finally {
    stop = true;
    await traffic;
  }
  assert.deepEqual(
    served.filter((s) => s !== 200),
    [],
    'every read through either replica was served during the failover',
  );
  const used = await scale(1, 30);
  assert.equal(
    used.status,
    200,
    `the grant approved before the failover is used after it: ${JSON.stringify(used.body)}`,
  );
  assert.equal((await b.call(b.adminToken, 'GET', '/v1/policies/cluster-test')).body.version, policyBefore);
  // The session, served by both replicas across the failover, is recorded whole and verifies.
  await waitFor(
    async () => {
      const r = await b.call(b.adminToken, 'GET', `/v1/sessions/${sessionId}`);
      return r.status === 200 && r.body.events >= served.length;
    },
    20_000,
    'the session record to hold every served request',
  );
  const verify = await a.call(a.adminToken, 'GET', `/v1/sessions/${sessionId}/verify`);
  assert.equal(verify.status, 200, JSON.stringify(verify.body));
  assert.equal(verify.body.valid, true, JSON.stringify(verify.body));
});
