/**
 * The policy snapshot: compiled from policies (only rules whose outcome depends on nothing else), served by the admin
 * API to the roles that may read it, and fetched by the filter on the proxy-wasm host from the real service.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { loadPolicy } from '../../extproc/policy/load.ts';
import {
  compileSnapshot,
  parseConjunction,
  renderPluginConfiguration,
  renderSnapshot,
  REFUSALS_PATH,
  SNAPSHOT_PATH,
} from '../../extproc/snapshot/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { type Headers, ProxyWasmHost } from '../wasm-host/proxy-wasm-host.ts';

const FILTER = fileURLToPath(new URL('../../wasm-filter/build/filter.wasm', import.meta.url));
const EXAMPLE = 'examples/policies/kubernetes-guardrails.yaml';

describe('compiling the snapshot', () => {
  test('the bundled policy: exec/attach/portforward and namespace deletion, with their messages; PII entities', () => {
    const s = compileSnapshot([loadPolicy(readFileSync(EXAMPLE, 'utf8'))], ['jti-1']);
    assert.equal(s.tokenRequired, true);
    assert.deepEqual(s.revokedTokenIds, ['jti-1']);
    const exec = s.denies.filter((d) => d.pattern.endsWith('/exec'));
    assert.deepEqual(
      exec.map((d) => `${d.method} ${d.pattern}`),
      ['* /api/v1/namespaces/*/pods/*/exec', '* /api/v1/pods/*/exec'],
    );
    assert.match(exec[0].message, /Interactive access to pods/);
    assert.ok(s.denies.some((d) => d.method === 'DELETE' && d.pattern === '/api/v1/namespaces/*'));
    assert.ok(
      s.denies.some((d) => d.pattern.endsWith('/portforward')) && s.denies.some((d) => d.pattern.endsWith('/attach')),
    );
    // conditions over anything else (namespace, body, OR) stay with ext_proc
    assert.ok(!s.denies.some((d) => /token|proxy|ephemeral/.test(d.pattern)), 'the || rule is not static');
    assert.deepEqual(
      s.masking.map((m) => [m.entity, m.strategy, m.keep]),
      [0, 1, 2, 4, 5, 6, 7, 8, 9].map((e) => [e, 'partial', 4]),
    );
  });

  test('what is not static is left out', () => {
    assert.equal(parseConjunction('k8s.namespace == "prod" && k8s.resource == "pods"'), undefined);
    assert.equal(parseConjunction('k8s.resource == "pods" || k8s.verb == "get"'), undefined);
    assert.equal(parseConjunction('!(k8s.resource == "pods")'), undefined);
    const doc = (mode: string, scope = '') => `
apiVersion: portcullis.dev/v1
kind: Policy
name: p-${mode}
mode: ${mode}
scope:
  targets: { kinds: [kubernetes] }
${scope}
rules:
  - name: no-exec
    when: k8s.resource == "pods" && k8s.subresource == "exec"
    action: deny
  - name: no-get-secrets
    when: k8s.resource == "secrets" && k8s.verb == "get"
    action: deny
`;
    assert.equal(compileSnapshot([loadPolicy(doc('dry-run'))], []).denies.length, 0, 'dry-run does not enforce');
    assert.equal(
      compileSnapshot([loadPolicy(doc('enforce', '  agents: { ids: [planner-1] }'))], []).denies.length,
      0,
      'an agent-scoped rule depends on the agent',
    );
    const s = compileSnapshot([loadPolicy(doc('enforce'))], []);
    // GET is get, list or watch depending on the query: a verb-restricted GET rule is not static
    assert.deepEqual(
      s.denies.map((d) => `${d.method} ${d.pattern} ${d.message}`),
      [
        '* /api/v1/namespaces/*/pods/*/exec denied by policy p-enforce rule no-exec',
        '* /api/v1/pods/*/exec denied by policy p-enforce rule no-exec',
      ],
    );
  });
});

describe('served by the admin API and fetched by the filter', () => {
  let redis: TestRedis;
  let svc: TestService;
  before(async () => {
    redis = await startRedis();
    svc = await startTestService({
      redisUrl: redis.url,
      config: { bootstrap: { policies: [EXAMPLE], targets: ['examples/targets.yaml'] } },
    });
  });
  after(async () => {
    await svc?.close();
    await redis?.close();
  });

  test('authenticated, read-only roles; the answer is the rendered snapshot', async () => {
    const auditor = await svc.principal('envoy-wasm', ['auditor']);
    const approver = await svc.principal('approver-1', ['approver']);
    assert.equal((await svc.call('not-a-token', 'GET', SNAPSHOT_PATH)).status, 401);
    assert.equal((await svc.call(approver.token, 'GET', SNAPSHOT_PATH)).status, 403);
    const r = await svc.call(auditor.token, 'GET', SNAPSHOT_PATH);
    assert.equal(r.status, 200);
    assert.match(r.body, /^portcullis-wasm-snapshot 1\nversion [0-9a-f]{16}\ntoken-required\n/);
    assert.match(r.body, /\ndeny 403 \* \/api\/v1\/namespaces\/\*\/pods\/\*\/exec Interactive access/);
    const openapi = await svc.call(svc.adminToken, 'GET', '/openapi.json');
    assert.equal(openapi.status, 200);
    assert.ok(openapi.body.paths[SNAPSHOT_PATH]?.get, 'documented from the route table');
  });

  test('a revoked token reaches the filter by refresh, and the filter refuses it without ext_proc', async () => {
    const auditor = await svc.principal('envoy-wasm-2', ['auditor']);
    assert.equal((await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'planner-9', groups: [] })).status, 201);
    const issued = await svc.call(svc.adminToken, 'POST', '/v1/tokens', {
      agent: 'planner-9',
      targets: ['kube-dev'],
      ttl: '30m',
    });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const jti = JSON.parse(Buffer.from(issued.body.token.split('.')[1], 'base64url').toString()).jti as string;

    const host = await ProxyWasmHost.start(FILTER, {
      pluginConfiguration: renderPluginConfiguration({
        cluster: 'portcullis_admin',
        authority: 'portcullis-admin',
        path: SNAPSHOT_PATH,
        token: { value: auditor.token },
        periodMs: 2000,
      }),
      clusters: ['portcullis_admin'],
      // The cluster is the service's admin listener: the callout goes there as Envoy would send it.
      dispatch: async (c) => {
        const path = c.headers.find(([k]) => k === ':path')?.[1] ?? '';
        const headers = Object.fromEntries(c.headers.filter(([k]) => !k.startsWith(':')));
        const res = await fetch(svc.adminUrl + path, { headers });
        return { kind: 'response', status: res.status, body: Buffer.from(await res.arrayBuffer()) };
      },
    });
    const get = (): Headers => [
      [':authority', 'kube'],
      [':path', '/api/v1/namespaces/dev/pods'],
      [':method', 'GET'],
      ['authorization', `Bearer ${issued.body.token}`],
    ];
    assert.equal(host.newStream().onRequestHeaders(get(), true).localReply, undefined, 'no snapshot yet: continue');
    host.tick();
    await host.settle();
    assert.equal(host.metric('portcullis.snapshot_refreshed'), 1n);
    assert.equal(host.newStream().onRequestHeaders(get(), true).localReply, undefined, 'valid token passes');

    assert.equal((await svc.call(svc.adminToken, 'DELETE', `/v1/tokens/${jti}`)).status, 200);
    host.tick();
    await host.settle();
    const r = host.newStream().onRequestHeaders(get(), true);
    assert.equal(r.localReply?.status, 401);
    assert.equal(JSON.parse(r.localReply!.body.toString()).message, `the agent token ${jti} has been revoked`);
  });

  test("a refusal report is recorded in the agent's session as ext_proc records it, under the filter's request id", async () => {
    const auditor = await svc.principal('envoy-wasm-3', ['auditor']);
    const approver = await svc.principal('approver-3', ['approver']);
    assert.equal((await svc.call(svc.adminToken, 'POST', '/v1/agents', { id: 'planner-7', groups: [] })).status, 201);
    const issued = await svc.call(svc.adminToken, 'POST', '/v1/tokens', {
      agent: 'planner-7',
      targets: ['kube-dev'],
      ttl: '30m',
    });
    const requestId = '3f0c9a52-6d1e-4b8a-9c47-0a1b2c3d4e5f';
    const report = {
      target: 'kube-dev',
      requestId,
      method: 'POST',
      path: '/api/v1/namespaces/prod/pods/web-1/exec?command=ls&stdout=true',
      token: issued.body.token,
      status: 403,
      message: 'Interactive access to pods (exec, attach, port-forward) is not allowed for agents.',
    };
    assert.equal((await svc.call('nope', 'POST', REFUSALS_PATH, report)).status, 401);
    assert.equal((await svc.call(approver.token, 'POST', REFUSALS_PATH, report)).status, 403);
    assert.equal((await svc.call(auditor.token, 'POST', REFUSALS_PATH, { ...report, requestId: 'x' })).status, 400);
    const forged = await svc.call(auditor.token, 'POST', REFUSALS_PATH, { ...report, token: 'a.b.c' });
    assert.deepEqual([forged.status, forged.body.recorded], [200, false], 'no valid agent token: nothing recorded');
    const r = await svc.call(auditor.token, 'POST', REFUSALS_PATH, report);
    assert.equal(r.status, 202, JSON.stringify(r.body));

    await svc.core.recorder.flush();
    const events = (await svc.call(svc.adminToken, 'GET', `/v1/sessions/${issued.body.sessionId}/events?limit=1000`))
      .body.events as { type: string; requestId?: string; data: any }[];
    const mine = events.filter((e) => e.requestId === `req_${requestId}`);
    assert.deepEqual(
      mine.map((e) => e.type),
      ['action', 'decision', 'output'],
    );
    assert.equal(mine[0].data.k8s.subresource, 'exec');
    assert.deepEqual([mine[1].data.action, mine[1].data.rule], ['deny', 'no-exec']);
    assert.deepEqual([mine[2].data.status, mine[2].data.refusedBy], [403, 'envoy-wasm-filter']);
  });
});

test('a snapshot always fits the filter: revoked ids and deny rules beyond its limits are left to ext_proc', async () => {
  const rules = Array.from(
    { length: 300 },
    (_, i) => `  - name: no-exec-${i}
    when: k8s.resource == "pods" && k8s.subresource == "exec"
    action: deny
    message: ${'x'.repeat(400)} ${i}`,
  ).join('\n');
  const policy = loadPolicy(`apiVersion: portcullis.dev/v1
kind: Policy
name: many
mode: enforce
scope:
  targets: { kinds: [kubernetes] }
rules:
${rules}
`);
  const revoked = Array.from({ length: 5000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const s = compileSnapshot([policy], revoked);
  const text = renderSnapshot(s);
  assert.ok(Buffer.byteLength(text) <= 64 * 1024, `${Buffer.byteLength(text)} bytes`);
  assert.ok(s.revokedTokenIds.length > 0 && s.revokedTokenIds.length < 5000);
  assert.ok(s.denies.length > 0 && s.denies.length < 600);
  assert.equal(s.denies[0].message, `${'x'.repeat(400)} 0`, 'the first rules in evaluation order are kept');
  const host = await ProxyWasmHost.start(FILTER, { pluginConfiguration: text }); // refused whole if over a limit
  const last = s.revokedTokenIds.at(-1) ?? '';
  const b64u = (x: string) => Buffer.from(x).toString('base64url');
  const token = `${b64u('{"alg":"EdDSA"}')}.${b64u(`{"jti":"${last}"}`)}.${b64u('sig')}`;
  const r = host.newStream().onRequestHeaders(
    [
      [':path', '/api'],
      [':method', 'GET'],
      ['authorization', `Bearer ${token}`],
    ],
    true,
  );
  assert.equal(r.localReply?.status, 401, 'the last revoked id is enforced');
});
