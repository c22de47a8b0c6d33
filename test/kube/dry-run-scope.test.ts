/**
 * Which writes pay for a dry run, and protobuf bodies under a rule that reads k8s.body (issue 15): under a policy
 * that never reads k8s.object no write is dry-run; a protobuf write cannot be given to a body rule and is refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from './kube-stack.ts';

let stack: KubeStack;

before(async () => {
  stack = await startKubeStack({
    policies: ['test/kube/fixtures/body-rule-policy.yaml'],
    agent: 'planner-scope',
    vaultToken: 'vault-kube-scope-token-77aa',
    credential: 'static-token',
  });
});

after(() => stack?.close());

test('no rule reads k8s.object: a write goes upstream once, without a dry run', async () => {
  const from = stack.api.requests.length;
  const r = await stack.kubectl.run(['label', 'configmap', 'app-config', '-n', 'dev', 'team=scope']);
  assert.equal(r.code, 0, r.stderr);
  const writes = stack.api.requests.slice(from).filter((q) => q.method === 'PATCH');
  assert.equal(writes.length, 1);
  assert.ok(!writes[0].path.includes('dryRun'), writes[0].path);
});

test('a protobuf write is refused (415) when a rule reads k8s.body, and never reaches the API server', async () => {
  const from = stack.api.requests.length;
  const r = await stack.kubectl.run(['create', 'configmap', 'pb', '-n', 'dev', '--from-literal=a=b']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot be read by this target's rules on k8s\.body/);
  assert.ok(stack.api.requests.slice(from).every((q) => q.method !== 'POST'));
});
