/**
 * A stored policy whose current version does not compile never opens what it closed, across restarts: the service
 * enforces the newest earlier version that compiles, or, when there is none, refuses everything in the policy's scope.
 * Decided through the spine of a freshly started service on a Redis that already holds the broken versions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { EMPTY_K8S, type K8sContext } from '../../extproc/policy/context.ts';
import { compileVersions, POLICY_PREFIX, type PolicyVersion } from '../../extproc/policy/store.ts';
import { Spine, type Action, type Outcome } from '../../extproc/spine/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

const OPEN = 'name: open\nrules:\n  - { name: all, action: allow }\n';
const GUARD = `name: guard
rules:
  - name: no-namespace-delete
    when: k8s.verb == "delete" && k8s.resource == "namespaces"
    action: deny
    message: Agents may not delete namespaces.
`;
// Valid YAML and schema, but the condition names a field the context does not have: it cannot compile.
const GUARD_BROKEN = GUARD.replace('k8s.resource', 'k8s.resourceKind');
const SEALED_BROKEN = `name: sealed
scope:
  targets:
    names: [kube-sealed]
rules:
  - name: r
    when: k8s.nope == "x"
    action: allow
`;

let redis: TestRedis;
let svc: TestService;
let token = '';
const dir = mkdtempSync(join(tmpdir(), 'portcullis-broken-'));

/** Appends a version to the store's keys directly, as a buggy writer or an older replica might. */
async function writeRaw(r: Redis, name: string, source: string): Promise<number> {
  const version = (await r.llen(`${POLICY_PREFIX}${name}:versions`)) + 1;
  const entry = { name, version, author: 'raw', time: new Date().toISOString(), deleted: false, source };
  await r.rpush(`${POLICY_PREFIX}${name}:versions`, JSON.stringify(entry));
  await r.set(`${POLICY_PREFIX}${name}:current`, String(version));
  await r.sadd(`${POLICY_PREFIX}names`, name);
  return version;
}

before(async () => {
  redis = await startRedis({ appendonly: false });
  writeFileSync(join(dir, 'tok'), 'upstream-static-token-1234');
  const first = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
  const admin = first.adminToken;
  for (const source of [OPEN, GUARD]) {
    assert.equal((await first.call(admin, 'POST', '/v1/policies', { source })).status, 201);
  }
  for (const name of ['kube-dev', 'kube-sealed']) {
    const put = await first.call(admin, 'POST', '/v1/targets', {
      name,
      kind: 'kubernetes',
      address: 'https://127.0.0.1:1',
      credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'tok')}` },
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
  }
  assert.equal((await first.call(admin, 'POST', '/v1/agents', { id: 'planner-1', groups: ['agents'] })).status, 201);
  const issued = await first.call(admin, 'POST', '/v1/tokens', {
    agent: 'planner-1',
    targets: ['kube-dev', 'kube-sealed'],
  });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  token = issued.body.token;
  await first.close();

  const r = new Redis(redis.url);
  assert.equal(await writeRaw(r, 'guard', GUARD_BROKEN), 2);
  assert.equal(await writeRaw(r, 'sealed', SEALED_BROKEN), 1);
  r.disconnect();
  // The restart: nothing in memory remembers a good version.
  svc = await startTestService({ redisUrl: redis.url, config: { bootstrap: { policies: [], targets: [] } } });
});
after(async () => {
  await svc.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

function k8s(fields: Partial<K8sContext>): Action {
  return {
    section: { protocol: 'kubernetes', k8s: { ...EMPTY_K8S, isResourceRequest: true, ...fields } },
    recorded: {},
    canonical: () => JSON.stringify(fields),
    summary: () => `${fields.verb} ${fields.resource}`,
  };
}

async function decide(target: string, action: Action): Promise<Outcome> {
  const spine = new Spine(svc.core);
  const auth = await spine.authenticate({ protocol: 'kubernetes', target, token });
  assert.ok(auth.ok, JSON.stringify(auth));
  return spine.begin(auth.session, `req_${Math.random().toString(36).slice(2)}`).decide(action, {
    maxHoldMs: 0,
    credential: 'bearer-token',
  });
}

test('after a restart, a policy whose current version does not compile enforces the newest version that does', async () => {
  const outcome = await decide('kube-dev', k8s({ verb: 'delete', resource: 'namespaces', name: 'prod' }));
  assert.equal(outcome.kind, 'refuse');
  assert.equal(outcome.kind === 'refuse' && outcome.refusal.message, 'Agents may not delete namespaces.');
  assert.equal((await decide('kube-dev', k8s({ verb: 'get', resource: 'pods', namespace: 'dev' }))).kind, 'allow');
  const listed = (await svc.call(svc.adminToken, 'GET', '/v1/policies')).body as any[];
  const guard = listed.find((p) => p.name === 'guard');
  assert.equal(guard.version, 2);
  assert.deepEqual(
    {
      state: guard.degraded.state,
      currentVersion: guard.degraded.currentVersion,
      enforced: guard.degraded.enforcedVersion,
    },
    { state: 'fallback', currentVersion: 2, enforced: 1 },
  );
  assert.match(guard.degraded.error, /resourceKind/);
  assert.equal(listed.find((p) => p.name === 'open').degraded, undefined);
  assert.match(svc.logs(), /version 2 does not compile; enforcing version 1/);
});

test('a policy none of whose versions compiles refuses everything in its scope, and nothing outside it', async () => {
  for (const action of [
    k8s({ verb: 'get', resource: 'pods', namespace: 'dev' }),
    k8s({ verb: 'list', resource: 'namespaces' }),
  ]) {
    const outcome = await decide('kube-sealed', action);
    assert.equal(outcome.kind, 'refuse');
    assert.equal(
      outcome.kind === 'refuse' && outcome.refusal.message,
      'policy sealed has no version that compiles; everything in its scope is refused',
    );
  }
  // kube-dev is outside the sealed policy's scope.
  assert.equal((await decide('kube-dev', k8s({ verb: 'get', resource: 'pods', namespace: 'dev' }))).kind, 'allow');
  const sealed = (await svc.call(svc.adminToken, 'GET', '/v1/policies/sealed')).body;
  assert.equal(sealed.degraded.state, 'quarantined');
  assert.equal(sealed.degraded.enforcedVersion, null);
  assert.match(svc.logs(), /policy sealed has no version that compiles/);
});

test('a fixed version lifts the quarantine', async () => {
  const fixed = SEALED_BROKEN.replace('k8s.nope == "x"', 'k8s.verb == "get"');
  assert.equal((await svc.call(svc.adminToken, 'POST', '/v1/policies', { source: fixed })).status, 201);
  await svc.core.policies.reload();
  assert.equal((await decide('kube-sealed', k8s({ verb: 'get', resource: 'pods', namespace: 'dev' }))).kind, 'allow');
  assert.equal((await svc.call(svc.adminToken, 'GET', '/v1/policies/sealed')).body.degraded, undefined);
});

test('the walk back stops at a deletion; a scope that cannot be read selects everything', async () => {
  const version = (n: number, source: string, deleted = false): PolicyVersion => ({
    name: 'p',
    version: n,
    author: 'a',
    time: '2026-01-01T00:00:00Z',
    deleted,
    source,
  });
  const good = 'name: p\nrules:\n  - { name: all, action: allow }\n';
  const history = [version(1, good), version(2, '', true), version(3, 'name: p\nscope: [nope\n')];
  const [p] = await compileVersions(
    [history[2]],
    new Map(),
    async () => history,
    () => undefined,
  );
  assert.equal(p.degraded?.state, 'quarantined', 'version 1 belongs to the policy that was deleted');
  assert.deepEqual(p.doc.scope, {
    agents: { ids: [], groups: [], labels: {} },
    targets: { names: [], kinds: [], labels: {} },
  });
  assert.equal(p.doc.mode, 'enforce');
  const [q] = await compileVersions(
    [version(3, 'name: p\nrules: nope\n')],
    new Map(),
    // Version 2 does not compile either: the walk goes on to version 1.
    async () => [history[0], version(2, 'name: p\nrules: nope\n')],
    () => undefined,
  );
  assert.deepEqual([q.degraded?.state, q.version], ['fallback', 1]);
});
