/**
 * The Kubernetes listener's access log joins recordings: its request_id, session_id and agent fields read the dynamic
 * metadata the processor returns, in a namespace the ext_proc filter accepts. Played end to end: the real kubectl
 * through the stand-in, which keeps the metadata Envoy would keep and fills the bootstrap's json_format
 * (test/envoy/access-log.ts); the log line of the request carries the request id and session its recording carries.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';

let stack: KubeStack;

before(async () => {
  stack = await startKubeStack({
    policies: ['examples/policies/kubernetes-guardrails.yaml'],
    agent: 'planner-1',
    vaultToken: 'vault-kube-sa-token-access-log',
    credential: 'static-token',
    // Not a test of Envoy's timers: a loaded machine must not turn the request into a message timeout.
    envoy: { messageTimeoutMs: 60_000 },
  });
});

after(async () => {
  await stack?.close();
});

test("a kubectl request's access log line carries the request id, session and agent of its recording", async () => {
  const r = await stack.kubectl.run(['get', 'pods', '-n', 'dev', '-o', 'name']);
  assert.equal(r.code, 0, r.stderr);
  const line = stack.envoy.accessLog.find(
    (e) => e.method === 'GET' && String(e.path).startsWith('/api/v1/namespaces/dev/pods'),
  );
  assert.ok(line, JSON.stringify(stack.envoy.accessLog));
  assert.equal(line.status, 200);
  assert.match(String(line.request_id), /^req_/);
  assert.equal(line.session_id, stack.sessionId);
  assert.equal(line.agent, 'planner-1');

  await stack.svc.core.recorder.flush();
  const auditor = await stack.svc.principal('auditor-access-log', ['auditor']);
  const events = (await stack.svc.call(auditor.token, 'GET', `/v1/sessions/${stack.sessionId}/events?limit=10000`)).body
    .events as { type: string; requestId?: string; data: { action?: string; path?: string } }[];
  const decision = events.find((e) => e.type === 'decision' && e.requestId === line.request_id);
  assert.ok(decision, `no decision recorded under ${line.request_id}`);
  assert.equal(decision.data.action, 'allow');
});

test('a request the processor refuses is logged with its status and request id', async () => {
  const r = await stack.kubectl.run(['delete', 'namespace', 'prod']);
  assert.notEqual(r.code, 0);
  const line = stack.envoy.accessLog.find((e) => e.method === 'DELETE' && e.path === '/api/v1/namespaces/prod');
  assert.ok(line, JSON.stringify(stack.envoy.accessLog));
  assert.equal(line.status, 403);
  assert.match(String(line.request_id), /^req_/);
});
