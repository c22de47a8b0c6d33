/**
 * Issue 15, decisions on the object the API server would store: the real kubectl → the Envoy stand-in → the service →
 * the API-server stand-in, under the bundled policy, whose one rule on `k8s.object` ("prod replicas above 10 need
 * approval") must catch every way of writing the number: JSON patch, strategic merge patch, server-side apply,
 * `kubectl scale`. Also kubectl's protobuf bodies (`create configmap|secret`), decided by policy rather than by a 415.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { findResource } from '../kube-apiserver/discovery.ts';
import type { KubeApiServer } from '../kube-apiserver/server.ts';
import type { KubeObject } from '../kube-apiserver/objects.ts';
import { startKubeStack, type KubeStack } from './kube-stack.ts';

const VAULT_TOKEN = 'vault-kube-admission-token-51be';
let stack: KubeStack;
let api: KubeApiServer;

before(async () => {
  stack = await startKubeStack({
    policies: ['examples/policies/kubernetes-guardrails.yaml'],
    agent: 'planner-adm',
    vaultToken: VAULT_TOKEN,
    credential: 'static-token',
  });
  api = stack.api;
});

after(() => stack?.close());

function stored(group: string, resource: string, namespace: string, name: string): KubeObject | undefined {
  const def = findResource(group, 'v1', resource);
  assert.ok(def);
  return api.store.get(def, namespace, name);
}

function replicasOfWeb(): number {
  const web = stored('apps', 'deployments', 'prod', 'web') as (KubeObject & { spec: { replicas: number } }) | undefined;
  assert.ok(web, 'deployment prod/web exists');
  return web.spec.replicas;
}

/** The writes the API server saw since `from`: dry runs and real ones apart. */
function writesSince(from: number): { dryRuns: string[]; real: string[] } {
  const writes = api.requests.slice(from).filter((q) => q.method !== 'GET');
  return {
    dryRuns: writes.filter((q) => q.path.includes('dryRun=All')).map((q) => `${q.method} ${q.path}`),
    real: writes.filter((q) => !q.path.includes('dryRun=All')).map((q) => `${q.method} ${q.path}`),
  };
}

const RAISES: { why: string; args: string[]; stdin?: string }[] = [
  {
    why: 'a JSON patch',
    args: [
      'patch',
      'deployment',
      'web',
      '-n',
      'prod',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/replicas","value":20}]',
    ],
  },
  {
    why: 'a strategic merge patch',
    args: ['patch', 'deployment', 'web', '-n', 'prod', '-p', '{"spec":{"replicas":20}}'],
  },
  {
    why: 'a server-side apply',
    args: ['apply', '--server-side', '--validate=false', '-f', '-'],
    stdin: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 20\n',
  },
  { why: 'kubectl scale', args: ['scale', 'deployment', 'web', '-n', 'prod', '--replicas=20'] },
];

for (const { why, args, stdin } of RAISES) {
  test(`${why} raising prod replicas above 10 needs approval through the one rule on k8s.object`, async () => {
    const before = replicasOfWeb();
    const from = api.requests.length;
    const r = await stack.kubectl.run(args, stdin === undefined ? {} : { stdin });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /Forbidden/);
    assert.match(r.stderr, /approval required .* request \S+ is waiting for approver group "sre"/);
    const { dryRuns, real } = writesSince(from);
    assert.equal(dryRuns.length, 1, `one dry run of the write: ${JSON.stringify(dryRuns)}`);
    assert.deepEqual(real, [], 'nothing was written for real');
    assert.equal(replicasOfWeb(), before, 'the stored object is unchanged');
  });
}

test('the dry run carries the upstream credential and asks for JSON; the agent token never reaches the API server', () => {
  const dry = api.requests.filter((q) => q.path.includes('dryRun=All'));
  assert.ok(dry.length >= 4);
  for (const q of dry) {
    assert.equal(q.authorization, `Bearer ${VAULT_TOKEN}`);
    assert.equal(q.accept, 'application/json');
  }
  for (const a of api.seenAuthorizations) assert.ok(!a.includes(stack.agentToken));
});

test('scaling prod to 5 is allowed by the rule on the Scale object, and is written', async () => {
  const from = api.requests.length;
  const r = await stack.kubectl.run(['scale', 'deployment', 'web', '-n', 'prod', '--replicas=5']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(replicasOfWeb(), 5);
  const { dryRuns, real } = writesSince(from);
  assert.equal(dryRuns.length, 1);
  assert.equal(real.length, 1);
});

test('kubectl create configmap in dev (a protobuf body) works', async () => {
  const r = await stack.kubectl.run(['create', 'configmap', 'x', '-n', 'dev', '--from-literal=a=b']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configmap\/x created/);
  const created = stored('', 'configmaps', 'dev', 'x') as (KubeObject & { data?: Record<string, string> }) | undefined;
  assert.deepEqual(created?.data, { a: 'b' });
  const post = [...api.requests]
    .reverse()
    .find((q) => q.method === 'POST' && q.path.startsWith('/api/v1/namespaces/dev/configmaps'));
  assert.equal(post?.contentType, 'application/vnd.kubernetes.protobuf', 'kubectl sent protobuf, and it went upstream');
});

test('kubectl create secret in prod (a protobuf body) is refused by policy, not with a 415', async () => {
  const from = api.requests.length;
  const r = await stack.kubectl.run(['create', 'secret', 'generic', 's', '-n', 'prod', '--from-literal=a=b']);
  assert.notEqual(r.code, 0);
  // kubectl's create subcommands print the Status message after "failed to create secret".
  assert.match(r.stderr, /failed to create secret no policy allows this request for target kube-dev \(default deny\)/);
  assert.doesNotMatch(r.stderr, /UnsupportedMediaType|415/);
  assert.ok(
    api.requests.slice(from).every((q) => !q.path.includes('/secrets') || q.path.includes('dryRun=All')),
    'the secret was never written',
  );
  assert.equal(stored('', 'secrets', 'prod', 's'), undefined);
});

test("the API server's own refusal of the dry run reaches the agent as its Status", async () => {
  const body = JSON.stringify([{ op: 'test', path: '/spec/replicas', value: 999 }]);
  const r = await raw('PATCH', '/apis/apps/v1/namespaces/prod/deployments/web', body, 'application/json-patch+json');
  assert.equal(r.status, 422, r.body);
  const status = JSON.parse(r.body) as { kind: string; reason: string; code: number };
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'Invalid');
  assert.equal(status.code, 422);
});

function raw(
  method: string,
  path: string,
  body: string,
  contentType: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, stack.envoy.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: stack.envoy.caPem,
        headers: {
          authorization: `Bearer ${stack.agentToken}`,
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('approvals show prints the effect of the write: the dry run old → new, one changed path a line', async () => {
  const current = replicasOfWeb();
  // A number no other test asks for: a pending request for the identical action would be shown instead.
  const r = await stack.kubectl.run(['scale', 'deployment', 'web', '-n', 'prod', '--replicas=17']);
  const id = /request (\S+) is waiting for approver group "sre"/.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  const approver = await stack.svc.principal('sre-effect', ['approver'], ['sre']);
  // The service runs in this process: the CLI must run asynchronously, or it would wait on a blocked event loop.
  const show = await promisify(execFile)(process.execPath, ['bin/portcullis.js', 'approvals', 'show', id], {
    encoding: 'utf8',
    env: { ...process.env, PORTCULLIS_ADMIN_URL: stack.svc.adminUrl, PORTCULLIS_TOKEN: approver.token },
  });
  assert.match(show.stdout, new RegExp(`effect:\\n  spec\\.replicas: ${current} → 17\\n`));
  assert.doesNotMatch(show.stdout, /resourceVersion/, 'bookkeeping fields are not shown as changes');
});

test('kubectl auth can-i is answered by policy for the agent, never forwarded', async () => {
  const from = api.requests.length;
  const del = await stack.kubectl.run(['auth', 'can-i', 'delete', 'namespaces']);
  assert.equal(del.code, 1, del.stderr);
  assert.match(del.stdout, /^no\b/);
  const get = await stack.kubectl.run(['auth', 'can-i', 'get', 'pods', '-n', 'dev']);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(get.stdout.trim(), 'yes');
  const secret = await stack.kubectl.run(['auth', 'can-i', 'create', 'secrets', '-n', 'prod']);
  assert.match(secret.stdout, /^no\b/);
  const list = await stack.kubectl.run(['auth', 'can-i', '--list', '-n', 'dev']);
  assert.match(list.stdout + list.stderr, /cannot be listed/);
  assert.ok(
    api.requests.slice(from).every((q) => !q.path.includes('subjectaccessreviews') && !q.path.includes('rulesreviews')),
    'no review reached the API server',
  );
});

test('a JSON SelfSubjectAccessReview gets the same answer, with the reason', async () => {
  const review = (verb: string, resource: string, namespace: string) =>
    JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb, resource, namespace } },
    });
  const path = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
  const no = await raw('POST', path, review('delete', 'namespaces', ''), 'application/json');
  assert.equal(no.status, 201, no.body);
  const noStatus = JSON.parse(no.body).status;
  assert.equal(noStatus.allowed, false);
  assert.match(noStatus.reason, /Deleting namespaces is not allowed for agents\./);
  const yes = await raw('POST', path, review('list', 'pods', 'dev'), 'application/json');
  assert.equal(JSON.parse(yes.body).status.allowed, true);
  assert.match(JSON.parse(yes.body).status.reason, /read-anything/);
});

test('a dry run that fails for another reason than a refusal refuses the write (fail closed)', async () => {
  const from = api.requests.length;
  const before = replicasOfWeb();
  const patch = '{"metadata":{"annotations":{"standin-fail-dry-run":"1"}},"spec":{"replicas":4}}';
  const r = await stack.kubectl.run(['patch', 'deployment', 'web', '-n', 'prod', '--type=merge', '-p', patch]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /InternalError/);
  assert.match(r.stderr, /could not learn what this write would store/);
  assert.doesNotMatch(r.stderr, /stand-in was told/, "the upstream's own words are not the agent's to read here");
  const { dryRuns, real } = writesSince(from);
  assert.equal(dryRuns.length, 1);
  assert.deepEqual(real, []);
  assert.equal(replicasOfWeb(), before);
});

test('the Secrets-only masking rule (when: k8s.resource == "secrets") leaves a ConfigMap\'s data readable', async () => {
  const cm = await stack.kubectl.run(['get', 'configmap', 'app-config', '-n', 'dev', '-o', 'json']);
  assert.equal(cm.code, 0, cm.stderr);
  const data = (JSON.parse(cm.stdout) as { data: Record<string, string> }).data;
  assert.equal(data.LOG_LEVEL, 'debug', 'not redacted by the Secrets rule');
  assert.notEqual(data.SUPPORT_EMAIL, 'support@example.com', 'PII is still masked everywhere');
  const secret = await stack.kubectl.run(['get', 'secret', 'db', '-n', 'prod', '-o', 'json']);
  const values = Object.values((JSON.parse(secret.stdout) as { data: Record<string, string> }).data);
  assert.ok(values.length > 0);
  for (const v of values) assert.match(Buffer.from(v, 'base64').toString('utf8'), /REDACTED/);
});

test('an access review is recorded as the action asked about, with the answer as a review decision', async () => {
  await stack.svc.core.recorder.flush();
  const auditor = await stack.svc.principal('auditor-adm', ['auditor']);
  const r = await stack.svc.call(auditor.token, 'GET', `/v1/sessions/${stack.sessionId}/events?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const events = r.body.events as { type: string; requestId?: string; data: any }[];
  const asked = events.find(
    (e) => e.type === 'action' && e.data.review === 'SelfSubjectAccessReview' && e.data.k8s?.resource === 'namespaces',
  );
  assert.ok(asked, 'the review is recorded with the action it asks about');
  assert.equal(asked.data.k8s.verb, 'delete');
  const answer = events.find((e) => e.type === 'decision' && e.requestId === asked.requestId);
  assert.equal(answer?.data.review, true);
  assert.equal(answer?.data.action, 'deny');
  assert.equal(answer?.data.rule, 'no-namespace-deletion');
});
