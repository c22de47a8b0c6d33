/**
 * The HTTP ext_proc loop driven over a real gRPC stream by scripted Envoy messages, with a processor that only
 * scripts its replies and notes each call: the loop alone decides which phase method runs (a message out of phase
 * never reaches the processor and fails the stream), writes each reply in order, runs holds, and ends the stream
 * with OK only when the processor says nothing more can come.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Counter } from 'prom-client';
import {
  newExtProcClient,
  type ExternalProcessorClient,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../extproc/envoy-api/index.ts';
import { startGrpcServer, type GrpcServer } from '../../extproc/service/grpc-server.ts';
import {
  httpExtProcService,
  type HttpPhase,
  type HttpReply,
  type HttpStreamProcessor,
} from '../../extproc/streams/index.ts';

/** A processor that walks the four phases in order and notes every call the loop makes. */
class ScriptedProcessor implements HttpStreamProcessor {
  awaiting: HttpPhase | 'nothing' = 'request_headers';
  calls: string[] = [];
  holdFirst = false;
  private step(name: HttpPhase, next: HttpPhase | 'nothing', message: ProcessingResponse): HttpReply {
    this.calls.push(name);
    this.awaiting = next;
    return { kind: 'respond', message, end: next === 'nothing' };
  }
  async requestHeaders(): Promise<HttpReply> {
    if (this.holdFirst) {
      this.calls.push('hold');
      return {
        kind: 'hold',
        message: { override_message_timeout: { seconds: 5, nanos: 0 } },
        resume: async () => this.step('request_headers', 'response_headers', { request_headers: {} }),
      };
    }
    return this.step('request_headers', 'response_headers', { request_headers: {} });
  }
  async requestBody(): Promise<HttpReply> {
    return this.step('request_body', 'response_headers', { request_body: {} });
  }
  async responseHeaders(): Promise<HttpReply> {
    return this.step('response_headers', 'response_body', { response_headers: {} });
  }
  async responseBody(): Promise<HttpReply> {
    return this.step('response_body', 'nothing', { response_body: {} });
  }
  streamClosed(): void {
    this.calls.push('streamClosed');
  }
  fault(err: unknown): void {
    this.calls.push(`fault: ${(err as Error).message}`);
  }
}

let server: GrpcServer;
let client: ExternalProcessorClient;
let latest: ScriptedProcessor;
let holdNext = false;
const streams = new Counter({ name: 'test_streams', help: 'x', labelNames: ['service', 'outcome'], registers: [] });

before(async () => {
  const service = httpExtProcService(
    {
      kind: 'http-ext-proc',
      name: 'scripted',
      open: () => {
        latest = new ScriptedProcessor();
        latest.holdFirst = holdNext;
        return latest;
      },
    },
    { logger: pino({ level: 'silent' }), metrics: { extprocStreams: streams } },
  );
  server = await startGrpcServer('127.0.0.1', 0, [service]);
  client = newExtProcClient(`127.0.0.1:${server.port}`);
});
after(async () => {
  client.close();
  await server.shutdown(1000);
});

const headers = { headers: { headers: [] } };
const body = { body: Buffer.from('x'), end_of_stream: true };

/** Sends each message after the previous reply; resolves with the replies and how the stream ended. */
function script(steps: ProcessingRequest[]): Promise<{ replies: ProcessingResponse[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const call = client.Process();
    const replies: ProcessingResponse[] = [];
    let i = 0;
    call.on('data', (r: ProcessingResponse) => {
      replies.push(r);
      if ('override_message_timeout' in r && Object.keys(r).length === 1) return; // a hold's first answer
      if (++i < steps.length) call.write(steps[i]);
    });
    call.on('error', () => undefined);
    call.on('status', (status) => resolve({ replies, status }));
    call.write(steps[0]);
  });
}

test('in order: each phase reaches the processor once, each reply is written, the last ends the stream with OK', async () => {
  const { replies, status } = await script([
    { request_headers: headers },
    { response_headers: headers },
    { response_body: body },
  ]);
  assert.deepEqual(latest.calls, ['request_headers', 'response_headers', 'response_body']);
  assert.deepEqual(
    replies.map((r) => Object.keys(r)[0]),
    ['request_headers', 'response_headers', 'response_body'],
  );
  assert.equal(status.code, grpc.status.OK);
});

for (const [name, steps] of [
  ['a response body before anything', [{ response_body: body }]],
  ['request headers twice', [{ request_headers: headers }, { request_headers: headers }]],
  ['a request body while response headers are awaited', [{ request_headers: headers }, { request_body: body }]],
] as [string, ProcessingRequest[]][]) {
  // Without the loop's phase check the stream would go on waiting: the timeout turns that into a failure, not a hang.
  test(`out of phase (${name}): the processor never sees it, and the stream fails (Envoy fails closed)`, {
    timeout: 20_000,
  }, async () => {
    const { status } = await script(steps);
    assert.equal(status.code, grpc.status.INTERNAL);
    assert.match(status.details, /^unexpected \w+ message while awaiting \w+$/);
    assert.equal(latest.calls.filter((c) => !c.startsWith('fault')).length, steps.length - 1, latest.calls.join(','));
    assert.ok(latest.calls.at(-1)?.startsWith('fault: unexpected'));
  });
}

test('trailers (configured SKIP) pass through unchanged without reaching the processor', async () => {
  const { replies } = await script([
    { request_headers: headers },
    { request_trailers: {} },
    { response_headers: headers },
    { response_body: body },
  ]);
  assert.deepEqual(
    replies.map((r) => Object.keys(r)[0]),
    ['request_headers', 'request_trailers', 'response_headers', 'response_body'],
  );
  assert.deepEqual(latest.calls, ['request_headers', 'response_headers', 'response_body']);
});

test('a hold: the override is written first, then the resumed reply, in order', async () => {
  holdNext = true;
  try {
    const { replies, status } = await script([
      { request_headers: headers },
      { response_headers: headers },
      { response_body: body },
    ]);
    assert.deepEqual(
      replies.map((r) => Object.keys(r)[0]),
      ['override_message_timeout', 'request_headers', 'response_headers', 'response_body'],
    );
    assert.deepEqual(latest.calls, ['hold', 'request_headers', 'response_headers', 'response_body']);
    assert.equal(status.code, grpc.status.OK);
  } finally {
    holdNext = false;
  }
});

test('Envoy ends the stream early: the processor is told, and the stream ends without an error', async () => {
  await new Promise<void>((resolve) => {
    const call = client.Process();
    call.on('data', () => call.end());
    call.on('error', () => undefined);
    call.on('status', () => resolve());
    call.write({ request_headers: headers });
  });
  assert.deepEqual(latest.calls, ['request_headers', 'streamClosed']);
});
