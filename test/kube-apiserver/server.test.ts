/** The API-server stand-in against the real kubectl (v1.32), directly, with TLS and a bearer token. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { startKubeApiServer, type KubeApiServer } from './server.ts';
import { kubectlEnv, type KubectlEnv } from './kubectl.ts';
import { DB_SECRET_PLAIN } from './objects.ts';

const TOKEN = 'upstream-token-0123456789';
const TR_TOKEN = 'gateway-long-lived-credential';
let server: KubeApiServer;
let kubectl: KubectlEnv;

before(async () => {
  server = await startKubeApiServer({
    expectedToken: TOKEN,
    tokenRequestToken: TR_TOKEN,
    logFollowLines: 4,
    logIntervalMs: 50,
  });
  kubectl = kubectlEnv(server.url, server.caPem, TOKEN);
});
after(async () => {
  kubectl.cleanup();
  await server.close();
});

const k = (...args: string[]) => kubectl.run(['--request-timeout=10s', ...args], { timeoutMs: 20_000 });

/** A raw HTTPS call to the stand-in, trusting its CA. */
function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method, headers, ca: server.caPem }, (res) => {
      let text = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => {
          text += c;
        })
        .on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('kubectl get pods -n dev prints the Table the server sent', async () => {
  const r = await k('get', 'pods', '-n', 'dev');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
  assert.match(r.stdout, /worker-0\s+1\/1\s+Running\s+0/);
  const list = server.requests.find((x) => x.path.startsWith('/api/v1/namespaces/dev/pods?'));
  assert.match(list?.accept ?? '', /as=Table;v=v1;g=meta\.k8s\.io/);
});

test('kubectl get secret db -n prod -o yaml shows the base64 data', async () => {
  const r = await k('get', 'secret', 'db', '-n', 'prod', '-o', 'yaml');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(`card-number: ${Buffer.from(DB_SECRET_PLAIN['card-number']).toString('base64')}`));
  assert.match(r.stdout, /kind: Secret/);
});

test('kubectl scale deployment web --replicas=3 PATCHes the scale subresource with a merge patch', async () => {
  const r = await k('scale', 'deployment', 'web', '-n', 'prod', '--replicas=3');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment.apps\/web scaled/);
  const patch = server.requests.find(
    (x) => x.method === 'PATCH' && x.path.startsWith('/apis/apps/v1/namespaces/prod/deployments/web/scale'),
  );
  assert.equal(patch?.contentType, 'application/merge-patch+json');
  assert.deepEqual(JSON.parse(patch?.body ?? ''), { spec: { replicas: 3 } });
  const got = await k('get', 'deployment', 'web', '-n', 'prod', '-o', 'jsonpath={.spec.replicas}');
  assert.equal(got.stdout, '3');
});

test('kubectl logs -f streams until the server ends the stream', async () => {
  const r = await k('logs', '-f', 'worker-0', '-n', 'dev');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[2], /card=4111111111111111/);
  assert.ok(server.requests.some((x) => x.path.includes('/pods/worker-0/log?') && x.path.includes('follow=true')));
});

test('kubectl get pods --watch receives ADDED events as Table rows', async () => {
  const seen: string[] = [];
  const r = await kubectl.run(['get', 'pods', '-n', 'dev', '--watch', '--request-timeout=2s'], {
    timeoutMs: 15_000,
    onStdout: (c) => seen.push(c),
  });
  assert.match(r.stdout, /worker-0/);
  assert.ok(
    server.requests.some((x) => x.path.startsWith('/api/v1/namespaces/dev/pods?') && x.path.includes('watch=true')),
  );
});

test('a raw watch from resourceVersion 0 streams JSON lines, then MODIFIED events', async () => {
  const events: any[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = request(
      `${server.url}/api/v1/namespaces/dev/configmaps?watch=true&resourceVersion=0`,
      { headers: { Authorization: `Bearer ${TOKEN}` }, ca: server.caPem },
      (res) => {
        let buf = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          buf += c;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            events.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
            if (events.length === 1)
              void call(
                'PATCH',
                '/api/v1/namespaces/dev/configmaps/app-config',
                { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/merge-patch+json' },
                '{"data":{"x":"1"}}',
              );
            if (events.length === 2) {
              req.destroy();
              resolve();
            }
          }
        });
      },
    );
    req.on('error', (e) => (events.length >= 2 ? resolve() : reject(e)));
    req.end();
  });
  assert.deepEqual(
    events.map((e) => e.type),
    ['ADDED', 'MODIFIED'],
  );
  assert.equal(events[1].object.data.x, '1');
});

test('kubectl get ns, then kubectl delete namespace prod, then prod is gone', async () => {
  const ns = await k('get', 'ns');
  assert.equal(ns.code, 0, ns.stderr);
  assert.match(ns.stdout, /prod\s+Active/);
  const del = await k('delete', 'namespace', 'prod');
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /namespace "prod" deleted/);
  const again = await k('get', 'ns');
  assert.doesNotMatch(again.stdout, /prod/);
  const missing = await k('get', 'secret', 'db', '-n', 'prod');
  assert.equal(missing.code, 1);
  // kubectl follows a NotFound with a GET of the namespace and reports that one when it is gone too.
  assert.match(missing.stderr, /Error from server \(NotFound\): namespaces "prod" not found/);
});

test('kubectl exec reaches the stand-in as an upgrade and gets a Status refusal', async () => {
  const r = await k('exec', '-n', 'dev', 'worker-0', '--', 'ls');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Forbidden/);
  assert.ok(server.requests.some((x) => x.path.includes('/exec?') && x.upgrade !== undefined));
});

test('a wrong or missing token gets a 401 Status, and every Authorization seen is recorded', async () => {
  const wrong = kubectlEnv(server.url, server.caPem, 'agent-token-must-not-pass');
  try {
    const r = await wrong.run(['--request-timeout=10s', 'get', 'pods', '-n', 'dev'], { timeoutMs: 20_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unauthorized|must be logged in/);
  } finally {
    wrong.cleanup();
  }
  const none = await call('GET', '/api/v1/namespaces/dev/pods');
  assert.equal(none.status, 401);
  assert.deepEqual(none.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Unauthorized',
    reason: 'Unauthorized',
    code: 401,
  });
  assert.ok(server.seenAuthorizations.includes('Bearer agent-token-must-not-pass'));
  assert.ok(server.seenAuthorizations.includes(`Bearer ${TOKEN}`));
});

test('the stand-in answers 400 when it sees an Authorization it was told must never arrive', async () => {
  const r = await call('GET', '/api/v1/namespaces/dev/pods', {
    Authorization: 'Bearer agent-xyz',
    'x-standin-forbid-authorization': 'agent-xyz',
  });
  assert.equal(r.status, 400);
  assert.equal(r.json.reason, 'BadRequest');
});

test('TokenRequest: only the long-lived credential may mint, and minted tokens are accepted', async () => {
  const path = '/api/v1/namespaces/dev/serviceaccounts/default/token';
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 600 },
  });
  const denied = await call(
    'POST',
    path,
    { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body,
  );
  assert.equal(denied.status, 403);
  assert.equal(denied.json.reason, 'Forbidden');
  const minted = await call(
    'POST',
    path,
    { Authorization: `Bearer ${TR_TOKEN}`, 'Content-Type': 'application/json' },
    body,
  );
  assert.equal(minted.status, 201);
  assert.equal(minted.json.kind, 'TokenRequest');
  assert.equal(minted.json.spec.expirationSeconds, 600);
  assert.ok(Date.parse(minted.json.status.expirationTimestamp) > Date.now());
  const fresh = kubectlEnv(server.url, server.caPem, minted.json.status.token);
  try {
    const r = await fresh.run(['--request-timeout=10s', 'get', 'pods', '-n', 'dev', '-o', 'name'], {
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pod\/worker-0/);
  } finally {
    fresh.cleanup();
  }
});

test('errors are Status objects: NotFound with details, AlreadyExists on create', async () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const nf = await call('GET', '/api/v1/namespaces/dev/pods/nope', auth);
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'pods "nope" not found',
    reason: 'NotFound',
    details: { name: 'nope', kind: 'pods' },
    code: 404,
  });
  const cm = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'made' }, data: { a: 'b' } });
  const created = await call(
    'POST',
    '/api/v1/namespaces/dev/configmaps',
    { ...auth, 'Content-Type': 'application/json' },
    cm,
  );
  assert.equal(created.status, 201);
  const dup = await call(
    'POST',
    '/api/v1/namespaces/dev/configmaps',
    { ...auth, 'Content-Type': 'application/json' },
    cm,
  );
  assert.equal(dup.status, 409);
  assert.equal(dup.json.reason, 'AlreadyExists');
  const table = await call('GET', '/api/v1/namespaces/dev/configmaps?includeObject=Object', {
    ...auth,
    Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
  });
  assert.equal(table.json.kind, 'Table');
  assert.ok(table.json.rows.some((r: any) => r.object.kind === 'ConfigMap' && r.object.metadata.name === 'made'));
});
