/**
 * Traces, end to end: with `tracing.enabled`, every Kubernetes request through the Envoy stand-in yields one span,
 * exported over OTLP/HTTP to a collector stand-in, as the child of the `traceparent` the agent sent (a root span when
 * it sent none; none at all when its parent was not sampled); the decision event records the span's ids so that an
 * auditor can join the trace to the recording. With tracing off, nothing is traced and the decision names no trace.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../harness/ports.ts';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

const UPSTREAM_TOKEN = 'trace-upstream-token-7c3a';
const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: trace-test
mode: enforce
scope:
  targets:
    kinds: [kubernetes]
rules:
  - name: read-pods
    when: k8s.verb in ["get", "list"] && k8s.resource == "pods"
    action: allow
  - name: no-namespace-deletion
    when: k8s.verb == "delete" && k8s.resource == "namespaces"
    action: deny
    message: Namespaces are not deleted by agents.
`;
/** Only a guard against hanging: each wait ends as soon as its event happens. */
const HANG_GUARD_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'portcullis-trace-'));
writeFileSync(join(dir, 'policy.yaml'), POLICY);
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A request through the stand-in as a Kubernetes client sends it, with a `traceparent` when given. */
function call(
  stack: KubeStack,
  method: string,
  path: string,
  traceparent?: string | string[],
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${stack.envoy.url}${path}`, {
      method,
      ca: stack.envoy.caPem,
      agent: false,
      headers: {
        authorization: `Bearer ${stack.agentToken}`,
        accept: 'application/json',
        ...(traceparent ? { traceparent } : {}),
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The session's decision events, once the recorder has written them. */
async function decisions(stack: KubeStack): Promise<{ requestId: string; data: any }[]> {
  await stack.svc.core.recorder.flush();
  const auditor = (await stack.svc.principal(`auditor-${hex(3)}`, ['auditor'])).token;
  const r = await stack.svc.call(auditor, 'GET', `/v1/sessions/${stack.sessionId}/events?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.events as { type: string; requestId: string; data: any }[]).filter((e) => e.type === 'decision');
}

describe('tracing enabled', () => {
  let stack: KubeStack;
  let receiver: OtlpReceiver;

  before(async () => {
    receiver = await startOtlpReceiver();
    stack = await startKubeStack({
      policies: [join(dir, 'policy.yaml')],
      agent: 'tracer-agent',
      vaultToken: UPSTREAM_TOKEN,
      credential: 'static-token',
      redis: { appendonly: false },
      config: {
        tracing: { enabled: true, endpoint: receiver.url, serviceName: 'portcullis-under-test', sampleRatio: 1 },
      },
    });
  });
  after(async () => {
    await stack?.close();
    await receiver?.close();
  });

  /** The spans of `traceId` the receiver got, once it got `count` of them. */
  async function spansOf(traceId: string, count = 1): Promise<ReceivedSpan[]> {
    await stack.svc.core.tracer?.flush();
    return waitFor<ReceivedSpan[] | undefined>(
      () => {
        const got = receiver.spans.filter((s) => s.traceId === traceId);
        return got.length >= count ? got : undefined;
      },
      HANG_GUARD_MS,
      `${count} span(s) of trace ${traceId}`,
    ) as Promise<ReceivedSpan[]>;
  }

  test("an allowed request's span is the child of the agent's traceparent, and the decision names it", async () => {
    const traceId = hex(16);
    const parent = hex(8);
    const r = await call(stack, 'GET', '/api/v1/namespaces/dev/pods', `00-${traceId}-${parent}-01`);
    assert.equal(r.status, 200);
    const [span] = await spansOf(traceId);
    assert.equal(span.parentSpanId, parent);
    assert.equal(span.name, 'decide kubernetes');
    assert.equal(span.resource['service.name'], 'portcullis-under-test');
    assert.equal(span.attributes['portcullis.protocol'], 'kubernetes');
    assert.equal(span.attributes['portcullis.target'], 'kube-dev');
    assert.equal(span.attributes['portcullis.agent'], 'tracer-agent');
    assert.equal(span.attributes['portcullis.decision.action'], 'allow');
    assert.equal(span.attributes['portcullis.decision.reason'], 'rule');
    assert.equal(span.attributes['portcullis.decision.rule'], 'read-pods');
    assert.equal(span.attributes['portcullis.decision.policy'], 'trace-test');
    assert.equal(span.attributes['portcullis.decision.code'], undefined);
    assert.equal(typeof span.attributes['portcullis.decision.latency_ms'], 'number');
    assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano));

    const decision = (await decisions(stack)).find((d) => d.data.trace?.traceId === traceId);
    assert.ok(decision, 'the decision event records the trace id');
    assert.equal(decision.data.trace.spanId, span.spanId);
    assert.equal(span.attributes['portcullis.request.id'], decision.requestId);
    assert.equal(span.attributes['portcullis.session.id'], stack.sessionId);
  });

  test("a refused request's span carries the refusal code and rule", async () => {
    const traceId = hex(16);
    const r = await call(stack, 'DELETE', '/api/v1/namespaces/prod', `00-${traceId}-${hex(8)}-01`);
    assert.equal(r.status, 403);
    const [span] = await spansOf(traceId);
    assert.equal(span.attributes['portcullis.decision.action'], 'deny');
    assert.equal(span.attributes['portcullis.decision.code'], 'policy-deny');
    assert.equal(span.attributes['portcullis.decision.rule'], 'no-namespace-deletion');
  });

  test('without a valid traceparent (none, malformed, all-zero, repeated) the span is a root, its trace id recorded', async () => {
    const before = new Set((await decisions(stack)).map((d) => d.requestId));
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods')).status, 200);
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', '00-not-a-trace-01')).status, 200);
    const zero = `00-${'0'.repeat(32)}-${hex(8)}-01`;
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', zero)).status, 200);
    // Two header lines: W3C trace context says to ignore them (the adapter's header view joins them, which no parse takes).
    const twice = [`00-${hex(16)}-${hex(8)}-01`, `00-${hex(16)}-${hex(8)}-01`];
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', twice)).status, 200);
    const fresh = (await waitFor(
      async () => {
        const d = (await decisions(stack)).filter((e) => !before.has(e.requestId));
        return d.length >= 4 ? d : undefined;
      },
      HANG_GUARD_MS,
      'four new decisions',
    )) as { requestId: string; data: any }[];
    for (const d of fresh) {
      assert.match(d.data.trace?.traceId ?? '', /^[0-9a-f]{32}$/);
      const [span] = await spansOf(d.data.trace.traceId);
      assert.equal(span.spanId, d.data.trace.spanId);
      assert.ok(!span.parentSpanId, `a root span, got parent ${span.parentSpanId}`);
      assert.ok(!twice.some((t) => t.includes(span.traceId)), 'neither of the repeated headers was taken');
    }
  });

  test('a parent that was not sampled is honoured: no span, and the decision names no trace', async () => {
    const traceId = hex(16);
    const marker = hex(16); // a request after it, sampled, so that "nothing of traceId" is read after an export
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', `00-${traceId}-${hex(8)}-00`)).status, 200);
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', `00-${marker}-${hex(8)}-01`)).status, 200);
    await spansOf(marker);
    assert.equal(receiver.spans.filter((s) => s.traceId === traceId).length, 0);
    const all = await decisions(stack);
    assert.ok(all.some((d) => d.data.trace?.traceId === marker));
    assert.ok(!all.some((d) => d.data.trace?.traceId === traceId));
  });

  test('no token or credential is in anything exported', async () => {
    await stack.svc.core.tracer?.flush();
    const exported = receiver.bodies.join('\n');
    assert.ok(exported.length > 0);
    assert.ok(!exported.includes(stack.agentToken));
    assert.ok(!exported.includes(UPSTREAM_TOKEN));
  });
});

describe('tracing disabled', () => {
  let stack: KubeStack;
  let receiver: OtlpReceiver;
  let closed = false;

  before(async () => {
    receiver = await startOtlpReceiver();
    stack = await startKubeStack({
      policies: [join(dir, 'policy.yaml')],
      agent: 'untraced-agent',
      vaultToken: UPSTREAM_TOKEN,
      credential: 'static-token',
      redis: { appendonly: false },
      // Everything configured but the switch.
      config: { tracing: { enabled: false, endpoint: receiver.url, serviceName: 'portcullis', sampleRatio: 1 } },
    });
  });
  after(async () => {
    if (!closed) await stack?.close();
    await receiver?.close();
  });

  test('a request with a traceparent makes no span and the decision names no trace', async () => {
    const traceId = hex(16);
    assert.equal((await call(stack, 'GET', '/api/v1/namespaces/dev/pods', `00-${traceId}-${hex(8)}-01`)).status, 200);
    assert.equal(stack.svc.core.tracer, undefined, 'no tracer is built');
    const all = await decisions(stack);
    assert.equal(all.length, 1);
    assert.equal(all[0].data.action, 'allow');
    assert.equal(all[0].data.trace, undefined);
    // The service has stopped (and would have flushed any span) before this is read.
    await stack.close();
    closed = true;
    assert.equal(receiver.spans.length, 0);
    assert.equal(receiver.bodies.length, 0);
  });
});
