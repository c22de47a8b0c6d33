/**
 * The spine with a tracer, over a whole real core (the toy SSH core of test/spine): an action of a protocol that carries
 * no trace context (SSH here, PostgreSQL alike) is a root span whose ids the decision event records; the action's
 * metadata makes it a child; a spine over a core without a tracer records no trace. The span is made at the one exit,
 * so a refusal before any decision (an unclassifiable action) is traced too.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { EMPTY_SSH, refusal, Spine, type Action, type ActionMeta } from '../../extproc/spine/index.ts';
import { OtlpDecisionTracer } from '../../extproc/tracing/index.ts';
import { waitFor } from '../harness/ports.ts';
import { startToyCore, type ToyCore } from '../spine/fixtures.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

let toy: ToyCore;
let receiver: OtlpReceiver;
let tracer: OtlpDecisionTracer;
let traced: Spine;
let untraced: Spine;
let token = '';

before(async () => {
  receiver = await startOtlpReceiver();
  toy = await startToyCore();
  tracer = new OtlpDecisionTracer(
    { enabled: true, endpoint: receiver.url, serviceName: 'spine-test', sampleRatio: 1 },
    pino({ level: 'silent' }),
  );
  traced = new Spine({ ...toy.svc.core, tracer });
  untraced = new Spine(toy.svc.core);
  token = await toy.token();
});
after(async () => {
  await tracer.shutdown();
  await toy.close();
  await receiver.close();
});

const exec = (command: string): Action => ({
  section: { protocol: 'ssh', ssh: { ...EMPTY_SSH, kind: 'exec', command, user: 'ops' } },
  recorded: { command },
  canonical: () => command,
  summary: () => `exec ${command}`,
});

/** Decides `command` through `spine` and returns its decision event's data. */
async function decided(spine: Spine, command: string, meta?: ActionMeta): Promise<any> {
  const auth = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token });
  assert.ok(auth.ok);
  const requestId = `req_${randomUUID()}`;
  await spine.begin(auth.session, requestId, meta).decide(exec(command), { maxHoldMs: 0, credential: 'ssh-key' });
  const events = await toy.events(auth.session.id);
  return events.find((e) => e.requestId === requestId && e.type === 'decision')?.data;
}

async function exported(spanId: string): Promise<ReceivedSpan> {
  await tracer.flush();
  return (await waitFor(
    () => receiver.spans.find((s) => s.spanId === spanId),
    30_000,
    `span ${spanId}`,
  )) as ReceivedSpan;
}

test('an SSH action is a root span, and its decision event names it', async () => {
  const d = await decided(traced, 'cat /etc/motd');
  assert.equal(d.action, 'allow');
  assert.match(d.trace?.traceId ?? '', /^[0-9a-f]{32}$/);
  const span = await exported(d.trace.spanId);
  assert.equal(span.traceId, d.trace.traceId);
  assert.ok(!span.parentSpanId);
  assert.equal(span.name, 'decide ssh');
  assert.equal(span.attributes['portcullis.target'], 'shell-1');
  assert.equal(span.attributes['portcullis.decision.rule'], d.rule);
  // Neither the command nor the upstream key is exported.
  assert.ok(!receiver.bodies.join('').includes('/etc/motd'));
  assert.ok(!receiver.bodies.join('').includes('toy-upstream-key'));
});

test("the action's metadata makes the span a child of the caller's, whatever the protocol", async () => {
  const traceId = randomBytes(16).toString('hex');
  const parent = randomBytes(8).toString('hex');
  const d = await decided(traced, 'uptime', { traceparent: `00-${traceId}-${parent}-01` });
  assert.equal(d.trace?.traceId, traceId);
  assert.equal((await exported(d.trace.spanId)).parentSpanId, parent);
});

test('a refusal before any decision is traced at the same exit', async () => {
  const auth = await traced.authenticate({ protocol: 'ssh', target: 'shell-1', token });
  assert.ok(auth.ok);
  const requestId = `req_${randomUUID()}`;
  traced.begin(auth.session, requestId).refuse(refusal('unsupported', 'not offered', 'x11'), { request: 'x11' });
  const d = (await toy.events(auth.session.id)).find((e) => e.requestId === requestId && e.type === 'decision')
    ?.data as any;
  const span = await exported(d.trace.spanId);
  assert.equal(span.attributes['portcullis.decision.code'], 'unsupported');
  assert.equal(span.attributes['portcullis.decision.reason'], 'gateway');
});

test('over a core without a tracer, no trace is recorded', async () => {
  const d = await decided(untraced, 'cat /etc/motd', {
    traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
  });
  assert.equal(d.action, 'allow');
  assert.equal(d.trace, undefined);
});
