/**
 * A hung Redis (SIGSTOP: connections stay open, nothing is answered) through the Envoy stand-in and the Kubernetes
 * path: what needs Redis is refused within its bound in the protocol's words, what does not keeps being served, and
 * everything comes back when Redis resumes. An approval check is refused with a 503 `Status` after
 * `approvals.checkTimeout`; admin calls answer 503 `unavailable` after `redis.commandTimeout` instead of hanging.
 *
 * The stand-in's message_timeout is raised to 10 s here: what is tested is the gateway's own bound, and a refusal from
 * the gateway (503) is told apart from Envoy giving up on it (504). The recording bound is left wide (the harness's
 * 30 s), so that reads show what does not need Redis; the recording's own bound is tested in test/recording/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { agentCall } from '../harness/agent-call.ts';
import { waitFor } from '../harness/ports.ts';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';

const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: hung-test
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
    approval:
      group: sre
      grant: once
      ttl: 30m
`;

let stack: KubeStack;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-hung-'));

before(async () => {
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  stack = await startKubeStack({
    policies: [join(dir, 'policy.yaml')],
    agent: 'scaler',
    vaultToken: 'hung-upstream-token-77aa',
    credential: 'static-token',
    redis: { appendonly: false },
    config: { redis: { cluster: null, commandTimeout: '1s' }, approvals: { webhooks: [], checkTimeout: '300ms' } },
    envoy: { messageTimeoutMs: 10_000 },
  });
});

after(async () => {
  stack?.redis.resume();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

function call(method: string, path: string, body?: unknown): ReturnType<typeof agentCall> {
  return agentCall(stack.envoy, stack.agentToken, method, path, body);
}

const scale = () => call('PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale', { spec: { replicas: 20 } });
const scalesUpstream = () => stack.api.requests.filter((q) => q.method === 'PATCH').length;

test('a hung Redis: approval checks answer 503 within their bound, reads go on, admin calls answer 503; all back on resume', async () => {
  const { svc, redis } = stack;
  assert.equal((await call('GET', '/api/v1/namespaces/prod/pods')).status, 200);
  const before = await scale();
  assert.equal(before.status, 403, JSON.stringify(before.body));

  redis.pause();
  try {
    const refused = await scale();
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.kind, 'Status');
    assert.equal(refused.body.reason, 'ServiceUnavailable');
    assert.match(refused.body.message, /approval store is unavailable/);
    assert.equal(scalesUpstream(), 0, 'nothing went upstream unchecked');
    // Reads need nothing from Redis (policies, tokens and agents are in memory; the recorder buffers).
    assert.equal((await call('GET', '/api/v1/namespaces/prod/pods')).status, 200);
    const admin = await svc.call(svc.adminToken, 'GET', '/v1/approvals?state=pending');
    assert.equal(admin.status, 503, JSON.stringify(admin.body));
    assert.equal(admin.body.code, 'unavailable');
  } finally {
    redis.resume();
  }

  // Redis answers the commands queued while it was stopped first; on a loaded machine a check right after the resume
  // may still miss its deadline (503 again), so the retry is repeated until Redis has caught up.
  const again = await waitFor<Awaited<ReturnType<typeof scale>> | null>(
    async () => {
      const r = await scale();
      return r.status === 503 ? null : r;
    },
    30_000,
    'an answer other than 503 after the resume',
  ).then((r) => r!);
  assert.equal(again.status, 403, `an approval is asked for again: ${JSON.stringify(again.body)}`);
  assert.equal(again.body.reason, 'Forbidden');
  const listed = await svc.call(svc.adminToken, 'GET', '/v1/approvals?state=pending');
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(listed.body.items.length, 1, 'the retries share one pending request');
  assert.equal(scalesUpstream(), 0);
});
