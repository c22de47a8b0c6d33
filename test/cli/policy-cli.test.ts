import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

// The real `portcullis` bin, as a user runs it after `npm ci`.
function portcullis(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/portcullis.js', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));

test('policy lint accepts the bundled policies', () => {
  const r = portcullis('policy', 'lint', 'examples/policies/kubernetes-guardrails.yaml');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
});

test('policy lint rejects a CEL type error as FILE:LINE:COL: message, exit 1', () => {
  const file = join(dir, 'typo.yaml');
  writeFileSync(file, 'name: typo\nrules:\n  - name: r\n    when: k8s.namespace == 1\n    action: deny\n');
  const r = portcullis('policy', 'lint', 'examples/policies/kubernetes-guardrails.yaml', file);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, `${file}:4:11: CEL: no such overload: string == int\n`);
});

test('policy eval: deny for a request matching a deny rule, default deny for one nothing allows', () => {
  const deny = portcullis(
    'policy',
    'eval',
    '--policy',
    'examples/policies/kubernetes-guardrails.yaml',
    '--request',
    'examples/requests/delete-prod-namespace.json',
  );
  assert.equal(deny.status, 0, deny.stderr);
  const d = JSON.parse(deny.stdout);
  assert.deepEqual(
    [d.action, d.reason, d.rule, d.policy],
    ['deny', 'rule', 'no-namespace-deletion', 'kubernetes-guardrails'],
  );
  const def = JSON.parse(
    portcullis(
      'policy',
      'eval',
      '--policy',
      'examples/policies/kubernetes-guardrails.yaml',
      '--request',
      'examples/requests/create-configmap-prod.json',
    ).stdout,
  );
  assert.deepEqual([def.action, def.reason, def.rule], ['deny', 'default', null]);
});

test('policy test runs the cases beside the policies and fails on a wrong expectation', () => {
  const ok = portcullis('policy', 'test', 'examples/policies');
  assert.equal(ok.status, 0, ok.stdout);
  assert.match(ok.stdout, /35 passed, 0 failed/);
  const bad = mkdtempSync(join(tmpdir(), 'portcullis-cli-test-'));
  writeFileSync(join(bad, 'p.yaml'), 'name: p\nrules:\n  - { name: reads, when: k8s.verb == "get", action: allow }\n');
  writeFileSync(
    join(bad, 'p_test.yaml'),
    'cases:\n  - name: delete is allowed (wrong)\n    request: { k8s: { verb: delete } }\n    expect: { action: allow }\n',
  );
  const r = portcullis('policy', 'test', bad);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAIL .*delete is allowed \(wrong\): action deny, expected allow/);
});

test('policy schema prints the JSON Schema editors validate against', () => {
  const schema = JSON.parse(portcullis('policy', 'schema').stdout);
  assert.equal(schema.title, 'Portcullis policy');
  assert.ok(schema.properties.rules);
});

test('policy eval classifies a request given as method and path, and refuses one the gateway would refuse', () => {
  const file = join(dir, 'as-sent.json');
  writeFileSync(file, JSON.stringify({ k8s: { method: 'DELETE', path: '/api/v1/namespaces/prod' } }));
  const d = JSON.parse(
    portcullis('policy', 'eval', '--policy', 'examples/policies/kubernetes-guardrails.yaml', '--request', file).stdout,
  );
  assert.deepEqual([d.action, d.rule], ['deny', 'no-namespace-deletion']);
  const odd = join(dir, 'odd.json');
  writeFileSync(
    odd,
    JSON.stringify({ k8s: { method: 'GET', path: '/api/v1/namespaces/prod/../kube-system/secrets' } }),
  );
  const r = portcullis('policy', 'eval', '--policy', 'examples/policies/kubernetes-guardrails.yaml', '--request', odd);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refused by the gateway/);
});
