/**
 * Issue 19, end to end: real kubectl → the Envoy stand-in with the proxy-wasm filter before ext_proc (its snapshot
 * fetched from the service's admin API) → the Portcullis service → the kube-apiserver stand-in, real Redis.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { kubectlEnv } from '../kube-apiserver/kubectl.ts';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';

let stack: KubeStack;

before(async () => {
  stack = await startKubeStack({
    policies: ['examples/policies/kubernetes-guardrails.yaml'],
    agent: 'planner-1',
    vaultToken: 'vault-kube-sa-token-51d0',
    credential: 'static-token',
    api: { logFollowLines: 8, logIntervalMs: 60 },
    wasm: true,
  });
});

after(() => stack?.close());

const grpcStreams = () => stack.envoy.counters.get('streams_started');
const wasmMetric = (name: string) => stack.envoy.wasm?.host.metric(name) ?? 0n;

test('the filter loaded the snapshot from the admin API', () => {
  assert.equal(wasmMetric('portcullis.snapshot_refreshed') >= 1n, true);
});

test('kubectl get pods goes through the filter and ext_proc', async () => {
  const before = grpcStreams();
  const r = await stack.kubectl.run(['get', 'pods', '-n', 'dev']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /api-7c9d8f6b5-x2x4k/);
  assert.ok(grpcStreams() > before, 'ext_proc decided');
});

/** Local replies of the filter (ext_proc's own carry `portcullis_<refusal detail>`, never `portcullis_wasm_…`). */
const filterDenials = () =>
  stack.envoy.counters.localReplies.filter((l) => l.status === 403 && l.details === 'portcullis_wasm_policy_deny')
    .length;

test('kubectl exec is refused by the filter: Forbidden with the policy message, no upstream call', async () => {
  const before = filterDenials();
  const denied = wasmMetric('portcullis.denied_locally');
  const r = await stack.kubectl.run(['exec', 'web-5d8f7c6b9d-abcde', '-n', 'prod', '--', 'ls']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Interactive access to pods \(exec, attach, port-forward\) is not allowed for agents\./);
  // kubectl tries WebSocket, then falls back to SPDY: both upgrades are refused by the filter
  assert.ok(filterDenials() > before, 'the filter answered, not ext_proc');
  assert.ok(wasmMetric('portcullis.denied_locally') > denied);
  assert.ok(!stack.api.requests.some((q) => q.path.includes('/exec')));
});

test('kubectl delete namespace is refused by the filter with the policy message', async () => {
  const before = filterDenials();
  const r = await stack.kubectl.run(['delete', 'namespace', 'prod']);
  assert.match(r.stderr, /Error from server \(Forbidden\): Deleting namespaces is not allowed for agents\./);
  assert.equal(filterDenials(), before + 1, 'the filter answered, not ext_proc');
  assert.ok(!stack.api.requests.some((q) => q.method === 'DELETE'));
});

test('kubectl logs -f of a pod printing card numbers shows them masked, streamed through the filter', async () => {
  const masked = wasmMetric('portcullis.bytes_masked');
  let chunks = 0;
  const r = await stack.kubectl.run(['logs', '-f', 'web-5d8f7c6b9d-abcde', '-n', 'prod'], {
    onStdout: () => {
      chunks++;
    },
    timeoutMs: 15_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 8);
  assert.ok(chunks > 1, 'streamed, not buffered');
  assert.ok(!r.stdout.includes('4111111111111111'), 'card number masked');
  assert.match(r.stdout, /card=\*+1111/);
  assert.ok(wasmMetric('portcullis.bytes_masked') > masked, 'the filter masked the stream chunk by chunk');
});

test('a bearer value that is no agent token gets the 401 Status from the filter', async () => {
  const anonymous = kubectlEnv(stack.envoy.url, stack.envoy.caPem, 'not-a-jwt');
  try {
    const before = grpcStreams();
    const r = await anonymous.run(['get', '--raw', '/api/v1/namespaces/dev/pods']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the bearer token is not a Portcullis agent token/);
    assert.equal(grpcStreams(), before);
  } finally {
    anonymous.cleanup();
  }
});

test('ext_proc and the recording use the request id the filter set', async () => {
  const res = await new Promise<{ status: number; id: string }>((resolve, reject) => {
    const req = https.get(
      `${stack.envoy.url}/logs/`,
      {
        ca: stack.envoy.caPem,
        headers: { authorization: `Bearer ${stack.agentToken}`, 'x-request-id': 'agent-chosen' },
      },
      (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, id: String(r.headers['x-portcullis-request-id']) }));
      },
    );
    req.on('error', reject);
  });
  assert.equal(res.status, 403, 'ext_proc refused it (a non-resource path the policy does not allow)');
  const filterId = stack.envoy.wasm!.requestIds.at(-1);
  assert.match(filterId ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(res.id, `req_${filterId}`);
  await stack.svc.core.recorder.flush();
  const auditor = await stack.svc.principal('auditor-rid', ['auditor']);
  const r = await stack.svc.call(auditor.token, 'GET', `/v1/sessions/${stack.sessionId}/events?limit=10000`);
  const events = r.body.events as { type: string; requestId?: string; data: { action?: string } }[];
  assert.ok(events.some((e) => e.type === 'decision' && e.requestId === res.id && e.data.action === 'deny'));
});
