/**
 * Conformance tests of the Envoy stand-in against docs/envoy-behaviour.md section B, one per legal message ordering as in
 * Envoy's ordering_test.cc, plus the error paths. Processors are scripted grpc-js servers (a queue of replies per
 * stream); the upstream is a plain node:http server.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition, newExtProcClient } from '../../extproc/envoy-api/index.ts';
import type { ProcessingRequest, ProcessingResponse } from '../../extproc/envoy-api/index.ts';
import { waitFor } from '../harness/ports.ts';
import { continueResponse, startProcessor } from './echo-processor.ts';
import type { RunningProcessor } from './echo-processor.ts';
import { ManualClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { startEnvoyStandIn } from './stand-in.ts';
import type { EnvoyStandIn } from './stand-in.ts';
import type { SettingsOverrides } from './stand-in-config.ts';

// ------------------------------------------------------------------------------------------------ scripted processor

/** What the script does with one message: answer (one or more messages), or end the stream some way. */
type Step =
  | ProcessingResponse
  | ProcessingResponse[]
  | { close: 'ok' }
  | { error: grpc.status }
  | { silent: true }
  /** Messages the test writes itself, e.g. one now and the next once it has moved the stand-in's clock. */
  | { run: (write: (m: ProcessingResponse) => void) => Promise<void> };

interface ScriptedStream {
  received: ProcessingRequest[];
  /** 'half-close', 'cancelled' as the server saw them; 'ended' when the server ended its side with OK. */
  events: string[];
}

class ScriptedProcessor {
  streams: ScriptedStream[] = [];
  /** One script per stream, in order; a stream without a script (or past its end) gets CONTINUE answers. */
  scripts: Step[][] = [];
  /** Server ends its side when the client half-closes (as a well-behaved processor does). */
  endOnHalfClose = true;
  /** The answer to a message past the end of the stream's script. */
  fallback: (req: ProcessingRequest) => ProcessingResponse = continueResponse;
  /** How long after the half-close the server ends its side. */
  endDelayMs = 0;
  server!: RunningProcessor;

  async start(): Promise<void> {
    this.server = await startProcessor({
      Process: (call) => {
        const stream: ScriptedStream = { received: [], events: [] };
        const script = this.scripts[this.streams.length] ?? [];
        this.streams.push(stream);
        call.on('data', (req: ProcessingRequest) => {
          stream.received.push(req);
          const step = script.shift() ?? this.fallback(req);
          if ('close' in step) call.end();
          else if ('error' in step)
            call.emit('error', { code: step.error, details: 'scripted failure', metadata: new grpc.Metadata() });
          else if ('silent' in step) return;
          else if ('run' in step) void step.run((m) => call.write(m));
          else for (const m of Array.isArray(step) ? step : [step]) call.write(m);
        });
        // grpc-js also emits 'cancelled' after a normal finish; only a cancel before our own end counts.
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          stream.events.push('ended');
          call.end();
        };
        call.on('end', () => {
          stream.events.push('half-close');
          if (this.endOnHalfClose) setTimeout(end, this.endDelayMs);
        });
        call.on('cancelled', () => {
          if (ended) return;
          ended = true;
          stream.events.push('cancelled');
        });
        call.on('error', () => {});
      },
    });
  }

  reset(): void {
    this.streams = [];
    this.scripts = [];
    this.endOnHalfClose = true;
    this.endDelayMs = 0;
    this.fallback = continueResponse;
  }

  kinds(i = 0): string[] {
    return (this.streams[i]?.received ?? []).map((m) => String(m.request));
  }
}

// ------------------------------------------------------------------------------------------------ upstream

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: NodeJS.Dict<string>;
}

type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const defaultUpstream: UpstreamHandler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
  res.end('{"ok":true}');
};

// ------------------------------------------------------------------------------------------------ client

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(
  standIn: EnvoyStandIn,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | string[];
    trailers?: Record<string, string>;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${standIn.url}${opts.path ?? '/api/v1/namespaces/default/pods'}`,
      {
        method: opts.method ?? 'GET',
        ca: standIn.caPem,
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    for (const p of parts) req.write(p);
    if (opts.trailers) req.addTrailers(opts.trailers);
    req.end();
  });
}

function header(m: ProcessingRequest, name: string): string | undefined {
  const hh = 'request_headers' in m ? m.request_headers : 'response_headers' in m ? m.response_headers : undefined;
  const hv = hh?.headers?.headers?.find((h) => h.key === name);
  return hv?.raw_value ? Buffer.from(hv.raw_value).toString() : undefined;
}

function set(key: string, value: string) {
  return { header: { key, raw_value: Buffer.from(value) } };
}

// ------------------------------------------------------------------------------------------------ fixture

const proc = new ScriptedProcessor();
let upstream: http.Server;
let upstreamUrl: string;
let upstreamHandler: UpstreamHandler = defaultUpstream;
let seen: Seen[] = [];
const standIns: EnvoyStandIn[] = [];

/** Only a guard against hanging: each wait ends as soon as its event happens. */
const HANG_GUARD_MS = 30_000;

/**
 * A stand-in over the real envoy/portcullis.yaml, with generous timers unless a test overrides them; a test about
 * timers passes a ManualClock and moves it itself.
 */
async function standIn(overrides: SettingsOverrides = {}, clock?: Clock): Promise<EnvoyStandIn> {
  const s = await startEnvoyStandIn({
    processorAddress: proc.server.address,
    upstream: { url: upstreamUrl },
    overrides: { messageTimeoutMs: 5000, ...overrides },
    ...(clock ? { clock } : {}),
  });
  standIns.push(s);
  return s;
}

before(async () => {
  await proc.start();
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, trailers: req.trailers });
      upstreamHandler(req, res, body);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of standIns) await s.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
  await proc.server.close();
});

function fresh(): void {
  proc.reset();
  seen = [];
  upstreamHandler = defaultUpstream;
}

// ------------------------------------------------------------------------------------------------ orderings

describe('message orderings (ordering_test.cc)', () => {
  test('headers only: GET with the configured modes', async () => {
    fresh();
    const s = await standIn();
    const r = await request(s, {});
    assert.equal(r.status, 200);
    assert.equal(r.body, '{"ok":true}');
    assert.deepEqual(proc.kinds(), ['request_headers', 'response_headers', 'response_body']);
    const [first, , body] = proc.streams[0].received;
    assert.equal('request_headers' in first && first.request_headers.end_of_stream, true);
    assert.deepEqual(first.protocol_config, { request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' });
    assert.equal(proc.streams[0].received[1].protocol_config, undefined, 'protocol_config only on the first message');
    assert.equal(header(first, ':method'), 'GET');
    assert.equal(header(first, ':path'), '/api/v1/namespaces/default/pods');
    assert.equal(header(first, ':scheme'), 'https');
    assert.match(header(first, ':authority') ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(header(first, 'x-forwarded-proto'), 'https');
    assert.match(header(first, 'x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(header(proc.streams[0].received[1], ':status'), '200');
    assert.equal('response_body' in body && body.response_body.end_of_stream, true);
    assert.equal(seen[0].headers.host, header(first, ':authority'), 'Host kept');
    assert.equal(s.counters.get('streams_started'), 1);
    assert.equal(s.counters.get('stream_msgs_sent'), 3);
    assert.equal(s.counters.get('stream_msgs_received'), 3);
  });

  test('headers + buffered body: POST body in one message, then the response path', async () => {
    fresh();
    const s = await standIn();
    const r = await request(s, {
      method: 'POST',
      body: ['{"kind":', '"Pod"}'],
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(proc.kinds(), ['request_headers', 'request_body', 'response_headers', 'response_body']);
    const b = proc.streams[0].received[1];
    assert.ok('request_body' in b);
    assert.equal(Buffer.from(b.request_body.body!).toString(), '{"kind":"Pod"}');
    assert.equal(b.request_body.end_of_stream, true);
    assert.equal(seen[0].body, '{"kind":"Pod"}');
  });

  test('streamed chunks: pipelined, FIFO, each re-injected; the response streams through (logs -f)', async () => {
    fresh();
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('line-1\n');
      void released.then(() => res.end('line-2\n'));
    };
    // Every request chunk is upper-cased by the processor; how the client's writes are chunked is up to TCP.
    proc.fallback = (req) =>
      req.request === 'request_body'
        ? {
            request_body: {
              response: {
                body_mutation: {
                  body: Buffer.from(
                    Buffer.from(req.request_body.body ?? [])
                      .toString()
                      .toUpperCase(),
                  ),
                },
              },
            },
          }
        : continueResponse(req);
    const s = await standIn({ modes: { request_body_mode: 'STREAMED', response_body_mode: 'STREAMED' } });
    const got = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        `${s.url}/api/v1/namespaces/d/pods/p/log?follow=true`,
        { method: 'PUT', ca: s.caPem, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
            if (body === 'line-1\n') release(); // the first line arrived before the upstream wrote the second
          });
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.write('a');
      setImmediate(() => {
        req.write('b');
        req.end();
      });
    });
    assert.equal(got, 'line-1\nline-2\n');
    const reqBodies = proc.streams[0].received.filter((m) => m.request === 'request_body');
    assert.ok(reqBodies.length >= 1);
    const last = reqBodies.at(-1)!;
    assert.equal('request_body' in last && last.request_body.end_of_stream, true);
    assert.equal(seen[0].body, 'AB');
    assert.equal(seen[0].headers['content-length'], undefined, 'content-length removed in STREAMED');
    assert.ok(proc.kinds().filter((k) => k === 'response_body').length >= 2, 'response chunks sent one by one');
  });

  test('trailers: BUFFERED body sent with end_of_stream=false, then the trailers message', async () => {
    fresh();
    proc.scripts = [
      [
        { request_headers: {} },
        { request_body: {} },
        { request_trailers: { header_mutation: { set_headers: [set('x-checked', 'yes')] } } },
      ],
    ];
    const s = await standIn({ modes: { request_trailer_mode: 'SEND' } });
    const r = await request(s, {
      method: 'POST',
      body: 'xyz',
      headers: { 'transfer-encoding': 'chunked', te: 'trailers' },
      trailers: { 'x-sum': '42' },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(proc.kinds().slice(0, 3), ['request_headers', 'request_body', 'request_trailers']);
    const b = proc.streams[0].received[1];
    assert.equal('request_body' in b && b.request_body.end_of_stream, undefined, 'end_of_stream=false (absent)');
    assert.equal(seen[0].body, 'xyz');
    assert.equal(seen[0].trailers['x-sum'], '42');
    assert.equal(seen[0].trailers['x-checked'], 'yes');
  });

  test('response path: header mutation and a buffered body replaced with a matching content-length', async () => {
    fresh();
    proc.scripts = [
      [
        { request_headers: {} },
        { response_headers: { response: { header_mutation: { set_headers: [set('x-masked', 'true')] } } } },
        {
          response_body: {
            response: {
              header_mutation: { set_headers: [set('content-length', '14')] },
              body_mutation: { body: Buffer.from('{"ok":"*****"}') },
            },
          },
        },
      ],
    ];
    const s = await standIn();
    const r = await request(s, {});
    assert.equal(r.status, 200);
    assert.equal(r.body, '{"ok":"*****"}');
    assert.equal(r.headers['x-masked'], 'true');
  });

  test('content-length mismatch after a body mutation -> 500', async () => {
    fresh();
    proc.scripts = [
      [
        { request_headers: {} },
        { response_headers: {} },
        { response_body: { response: { body_mutation: { body: Buffer.from('short') } } } },
      ],
    ];
    const s = await standIn();
    const r = await request(s, {});
    assert.equal(r.status, 500);
    assert.match(s.counters.localReplies[0].details, /mismatch_between_content_length/);
  });

  test('clear_body against a non-zero content-length -> 500', async () => {
    fresh();
    proc.scripts = [
      [
        { request_headers: {} },
        { response_headers: {} },
        { response_body: { response: { body_mutation: { clear_body: true } } } },
      ],
    ];
    const s = await standIn();
    assert.equal((await request(s, {})).status, 500);
  });

  test('CONTINUE_AND_REPLACE on request headers: body replaced, no body message, content-length dropped', async () => {
    fresh();
    proc.scripts = [
      [
        {
          request_headers: {
            response: { status: 'CONTINUE_AND_REPLACE', body_mutation: { body: Buffer.from('replaced') } },
          },
        },
      ],
    ];
    const s = await standIn();
    const r = await request(s, { method: 'POST', body: 'original' });
    assert.equal(r.status, 200);
    assert.equal(seen[0].body, 'replaced');
    assert.ok(!proc.kinds().includes('request_body'));
  });
});

// ------------------------------------------------------------------------------------------------ error paths

describe('spurious, empty and immediate responses', () => {
  for (const failureModeAllow of [false, true]) {
    test(`spurious response (failure_mode_allow=${failureModeAllow})`, async () => {
      fresh();
      proc.scripts = [[{ response_body: {} }]];
      const s = await standIn({ failureModeAllow });
      const r = await request(s, {});
      assert.equal(r.status, failureModeAllow ? 200 : 500);
      assert.equal(s.counters.get('spurious_msgs_received'), 1);
      assert.equal(seen.length, failureModeAllow ? 1 : 0);
    });
  }

  test('a response with no kind set is spurious -> 500', async () => {
    fresh();
    proc.scripts = [[{}]];
    const s = await standIn();
    assert.equal((await request(s, {})).status, 500);
    assert.equal(s.counters.get('spurious_msgs_received'), 1);
  });

  test('immediate_response on the request path: local reply, upstream never called', async () => {
    fresh();
    proc.scripts = [
      [
        {
          immediate_response: {
            status: { code: 403 },
            body: Buffer.from('{"kind":"Status","code":403}'),
            details: 'denied by policy',
            headers: { set_headers: [set('content-type', 'application/json')] },
          },
        },
      ],
    ];
    const s = await standIn();
    const r = await request(s, { method: 'POST', body: 'x' });
    assert.equal(r.status, 403);
    assert.equal(r.body, '{"kind":"Status","code":403}');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(seen.length, 0);
    assert.equal(s.counters.localReplies[0].details, 'denied_by_policy');
  });

  test('immediate_response on the response path', async () => {
    fresh();
    proc.scripts = [
      [{ request_headers: {} }, { immediate_response: { status: { code: 451 }, body: Buffer.from('masked away') } }],
    ];
    const s = await standIn();
    const r = await request(s, {});
    assert.equal(r.status, 451);
    assert.equal(r.body, 'masked away');
    assert.equal(seen.length, 1);
  });
});

describe('timeouts and gRPC errors under failure_mode_allow', () => {
  for (const failureModeAllow of [false, true]) {
    test(`message timeout (failure_mode_allow=${failureModeAllow})`, async () => {
      fresh();
      proc.scripts = [[{ silent: true }]];
      const s = await standIn({ failureModeAllow, messageTimeoutMs: 50 });
      const r = await request(s, {});
      assert.equal(r.status, failureModeAllow ? 200 : 504);
      assert.equal(s.counters.get('message_timeouts'), 1);
      if (!failureModeAllow)
        assert.equal(s.counters.localReplies[0].details, 'ext_proc_error_per-message_timeout_exceeded');
      else assert.equal(s.counters.get('failure_mode_allowed'), 1);
    });

    test(`gRPC error (failure_mode_allow=${failureModeAllow})`, async () => {
      fresh();
      proc.scripts = [[{ error: grpc.status.INTERNAL }]];
      const s = await standIn({ failureModeAllow });
      const r = await request(s, {});
      assert.equal(r.status, failureModeAllow ? 200 : 500);
      assert.equal(s.counters.get('streams_failed'), 1);
      if (!failureModeAllow) assert.match(s.counters.localReplies[0].details, /^ext_proc_error_gRPC_error_13/);
    });
  }

  test('server closes with OK: the request continues unmodified', async () => {
    fresh();
    proc.scripts = [[{ close: 'ok' }]];
    const s = await standIn();
    const r = await request(s, { method: 'POST', body: 'b' });
    assert.equal(r.status, 200);
    assert.equal(seen[0].body, 'b');
    assert.equal(proc.kinds().length, 1);
  });

  // The override tests run the stand-in's timers on a ManualClock moved only once the override has been received, so
  // they assert which timer is armed after it, not whether a loaded machine delivers it within 50 ms.
  const overrideReceived = (s: EnvoyStandIn, n: number) =>
    waitFor(() => s.counters.get('override_message_timeout_received') === n, HANG_GUARD_MS, `${n} override(s)`);

  test('override_message_timeout extends the pending message once, within max_message_timeout', async () => {
    fresh();
    const clock = new ManualClock();
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    proc.scripts = [
      [
        {
          run: async (write) => {
            write({ override_message_timeout: { seconds: 2 } });
            await answered;
            write({ request_headers: {} });
          },
        },
      ],
    ];
    const s = await standIn({ messageTimeoutMs: 50 }, clock);
    const r = request(s, {});
    await overrideReceived(s, 1);
    // Well past the 50 ms message_timeout, just short of the override's 2 s: the pending message is still open.
    clock.advance(1999);
    assert.equal(s.counters.get('message_timeouts'), 0);
    answer();
    assert.equal((await r).status, 200);
    assert.equal(s.counters.get('message_timeouts'), 0);
    assert.equal(s.counters.get('override_message_timeout_ignored'), 0);
  });

  test("a second override for the same message is ignored: the first one's timer ends it", async () => {
    fresh();
    const clock = new ManualClock();
    proc.scripts = [
      [
        {
          run: async (write) => {
            write({ override_message_timeout: { seconds: 2 } });
            write({ override_message_timeout: { seconds: 3 } });
          },
        },
      ],
    ];
    const s = await standIn({ messageTimeoutMs: 50 }, clock);
    const r = request(s, {});
    await overrideReceived(s, 2);
    assert.equal(s.counters.get('override_message_timeout_ignored'), 1);
    clock.advance(1999);
    assert.equal(s.counters.get('message_timeouts'), 0, 'the first override (2 s) holds the message');
    clock.advance(1);
    assert.equal(s.counters.get('message_timeouts'), 1, 'the second override (3 s) did not extend it');
    assert.equal((await r).status, 504);
  });

  test('override_message_timeout beyond max_message_timeout is ignored -> 504', async () => {
    fresh();
    const clock = new ManualClock();
    proc.scripts = [[{ override_message_timeout: { seconds: 120 } }]];
    const s = await standIn({ messageTimeoutMs: 50 }, clock);
    const r = request(s, {});
    await overrideReceived(s, 1);
    assert.equal(s.counters.get('override_message_timeout_ignored'), 1);
    clock.advance(49);
    assert.equal(s.counters.get('message_timeouts'), 0);
    clock.advance(1);
    assert.equal(s.counters.get('message_timeouts'), 1, 'the configured 50 ms timer is still the one armed');
    assert.equal((await r).status, 504);
  });

  test('override_message_timeout then the real answer: the override message itself is otherwise ignored', async () => {
    fresh();
    const clock = new ManualClock();
    // Carries a kind too, but Envoy ignores everything but the override in this message: the 300 ms timer ends it.
    proc.scripts = [
      [{ override_message_timeout: { nanos: 300_000_000 }, immediate_response: { status: { code: 403 } } }],
    ];
    const s = await standIn({ messageTimeoutMs: 50 }, clock);
    const r = request(s, {});
    await overrideReceived(s, 1);
    clock.advance(299);
    assert.equal(s.counters.localReplies.length, 0, 'the immediate_response beside the override was ignored');
    clock.advance(1);
    assert.equal((await r).status, 504);
    assert.equal(s.counters.localReplies[0].details, 'ext_proc_error_per-message_timeout_exceeded');
    assert.equal(s.counters.get('override_message_timeout_ignored'), 0);
  });
});

describe('mode_override, mutation rules, stream close', () => {
  test('mode_override on request headers: omitted body modes become NONE', async () => {
    fresh();
    proc.scripts = [[{ request_headers: {}, mode_override: { response_header_mode: 'SEND' } }]];
    const s = await standIn();
    const r = await request(s, { method: 'POST', body: 'x' });
    assert.equal(r.status, 200);
    assert.deepEqual(proc.kinds(), ['request_headers', 'response_headers']);
    assert.equal(seen[0].body, 'x');
  });

  test('mode_override is ignored when allow_mode_override is false', async () => {
    fresh();
    proc.scripts = [[{ request_headers: {}, mode_override: { response_header_mode: 'SKIP' } }]];
    const s = await standIn({ allowModeOverride: false });
    await request(s, {});
    assert.deepEqual(proc.kinds(), ['request_headers', 'response_headers', 'response_body']);
  });

  test('routing, host and x-envoy-* mutations are silently ignored; others applied', async () => {
    fresh();
    proc.scripts = [
      [
        {
          request_headers: {
            response: {
              header_mutation: {
                set_headers: [
                  set(':authority', 'evil'),
                  set('host', 'evil'),
                  set('x-envoy-foo', '1'),
                  set(':method', 'DELETE'),
                  set('authorization', 'Bearer real'),
                  set('x-extra', 'a'),
                  { header: { key: 'x-extra', raw_value: Buffer.from('b') }, append: { value: true } },
                ],
                remove_headers: ['x-agent-token', 'host'],
              },
            },
          },
        },
      ],
    ];
    const s = await standIn();
    const r = await request(s, { headers: { authorization: 'Bearer agent', 'x-agent-token': 't' } });
    assert.equal(r.status, 200);
    assert.equal(s.counters.get('rejected_header_mutations'), 4);
    assert.equal(seen[0].method, 'GET');
    assert.match(seen[0].headers.host ?? '', /^127\.0\.0\.1:/);
    assert.equal(seen[0].headers['x-envoy-foo'], undefined);
    assert.equal(seen[0].headers.authorization, 'Bearer real');
    assert.equal(seen[0].headers['x-extra'], 'a, b');
    assert.equal(seen[0].headers['x-agent-token'], undefined);
  });

  test('disallow_is_error turns a disallowed mutation into a 500', async () => {
    fresh();
    proc.scripts = [[{ request_headers: { response: { header_mutation: { set_headers: [set('host', 'evil')] } } } }]];
    const s = await standIn({ mutationRules: { disallow_is_error: true } });
    assert.equal((await request(s, {})).status, 500);
  });

  test('a header value with a newline -> 500', async () => {
    fresh();
    proc.scripts = [[{ request_headers: { response: { header_mutation: { set_headers: [set('x-a', 'a\r\nb')] } } } }]];
    const s = await standIn();
    assert.equal((await request(s, {})).status, 500);
  });

  test('a header sent with `value` only becomes empty (Envoy reads raw_value)', async () => {
    fresh();
    proc.scripts = [
      [
        {
          request_headers: {
            response: { header_mutation: { set_headers: [{ header: { key: 'x-v', value: 'lost' } }] } },
          },
        },
      ],
    ];
    const s = await standIn();
    await request(s, {});
    assert.equal(seen[0].headers['x-v'], '');
  });

  test('reset close (runtime flag off): the server sees half-close then CANCELLED', async () => {
    fresh();
    proc.endDelayMs = 50; // the server would finish 50 ms after the half-close; the reset comes first
    const s = await standIn({ gracefulClose: false });
    await request(s, {});
    await waitFor(() => proc.streams[0]?.events.includes('cancelled'), HANG_GUARD_MS, 'cancel');
    assert.deepEqual(proc.streams[0].events, ['half-close', 'cancelled']);
  });

  test('graceful close (runtime flag on, as envoy/portcullis.yaml): half-close, the server finishes with OK', async () => {
    fresh();
    proc.endDelayMs = 50;
    // The remote close timeout (1000 ms) does not run out here, however slowly the server's end arrives.
    const s = await standIn({}, new ManualClock());
    assert.equal(s.settings.gracefulClose, true, 'read from layered_runtime');
    await request(s, {});
    await waitFor(() => proc.streams[0]?.events.includes('ended'), HANG_GUARD_MS, 'the server to end its side');
    assert.deepEqual(proc.streams[0].events, ['half-close', 'ended'], 'no cancel before the server ended');
  });

  test('stream closed early when nothing more is to be processed (response path SKIP/NONE)', async () => {
    fresh();
    proc.endDelayMs = 1000;
    let finish!: () => void;
    upstreamHandler = (_req, res) => {
      finish = () => res.end('late');
      res.writeHead(200);
    };
    const s = await standIn({
      gracefulClose: false,
      modes: { response_header_mode: 'SKIP', response_body_mode: 'NONE' },
    });
    const pending = request(s, {});
    await waitFor(() => proc.streams[0]?.events.includes('cancelled') && finish, HANG_GUARD_MS, 'early close');
    finish();
    assert.equal((await pending).body, 'late');
    assert.deepEqual(proc.kinds(), ['request_headers']);
  });
});

describe('upgrades (kubectl exec / attach / port-forward)', () => {
  test("an upgrade refused by immediate_response gets the processor's reply", async () => {
    fresh();
    proc.scripts = [[{ immediate_response: { status: { code: 403 }, body: Buffer.from('exec denied') } }]];
    const s = await standIn();
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.caPem, servername: 'localhost' }, () => {
        sock.write(
          'GET /api/v1/namespaces/d/pods/p/exec?command=sh HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n',
        );
      });
      let data = '';
      sock.on('data', (c) => {
        data += c.toString();
      });
      sock.on('end', () => {
        sock.destroy();
        resolve(data);
      });
      sock.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 403/);
    assert.match(reply, /exec denied$/);
    assert.equal(header(proc.streams[0].received[0], 'upgrade'), 'SPDY/3.1');
  });

  test('an allowed upgrade is spliced to the upstream', async () => {
    fresh();
    const s = await standIn();
    const onUpgrade = (req: http.IncomingMessage, socket: import('node:stream').Duplex) => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`,
      );
      socket.on('data', (c: Buffer) => socket.write(`echo:${c.toString()}`));
      upgradedUpstream.push(socket);
    };
    const upgradedUpstream: import('node:stream').Duplex[] = [];
    upstream.on('upgrade', onUpgrade);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.caPem, servername: 'localhost' }, () => {
          sock.write(
            'GET /api/v1/namespaces/d/pods/p/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
          );
        });
        let data = '';
        sock.on('data', (c) => {
          data += c.toString();
          if (data.includes('\r\n\r\n') && !data.includes('echo:')) sock.write('ping');
          if (data.includes('echo:ping')) {
            sock.destroy();
            resolve(data);
          }
        });
        sock.on('error', reject);
      });
      assert.match(reply, /^HTTP\/1\.1 101/);
      assert.deepEqual(proc.kinds().slice(0, 1), ['request_headers']);
    } finally {
      upstream.off('upgrade', onUpgrade);
      for (const u of upgradedUpstream) u.destroy(); // upgraded sockets are outside the server's closeAllConnections
    }
  });
});

// ------------------------------------------------------------------------------------------------ refused streams

/**
 * A bare ExternalProcessor over raw HTTP/2 (gRPC framing by hand) that can refuse chosen streams before processing
 * them, the way an HTTP/2 server refuses streams it will not serve: `RST_STREAM REFUSED_STREAM`, or a GOAWAY whose
 * last-stream-id is below the stream (what grpc-js's max_connection_age does to streams that cross it). Every other
 * stream gets CONTINUE answers and ends with grpc-status 0 when the client half-closes.
 */
async function startRefusingProcessor(
  refuse: (n: number) => 'rst' | 'goaway' | false,
): Promise<{ address: string; streams: () => number; close: () => Promise<void> }> {
  const method = extProcServiceDefinition().Process;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  let n = 0;
  server.on('stream', (stream, _headers) => {
    stream.on('error', () => {});
    const how = refuse(n++);
    if (how === 'rst') return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    if (how === 'goaway') return void stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, (stream.id ?? 3) - 2);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    let buf = Buffer.alloc(0);
    stream.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        const req = method.requestDeserialize(buf.subarray(5, 5 + len)) as ProcessingRequest;
        buf = buf.subarray(5 + len);
        const out = method.responseSerialize(continueResponse(req));
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(out.length, 1);
        stream.write(Buffer.concat([prefix, out]));
      }
    });
    stream.on('end', () => stream.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    streams: () => n,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('refused streams: no transparent retries (B.15)', () => {
  for (const how of ['rst', 'goaway'] as const) {
    test(`a stream refused by ${how === 'rst' ? 'RST_STREAM REFUSED_STREAM' : 'a GOAWAY below its id'} fails closed (500), it is not retried`, async () => {
      fresh();
      // The first stream on the connection is served (so the GOAWAY case has a lower stream id to point to), the
      // second is refused, the rest are served.
      const p = await startRefusingProcessor((i) => (i === 1 ? how : false));
      const s = await startEnvoyStandIn({
        processorAddress: p.address,
        upstream: { url: upstreamUrl },
        overrides: { messageTimeoutMs: 5000 },
      });
      try {
        assert.equal((await request(s, {})).status, 200);
        const refused = await request(s, {});
        assert.equal(refused.status, 500, 'Envoy has no transparent retry: a refused ext_proc stream is a gRPC error');
        assert.match(s.counters.localReplies.at(-1)!.details, /^ext_proc_error_gRPC_error_14\{/);
        assert.equal(s.counters.get('streams_failed'), 1);
        assert.equal(seen.length, 1, 'the refused request never reached the upstream');
        assert.equal(p.streams(), 2, 'the refused stream was not retried');
        // The next request opens a new stream (on a new connection after the GOAWAY) and goes through.
        assert.equal((await request(s, {})).status, 200);
        assert.equal(seen.length, 2);
      } finally {
        await s.close();
        await p.close();
      }
    });
  }

  test('control: a default grpc-js client retries the refused stream on its own (what the stand-in must not do)', async () => {
    const p = await startRefusingProcessor((i) => (i === 0 ? 'rst' : false));
    const client = newExtProcClient(p.address);
    try {
      const answer = await new Promise<ProcessingResponse>((resolve, reject) => {
        const call = client.Process();
        call.on('data', (r: ProcessingResponse) => {
          resolve(r);
          call.end();
        });
        call.on('error', reject);
        call.write({ request_headers: { headers: { headers: [] }, end_of_stream: true } } as ProcessingRequest);
      });
      assert.equal(answer.response, 'request_headers');
      assert.equal(p.streams(), 2, 'refused once, retried transparently');
    } finally {
      client.close();
      await p.close();
    }
  });
});
