/**
 * Approval hold, end to end: a `require_approval` rule with `hold: 10s` keeps the agent's call open (the processor
 * sends override_message_timeout, docs/envoy-behaviour.md B.3) through the Envoy stand-in (envoy/portcullis.yaml: message_timeout
 * 0.5 s, max_message_timeout 30 s) while an approver decides over the admin API. An approval during the hold lets the
 * same call through with no retry; no decision within the hold, or a denial, ends it with a 403 Status — never a 504.
 * Without the override the stand-in would answer 504 after 0.5 s. Its timers run on a ManualClock that each test moves
 * through the whole hold once the override has reached it, and its counters say whether a message timer fired: the
 * tests check that the override outlasts the hold, not whether a loaded machine sends it within 0.5 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from './kube-stack.ts';
import { ManualClock } from '../envoy/clock.ts';
import type { EnvoyStandIn } from '../envoy/stand-in.ts';
import { waitFor } from '../harness/ports.ts';
import type { TestService } from '../harness/service.ts';
import type { KubectlEnv } from '../kube-apiserver/kubectl.ts';
import type { KubeApiServer } from '../kube-apiserver/server.ts';

const UPSTREAM_TOKEN = 'hold-upstream-token-5e21';
const HOLD_POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: hold-test
mode: enforce
scope:
  targets:
    kinds: [kubernetes]
rules:
  - name: read-anything
    when: k8s.verb in ["get", "list", "watch"]
    action: allow
  - name: discovery
    when: "!k8s.isResourceRequest && k8s.verb == \\"get\\""
    action: allow
  - name: big-scale-in-prod
    when: >-
      k8s.namespace == "prod" && k8s.resource == "deployments" && k8s.subresource == "scale"
      && has(k8s.body.spec) && has(k8s.body.spec.replicas) && int(k8s.body.spec.replicas) > 10
    action: require_approval
    message: Scaling production above 10 replicas needs an SRE.
    approval:
      group: sre
      grant: once
      ttl: 30m
      hold: 10s
`;

let api: KubeApiServer;
let svc: TestService;
let envoy: EnvoyStandIn;
let kubectl: KubectlEnv;
let agentToken = '';
let approverToken = '';
let stack: KubeStack;
const envoyClock = new ManualClock();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-hold-'));
/** Only a guard against hanging: each wait ends as soon as its event happens. */
const HANG_GUARD_MS = 60_000;

/**
 * Every hold, as the service's own wait for a decision saw it (the service runs in this process): its timeout, and
 * after how long it ended. Whether a hold was ended by a decision or ran out is read here, not guessed from how long
 * the agent waited, which a loaded machine stretches.
 */
interface Hold {
  timeoutMs: number;
  endedAfterMs?: number;
}
const holds = new Map<string, Hold>();

before(async () => {
  writeFileSync(join(dir, 'hold.yaml'), HOLD_POLICY);
  stack = await startKubeStack({
    policies: [join(dir, 'hold.yaml')],
    agent: 'scaler',
    vaultToken: UPSTREAM_TOKEN,
    credential: 'static-token',
    redis: { appendonly: false },
    envoyClock,
  });
  ({ api, svc, envoy, kubectl, agentToken } = stack);
  approverToken = (await svc.principal('sre-1', ['approver'], ['sre'])).token;
  const approvals = svc.core.approvals;
  const wait = approvals.waitForDecision.bind(approvals);
  approvals.waitForDecision = async (action, requestId, timeoutMs, signal) => {
    const hold: Hold = { timeoutMs };
    holds.set(requestId, hold);
    const t0 = performance.now();
    try {
      return await wait(action, requestId, timeoutMs, signal);
    } finally {
      hold.endedAfterMs = performance.now() - t0;
    }
  };
});

after(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

const scalesOf = (replicas: number) =>
  api.requests.filter(
    (q) =>
      q.method === 'PATCH'
      && q.path.includes('/deployments/web/scale')
      && q.body !== undefined
      && JSON.parse(q.body).spec?.replicas === replicas,
  );

/** The pending approval raised for `replicas`, once the held call has raised it. */
async function pendingFor(replicas: number): Promise<string> {
  return waitFor<string | undefined>(
    async () => {
      const r = await svc.call(approverToken, 'GET', '/v1/approvals?state=pending');
      const item = (r.body.items as { id: string; summary: string }[]).find((i) =>
        i.summary.endsWith(`replicas ${replicas}`),
      );
      return item?.id;
    },
    HANG_GUARD_MS,
    `a pending approval for replicas ${replicas}`,
  ) as Promise<string>;
}

/** PATCH …/deployments/web/scale through the stand-in, as kubectl scale sends it. */
function scale(replicas: number): Promise<{ status: number; body: any; ms: number }> {
  const body = JSON.stringify({ spec: { replicas } });
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${envoy.url}/apis/apps/v1/namespaces/prod/deployments/web/scale`,
      {
        method: 'PATCH',
        ca: envoy.caPem,
        agent: false,
        headers: {
          authorization: `Bearer ${agentToken}`,
          'content-type': 'application/merge-patch+json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => {
            text += c;
          })
          .on('end', () => {
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* a local reply from the stand-in is plain text */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, ms: Date.now() - started });
          });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Once the held call's override has reached the stand-in and the service waits for a decision: Envoy's clock moves
 * through the whole hold, and the overridden message timer must not fire (Envoy would answer 504 and drop the call).
 */
async function envoyOutlastsTheHold(before: Record<string, number>, id: string): Promise<Hold> {
  await waitFor(
    () => envoy.counters.get('override_message_timeout_received') > before.override_message_timeout_received,
    HANG_GUARD_MS,
    'the timeout override to reach the stand-in',
  );
  const hold = (await waitFor(() => holds.get(id), HANG_GUARD_MS, 'the held call to wait for a decision'))!;
  envoyClock.advance(hold.timeoutMs);
  assert.equal(envoy.counters.get('message_timeouts'), before.message_timeouts, 'no message timer fired in the hold');
  return hold;
}

function assertOverrideHonoured(before: Record<string, number>): void {
  const now = envoy.counters.snapshot();
  assert.equal(
    now.override_message_timeout_received - before.override_message_timeout_received,
    1,
    'one timeout override per held call',
  );
  assert.equal(
    now.override_message_timeout_ignored - before.override_message_timeout_ignored,
    0,
    'the override was within max_message_timeout',
  );
  assert.equal(now.message_timeouts - before.message_timeouts, 0, 'no per-message timeout fired');
}

test('kubectl scale is held; an approval during the hold lets the same call through, upstream sees it once', async () => {
  const before = envoy.counters.snapshot();
  const running = kubectl.run(['scale', 'deployment', 'web', '-n', 'prod', '--replicas=20'], {
    timeoutMs: HANG_GUARD_MS,
  });
  const id = await pendingFor(20);
  await envoyOutlastsTheHold(before, id);
  assert.equal(scalesOf(20).length, 0, 'nothing reached the API server before the approval');
  const approved = await svc.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, { reason: 'hold test' });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));

  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment.apps\/web scaled/);
  assert.equal(scalesOf(20).length, 1, 'the API server saw exactly the approved scale, once');
  assertOverrideHonoured(before);
  const after = await svc.call(approverToken, 'GET', `/v1/approvals/${id}`);
  assert.equal(after.body.state, 'consumed', 'the once grant went to the held call');
});

test('a raw HTTPS PATCH held for a slow approver completes with 200 without a retry', async () => {
  const before = envoy.counters.snapshot();
  const running = scale(25);
  const id = await pendingFor(25);
  // The approver takes the whole hold on Envoy's clock, far past message_timeout (0.5 s): only the override keeps the
  // call open.
  await envoyOutlastsTheHold(before, id);
  assert.equal((await svc.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, {})).status, 200);
  const r = await running;
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.kind, 'Scale');
  assert.equal(r.body.spec.replicas, 25);
  assert.equal(scalesOf(25).length, 1);
  assertOverrideHonoured(before);
});

test('no decision within the hold: a 403 Status naming the approval request, not a 504', async () => {
  const before = envoy.counters.snapshot();
  const running = scale(30);
  const id = await pendingFor(30);
  const hold = await envoyOutlastsTheHold(before, id);
  const r = await running;
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.deepEqual([r.body.kind, r.body.reason], ['Status', 'Forbidden']);
  assert.match(r.body.message, new RegExp(`approval required .* request ${id} is waiting for approver group "sre"`));
  // The hold ran out (no decision woke it); and a lower bound a loaded machine cannot miss (it only makes calls
  // slower): the hold started after the call did, so the refusal cannot come sooner than the hold's 10 s.
  assert.ok(
    hold.endedAfterMs! >= hold.timeoutMs - 1,
    `the hold ended after ${hold.endedAfterMs} of its ${hold.timeoutMs} ms`,
  );
  assert.ok(r.ms >= 10_000, `refused after ${r.ms} ms: the call was not held for the whole hold`);
  assert.equal(scalesOf(30).length, 0, 'the API server never saw the unapproved scale');
  assertOverrideHonoured(before);
  assert.ok(!envoy.counters.localReplies.some((l) => l.status === 504), 'no gateway timeout');
  const pending = await svc.call(approverToken, 'GET', `/v1/approvals/${id}`);
  assert.equal(pending.body.state, 'pending', 'the request stays open for a later approval and retry');
});

test('a denial during the hold ends the call at once with a 403 quoting the denial', async () => {
  const before = envoy.counters.snapshot();
  const running = scale(40);
  const id = await pendingFor(40);
  const hold = await envoyOutlastsTheHold(before, id);
  assert.equal(
    (await svc.call(approverToken, 'POST', `/v1/approvals/${id}/deny`, { reason: 'not during the freeze' })).status,
    200,
  );
  const r = await running;
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.deepEqual([r.body.kind, r.body.reason], ['Status', 'Forbidden']);
  assert.match(r.body.message, /denied/);
  assert.match(r.body.message, /not during the freeze/);
  // The denial woke the held call (pub/sub): its wait ended before its own timeout (a timer can fire up to 1 ms
  // early by libuv's clock), not when the hold ran out.
  assert.ok(
    hold.endedAfterMs !== undefined && hold.endedAfterMs < hold.timeoutMs - 1,
    `the hold ended after ${hold.endedAfterMs} of its ${hold.timeoutMs} ms: it waited out the hold instead of being woken by the denial`,
  );
  assert.equal(scalesOf(40).length, 0, 'the API server never saw the denied scale');
  assertOverrideHonoured(before);
});

// Regression: a held call whose agent disconnected used to wait on, and an approval then consumed the once grant for
// a call nobody would receive; the agent's retry raised a new request.
test('an agent that gives up during the hold keeps its grant: the abandoned call consumes nothing, the retry runs once', async () => {
  const body = JSON.stringify({ spec: { replicas: 50 } });
  const req = https.request(`${envoy.url}/apis/apps/v1/namespaces/prod/deployments/web/scale`, {
    method: 'PATCH',
    ca: envoy.caPem,
    agent: false,
    headers: {
      authorization: `Bearer ${agentToken}`,
      'content-type': 'application/merge-patch+json',
      'content-length': Buffer.byteLength(body),
    },
  });
  req.on('error', () => undefined);
  req.end(body);
  const id = await pendingFor(50);
  req.destroy();
  // The processor records the abandoned hold once the stand-in has ended the ext_proc stream.
  const sessionEvents = async (): Promise<{ type: string; data: any }[]> => {
    const sessions = await svc.call(svc.adminToken, 'GET', '/v1/sessions?agent=scaler');
    const all: { type: string; data: any }[] = [];
    for (const s of sessions.body.sessions as { id: string }[])
      all.push(...(await svc.call(svc.adminToken, 'GET', `/v1/sessions/${s.id}/events?limit=10000`)).body.events);
    return all;
  };
  await waitFor(
    async () => {
      await svc.core.recorder.flush();
      return (await sessionEvents()).some(
        (e) => e.type === 'decision' && e.data.approval?.requestId === id && e.data.approval?.status === 'abandoned',
      );
    },
    HANG_GUARD_MS,
    'the abandoned hold to be recorded',
  );
  assert.equal((await svc.call(approverToken, 'POST', `/v1/approvals/${id}/approve`, {})).status, 200);
  const state = await svc.call(approverToken, 'GET', `/v1/approvals/${id}`);
  assert.equal(state.body.state, 'approved', 'the grant is still there for the retry');
  assert.equal(scalesOf(50).length, 0, 'the abandoned call never reached the API server');
  const retry = await scale(50);
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(scalesOf(50).length, 1);
  assert.equal((await svc.call(approverToken, 'GET', `/v1/approvals/${id}`)).body.state, 'consumed');
});
