/**
 * Issue 6, end to end: the real kubectl → the Envoy stand-in (TLS, the proxy-wasm filter and the HTTP ext_proc filter
 * as envoy/portcullis.yaml configures them) → the Portcullis service with the Kubernetes adapter → the kube-apiserver stand-in (TLS), with the
 * bundled policy examples/policies/kubernetes-guardrails.yaml and real Redis. Everything starts once per file.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from './kube-stack.ts';
import https from 'node:https';
import { Redis } from 'ioredis';
import { AgentTokens } from '../../extproc/identity/agent-tokens.ts';
import { Registry } from '../../extproc/identity/registry.ts';
import { SigningKeys } from '../../extproc/identity/signing-keys.ts';
import type { EnvoyStandIn } from '../envoy/stand-in.ts';
import type { TestRedis } from '../harness/redis.ts';
import type { TestService } from '../harness/service.ts';
import { kubectlEnv, type KubectlEnv } from '../kube-apiserver/kubectl.ts';
import { DB_SECRET_PLAIN } from '../kube-apiserver/objects.ts';
import type { KubeApiServer } from '../kube-apiserver/server.ts';

const VAULT_TOKEN = 'vault-kube-sa-token-9c1e77d2';
let redis: TestRedis;
let api: KubeApiServer;
let svc: TestService;
let envoy: EnvoyStandIn;
let kubectl: KubectlEnv;
let agentToken = '';
let sessionId = '';
let approverToken = '';
let auditorToken = '';
let stack: KubeStack;

before(async () => {
  stack = await startKubeStack({
    policies: ['examples/policies/kubernetes-guardrails.yaml'],
    agent: 'planner-1',
    vaultToken: VAULT_TOKEN,
    credential: 'token-request',
    api: { logFollowLines: 12, logIntervalMs: 60 },
    // The proxy-wasm filter before ext_proc, as envoy/portcullis.yaml chains them (docs/wasm-filter.md).
    wasm: true,
  });
  ({ redis, api, svc, envoy, kubectl, agentToken, sessionId } = stack);
  approverToken = (await svc.principal('sre-approver', ['approver'], ['sre'])).token;
  auditorToken = (await svc.principal('auditor-1', ['auditor'])).token;
});

after(() => stack?.close());

test('kubectl get pods -n dev works', async () => {
  const r = await kubectl.run(['get', 'pods', '-n', 'dev']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /api-7c9d8f6b5-x2x4k/);
  assert.match(r.stdout, /worker-0/);
});

test('kubectl delete namespace prod is refused with the policy message', async () => {
  const r = await kubectl.run(['delete', 'namespace', 'prod']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Error from server \(Forbidden\): Deleting namespaces is not allowed for agents\./);
  assert.ok(!api.requests.some((q) => q.method === 'DELETE'), 'the API server never saw the delete');
});

test('kubectl get secret -o yaml shows masked values only', async () => {
  const r = await kubectl.run(['get', 'secret', 'db', '-n', 'prod', '-o', 'yaml']);
  assert.equal(r.code, 0, r.stderr);
  const data = /data:\n((?: {2}\S.*\n)+)/.exec(r.stdout);
  assert.ok(data, r.stdout);
  const values: Record<string, string> = Object.fromEntries(
    data[1]
      .trim()
      .split('\n')
      .map((l) => l.trim().split(': ')),
  );
  assert.deepEqual(Object.keys(values).sort(), Object.keys(DB_SECRET_PLAIN).sort());
  for (const [k, v] of Object.entries(values)) {
    const decoded = Buffer.from(v, 'base64').toString('utf8');
    assert.notEqual(decoded, DB_SECRET_PLAIN[k as keyof typeof DB_SECRET_PLAIN]);
    assert.match(decoded, /REDACTED/);
  }
  for (const plain of Object.values(DB_SECRET_PLAIN)) {
    if (plain.length > 3)
      assert.ok(!r.stdout.includes(plain) && !r.stdout.includes(Buffer.from(plain).toString('base64')), plain);
  }
});

test('kubectl logs -f streams, with PII masked chunk by chunk', async () => {
  let chunks = 0;
  const r = await kubectl.run(['logs', '-f', 'web-5d8f7c6b9d-abcde', '-n', 'prod'], {
    onStdout: () => {
      chunks++;
    },
    timeoutMs: 15_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 12);
  assert.ok(chunks > 1, `the log arrived in ${chunks} piece(s): it was buffered, not streamed`);
  assert.ok(!r.stdout.includes('4111111111111111'), 'card number masked');
  assert.ok(!r.stdout.includes('jane.doe@example.com'), 'email masked');
  assert.match(r.stdout, /checkout completed order=\d+ .* card=\*+1111/);
});

test('kubectl exec is refused by the default policy', async () => {
  const r = await kubectl.run(['exec', 'web-5d8f7c6b9d-abcde', '-n', 'prod', '--', 'ls']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Interactive access to pods \(exec, attach, port-forward\) is not allowed for agents\./);
  assert.ok(!api.requests.some((q) => q.path.includes('/exec')), 'the API server never saw the exec');
});

test('scaling prod above 10 needs an approval; approved once it runs once', async () => {
  const args = ['scale', 'deployment', 'web', '-n', 'prod', '--replicas=20'];
  const first = await kubectl.run(args);
  assert.notEqual(first.code, 0);
  assert.match(first.stderr, /Forbidden/);
  const id = /approval required .* request (\S+) is waiting for approver group "sre"/.exec(first.stderr)?.[1];
  assert.ok(id, first.stderr);

  const approved = await svc.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, { reason: 'load test' });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.equal(approved.body.state, 'approved');

  const second = await kubectl.run(args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /deployment.apps\/web scaled/);
  const third = await kubectl.run(args);
  assert.notEqual(third.code, 0);
  assert.match(third.stderr, /approval required/);
  // The rule reads k8s.object: each attempt is dry-run first (dryRun=All); only the approved one was written.
  const scales = api.requests.filter(
    (q) => q.method === 'PATCH' && q.path.includes('/deployments/web/scale') && !q.path.includes('dryRun=All'),
  );
  assert.equal(scales.length, 1, 'the API server saw exactly the approved scale');
});

test('the API server sees only the injected upstream token, never the agent token', async () => {
  assert.ok(api.seenAuthorizations.length > 0);
  for (const a of api.seenAuthorizations) {
    assert.ok(!a.includes(agentToken), 'agent token reached the upstream');
    const bearer = a.replace(/^Bearer /, '');
    assert.ok(
      bearer === VAULT_TOKEN || api.mintedTokens.includes(bearer),
      `unexpected upstream credential ${a.slice(0, 20)}…`,
    );
  }
  // The long-lived vault credential is used only for TokenRequest; everything else runs on a minted token.
  const withVault = api.requests.filter((q) => q.authorization === `Bearer ${VAULT_TOKEN}`);
  assert.ok(withVault.every((q) => q.path.endsWith('/serviceaccounts/portcullis-agent/token')));
  assert.equal(api.mintedTokens.length, 1, 'one minted token, reused');
});

test('an expired agent token gets a 401 that says so', async () => {
  // Issued by a clock two hours behind: already expired for the gateway, without waiting.
  const conn = new Redis(redis.url);
  try {
    const keys = new SigningKeys(conn);
    await keys.load();
    const past = new AgentTokens(
      conn,
      conn,
      keys,
      new Registry(conn),
      { defaultTtlSeconds: 60, maxTtlSeconds: 3600 },
      undefined,
      () => Date.now() - 2 * 3600_000,
    );
    const { token } = await past.issue({ agent: 'planner-1', targets: ['kube-dev'], issuedBy: 'test' });
    const expired = kubectlEnv(envoy.url, envoy.caPem, token);
    try {
      // kubectl prints a 401's Status message for plain requests (discovery failures get a generic text).
      const r = await expired.run(['get', '--raw', '/api/v1/namespaces/dev/pods']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /the agent token has expired/);
    } finally {
      expired.cleanup();
    }
    // kubectl without any credential prompts for a password instead of sending the request: ask directly.
    const none = await getJson(`${envoy.url}/api/v1/namespaces/dev/pods`, envoy.caPem);
    assert.equal(none.status, 401);
    assert.equal(none.body.kind, 'Status');
    assert.equal(none.body.reason, 'Unauthorized');
    assert.match(none.body.message, /no Portcullis agent token was presented/);
  } finally {
    conn.disconnect();
  }
});

test('the whole run is in the recording, and no secret value is anywhere in Redis', async () => {
  await envoy.wasm?.host.settle(); // the filter's refusal reports (exec, namespace deletion) have been answered
  await svc.core.recorder.flush();
  const r = await svc.call(auditorToken, 'GET', `/v1/sessions/${sessionId}/events?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const events = r.body.events as { type: string; requestId?: string; data: any }[];
  assert.equal(events[0].type, 'session.start');
  const actions = events.filter((e) => e.type === 'action');
  const decisions = events.filter((e) => e.type === 'decision');
  const outputs = events.filter((e) => e.type === 'output');
  assert.ok(actions.some((e) => e.data.k8s?.resource === 'namespaces' && e.data.k8s.verb === 'delete'));
  assert.ok(decisions.some((e) => e.data.action === 'deny' && e.data.rule === 'no-namespace-deletion'));
  assert.ok(decisions.some((e) => e.data.action === 'deny' && e.data.rule === 'no-exec'));
  // An approved action went upstream: recorded as allowed, with the policy's own verdict beside it.
  assert.ok(
    decisions.some(
      (e) =>
        e.data.action === 'allow'
        && e.data.policyAction === 'require_approval'
        && e.data.approval?.status === 'granted',
    ),
  );
  assert.ok(events.some((e) => e.type === 'approval.consumed'));
  assert.ok(
    outputs.some((e) => e.data.masked?.length > 0),
    'masking summarised in outputs',
  );
  // Every request has its action, exactly one decision and one output under one request id.
  for (const a of actions) {
    const same = events.filter((e) => e.requestId === a.requestId).map((e) => e.type);
    assert.equal(same.filter((t) => t === 'decision').length, 1, `${a.data.path}: ${same.join(',')}`);
    assert.equal(same.filter((t) => t === 'output').length, 1, `${a.data.path}: ${same.join(',')}`);
  }

  const secrets = [
    VAULT_TOKEN,
    agentToken,
    ...api.mintedTokens,
    ...Object.values(DB_SECRET_PLAIN).filter((v) => v.length > 3),
    ...Object.values(DB_SECRET_PLAIN).map((v) => Buffer.from(v).toString('base64')),
    'jane.doe@example.com',
    '4111111111111111',
  ];
  const conn = new Redis(redis.url);
  try {
    const dump: string[] = [];
    for (const key of await conn.keys('*')) {
      const type = await conn.type(key);
      if (type === 'string') dump.push(String(await conn.get(key)));
      else if (type === 'hash') dump.push(JSON.stringify(await conn.hgetall(key)));
      else if (type === 'stream') dump.push(JSON.stringify(await conn.xrange(key, '-', '+')));
      else if (type === 'zset') dump.push(JSON.stringify(await conn.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'list') dump.push(JSON.stringify(await conn.lrange(key, 0, -1)));
      else if (type === 'set') dump.push(JSON.stringify(await conn.smembers(key)));
    }
    const all = dump.join('\n');
    for (const s of secrets) assert.ok(!all.includes(s), `a secret value is stored in Redis: ${s.slice(0, 6)}…`);
  } finally {
    conn.disconnect();
  }
  const logs = svc.logs();
  for (const s of secrets) assert.ok(!logs.includes(s), `a secret value is in the service log: ${s.slice(0, 6)}…`);
});

function getJson(url: string, ca: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, headers: { accept: 'application/json' } }, (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => {
            text += c;
          })
          .on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}
