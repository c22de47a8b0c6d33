/**
 * The tracer on its own, against the collector stand-in: what the adapters without a traceparent (PostgreSQL, SSH)
 * get, the sampler's rules, a fault's status, and a collector that is away (logged once, never thrown).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { DecisionEventData, TracedAction } from '../../extproc/spine/index.ts';
import { OtlpDecisionTracer, type TracingConfig } from '../../extproc/tracing/index.ts';
import { waitFor } from '../harness/ports.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

let receiver: OtlpReceiver;
before(async () => {
  receiver = await startOtlpReceiver();
});
after(() => receiver.close());

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const quiet = pino({ level: 'silent' });

function tracer(over: Partial<TracingConfig> = {}, logger = quiet): OtlpDecisionTracer {
  return new OtlpDecisionTracer(
    { enabled: true, endpoint: receiver.url, serviceName: 'tracer-test', sampleRatio: 1, ...over },
    logger,
  );
}

const action = (traceparent?: string): TracedAction => ({
  traceparent,
  startedAtMs: Date.now() - 5,
  protocol: 'postgres',
  target: 'pg-prod',
  agent: 'analyst',
  sessionId: `ses_${hex(4)}`,
  requestId: `req_${hex(4)}`,
});

const allowed: DecisionEventData = {
  action: 'allow',
  code: null,
  reason: 'rule',
  policy: 'reads',
  policyVersion: 3,
  rule: 'select-anything',
  message: '',
  latencyMs: 0.42,
};

test('an action without a traceparent is a root span with the decision as attributes', async () => {
  const t = tracer();
  const ids = t.decided(action(), allowed);
  assert.ok(ids);
  await t.shutdown();
  const span = (await waitFor(
    () => receiver.spans.find((s) => s.spanId === ids.spanId),
    30_000,
    'the span',
  )) as ReceivedSpan;
  assert.equal(span.traceId, ids.traceId);
  assert.ok(!span.parentSpanId);
  assert.equal(span.name, 'decide postgres');
  assert.equal(span.scope, 'portcullis.spine');
  assert.equal(span.attributes['portcullis.decision.rule'], 'select-anything');
  assert.equal(span.attributes['portcullis.decision.policy_version'], 3);
  assert.equal(span.attributes['portcullis.decision.latency_ms'], 0.42);
  assert.equal(span.resource['service.name'], 'tracer-test');
});

test("sampleRatio applies to root spans; a sampled parent's flag wins over it", async () => {
  const t = tracer({ sampleRatio: 0 });
  assert.equal(t.decided(action(), allowed), null);
  const traceId = hex(16);
  const ids = t.decided(action(`00-${traceId}-${hex(8)}-01`), allowed);
  assert.equal(ids?.traceId, traceId);
  await t.shutdown();
});

test("a gateway fault's span has status ERROR; a refusal's does not", async () => {
  const t = tracer();
  const fault = t.decided(action(), { ...allowed, action: 'deny', code: 'internal', reason: 'gateway', message: 'x' });
  const denied = t.decided(action(), { ...allowed, action: 'deny', code: 'policy-deny', message: 'no' });
  await t.shutdown();
  const spans = (await waitFor(
    () => {
      const f = receiver.spans.find((s) => s.spanId === fault?.spanId);
      const d = receiver.spans.find((s) => s.spanId === denied?.spanId);
      return f && d ? { f, d } : undefined;
    },
    30_000,
    'both spans',
  )) as { f: ReceivedSpan; d: ReceivedSpan };
  assert.equal(spans.f.status?.code, 2);
  assert.notEqual(spans.d.status?.code, 2);
  assert.equal(spans.d.attributes['portcullis.decision.code'], 'policy-deny');
});

test('a collector that is away is logged (without the URL credentials), and shutdown still resolves', async () => {
  const away = await startOtlpReceiver();
  await away.close();
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const t = tracer({ endpoint: away.url.replace('http://', 'http://collector-user:s3cret-pw@') }, logger);
  assert.ok(t.decided(action(), allowed));
  await t.flush().catch(() => {});
  await waitFor(() => lines.some((l) => l.includes('could not be exported')), 30_000, 'the export failure log');
  await t.shutdown();
  assert.ok(!lines.join('\n').includes('s3cret-pw'));
  assert.ok(lines.some((l) => l.includes(away.url.replace('http://', '').split('/')[0])));
});
