/**
 * Conformance tests of the network Envoy stand-in (network-stand-in.ts) against docs/envoy-behaviour.md C.2 and its
 * Appendix. Real clients over real TCP: a node:net client, the stand-in, a node:net upstream (a toy line protocol or
 * driven by the test), and a grpc-js NetworkExternalProcessor whose answers the test scripts.
 *
 * Every wait is for an event (bytes seen, FIN, reset, a counter reaching a value), never a sleep; assertions do not
 * depend on how TCP splits the bytes (transforms are per byte, or the test waits for the processor to have seen a
 * chunk before writing the next). Where an answer must beat a message timer (a timer that *should* fire), the timer is
 * 1 s against a loopback round trip of well under a millisecond.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { parse, stringify } from 'yaml';
import { networkExtProcServiceDefinition } from '../../extproc/envoy-api/index.ts';
import type { NetworkProcessingRequest, NetworkProcessingResponse } from '../../extproc/envoy-api/index.ts';
import { ManualClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { echoResponse, startNetworkEchoProcessor, startNetworkProcessor } from './network-echo-processor.ts';
import type { RunningNetworkProcessor } from './network-echo-processor.ts';
import { startNetworkStandIn } from './network-stand-in.ts';
import type { NetworkEnvoyStandIn } from './network-stand-in.ts';
import { loadNetworkExtProcSettings } from './network-stand-in-config.ts';
import type { NetworkSettingsOverrides } from './network-stand-in-config.ts';

const CONFIG = new URL('../../envoy/portcullis.yaml', import.meta.url).pathname;
const T = { timeout: 20_000 };
/**
 * The message timer of the tests about which timers are armed: they run the stand-in on a ManualClock and move it by
 * this much once the answers they wait for have arrived, so no answer races the timer on a loaded machine.
 */
const TIMER_MS = 1000;

// ------------------------------------------------------------------------------------------------ waiting on events

/** Something that changes; `until(pred)` resolves once pred() holds (checked now and on every change). */
class Changes {
  private readonly waiters = new Set<() => void>();

  changed(): void {
    for (const w of [...this.waiters]) w();
  }

  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (!pred()) return;
        this.waiters.delete(w);
        resolve();
      };
      this.waiters.add(w);
    });
  }
}

/** What one end of a TCP connection saw. */
class Peer extends Changes {
  data = '';
  /** FIN received. */
  ended = false;
  closed = false;
  error: string | undefined;

  constructor(readonly socket: net.Socket) {
    super();
    socket.on('data', (c: Buffer) => {
      this.data += c.toString('latin1');
      this.changed();
    });
    socket.on('end', () => {
      this.ended = true;
      this.changed();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e.code ?? e.message;
      this.changed();
    });
    socket.on('close', () => {
      this.closed = true;
      this.changed();
    });
  }

  has(s: string): Promise<void> {
    return this.until(() => this.data.includes(s));
  }
}

/** A client as psql or a line-protocol client behaves: it closes its side when the server's FIN arrives. */
function connectClient(port: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const p = new Peer(s);
    s.once('connect', () => resolve(p));
    s.once('error', reject);
  });
}

// ------------------------------------------------------------------------------------------------ upstream

/** A TCP upstream. 'lineEcho' answers each line L with "echo:L\n"; 'manual' leaves the talking to the test. */
class Upstream extends Changes {
  readonly conns: Peer[] = [];
  port = 0;
  private readonly server: net.Server;

  constructor(mode: 'lineEcho' | 'manual') {
    super();
    this.server = net.createServer({ allowHalfOpen: true }, (s) => {
      const p = new Peer(s);
      this.conns.push(p);
      if (mode === 'lineEcho') {
        let pending = '';
        s.on('data', (c: Buffer) => {
          pending += c.toString('latin1');
          for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
            s.write(`echo:${pending.slice(0, i)}\n`);
            pending = pending.slice(i + 1);
          }
        });
        s.on('end', () => s.end());
      }
      this.changed();
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async conn(i = 0): Promise<Peer> {
    await this.until(() => this.conns.length > i);
    return this.conns[i];
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------------------------------------ scripted processor

/** One Process stream as the processor sees it; a slot that exists before the stream opens (bound when it does). */
class ProcStream extends Changes {
  readonly requests: NetworkProcessingRequest[] = [];
  /** 'half-close', 'cancelled'. */
  readonly events: string[] = [];
  readBytes = '';
  writeBytes = '';
  call!: grpc.ServerDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>;
  private consumed = 0;

  /** The next request not yet taken. */
  async next(): Promise<NetworkProcessingRequest> {
    await this.until(() => this.requests.length > this.consumed);
    return this.requests[this.consumed++];
  }

  reply(...rs: NetworkProcessingResponse[]): void {
    for (const r of rs) this.call.write(r);
  }

  fail(code: grpc.status): void {
    this.call.emit('error', { code, details: 'scripted failure', metadata: new grpc.Metadata() });
  }
}

/** Answers with `handler` when given, else queues requests for the test to answer through its ProcStream. */
class ScriptedProcessor extends Changes {
  private readonly slots: ProcStream[] = [];
  private opened = 0;
  handler: ((req: NetworkProcessingRequest, s: ProcStream) => void) | undefined;
  server!: RunningNetworkProcessor;

  async start(): Promise<void> {
    this.server = await startNetworkProcessor({
      Process: (call) => {
        const s = this.slot(this.opened++);
        s.call = call;
        call.on('data', (req: NetworkProcessingRequest) => {
          if (req.read_data) s.readBytes += Buffer.from(req.read_data.data ?? []).toString('latin1');
          if (req.write_data) s.writeBytes += Buffer.from(req.write_data.data ?? []).toString('latin1');
          s.requests.push(req);
          this.handler?.(req, s);
          s.changed();
        });
        call.on('end', () => {
          s.events.push('half-close');
          s.changed();
        });
        call.on('cancelled', () => {
          s.events.push('cancelled');
          s.changed();
        });
        call.on('error', () => {});
        this.changed();
      },
    });
  }

  /** The i-th stream, whether or not it has opened yet. */
  slot(i: number): ProcStream {
    while (this.slots.length <= i) this.slots.push(new ProcStream());
    return this.slots[i];
  }

  /** The first stream (opens with the connection's first chunk). */
  stream0(): ProcStream {
    return this.slot(0);
  }

  /** Resolves once the i-th stream has opened. */
  async stream(i = 0): Promise<ProcStream> {
    await this.until(() => this.opened > i);
    return this.slot(i);
  }
}

function text(d: { data?: Buffer | Uint8Array } | undefined): string {
  return Buffer.from(d?.data ?? []).toString('latin1');
}

function read(s: string, eos = false): NetworkProcessingResponse {
  return { read_data: { data: Buffer.from(s, 'latin1'), end_of_stream: eos } };
}

function write(s: string, eos = false): NetworkProcessingResponse {
  return { write_data: { data: Buffer.from(s, 'latin1'), end_of_stream: eos } };
}

// ------------------------------------------------------------------------------------------------ rig

interface Rig {
  proc: ScriptedProcessor;
  up: Upstream;
  envoy: NetworkEnvoyStandIn;
  client(): Promise<Peer>;
}

async function rig(
  t: TestContext,
  opts: {
    overrides?: NetworkSettingsOverrides;
    upstream?: 'lineEcho' | 'manual';
    handler?: ScriptedProcessor['handler'];
    config?: string;
    clock?: Clock;
  } = {},
): Promise<Rig> {
  const proc = new ScriptedProcessor();
  proc.handler = opts.handler;
  await proc.start();
  const up = new Upstream(opts.upstream ?? 'manual');
  await up.start();
  const envoy = await startNetworkStandIn({
    config: opts.config,
    processorAddress: proc.server.address,
    upstream: { host: '127.0.0.1', port: up.port },
    overrides: opts.overrides,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const clients: Peer[] = [];
  t.after(async () => {
    for (const c of clients) c.socket.destroy();
    await envoy.close();
    await up.close();
    await proc.server.close();
  });
  return {
    proc,
    up,
    envoy,
    client: async () => {
      const c = await connectClient(envoy.port);
      clients.push(c);
      return c;
    },
  };
}

/** Per-byte transforms, so results do not depend on how TCP splits the bytes. */
const triple = (s: string) => [...s].map((ch) => (ch === '\n' ? ch : ch.repeat(3))).join('');
const upper = (s: string) => s.toUpperCase();

// ------------------------------------------------------------------------------------------------ settings

test('settings come from the postgres listener of envoy/portcullis.yaml', () => {
  const s = loadNetworkExtProcSettings(CONFIG, 'postgres');
  assert.deepEqual(s, {
    statPrefix: 'postgres',
    failureModeAllow: false,
    processRead: 'STREAMED',
    processWrite: 'STREAMED',
    messageTimeoutMs: 0,
    initialMetadata: [['x-portcullis-target', 'pg-app']],
    idleTimeoutMs: 3_600_000,
    writeTimerBug: false,
  });
  assert.throws(() => loadNetworkExtProcSettings(CONFIG, 'ssh'), /no envoy\.filters\.network\.ext_proc filter/);
});

// ------------------------------------------------------------------------------------------------ data path

test('echo processor: bytes unchanged both ways, one gRPC stream per TCP connection', T, async (t) => {
  const echo = await startNetworkEchoProcessor();
  const up = new Upstream('lineEcho');
  await up.start();
  const envoy = await startNetworkStandIn({
    processorAddress: echo.address,
    upstream: { host: '127.0.0.1', port: up.port },
  });
  t.after(async () => {
    await envoy.close();
    await up.close();
    await echo.close();
  });

  for (const word of ['one', 'two']) {
    const c = await connectClient(envoy.port);
    c.socket.write(`${word}\n`);
    await c.has(`echo:${word}\n`);
    c.socket.end(); // FIN → read_data end_of_stream → upstream FIN → lineEcho ends → write_data end_of_stream → FIN
    await c.until(() => c.ended);
    assert.equal(c.data, `echo:${word}\n`);
    assert.equal(c.error, undefined);
  }
  assert.equal(envoy.counters.get('streams_started'), 2);
  assert.ok(envoy.counters.get('read_data_sent') >= 4); // ≥ 1 chunk + the end of stream, per connection
  assert.equal(envoy.counters.get('read_data_injected'), envoy.counters.get('read_data_sent'));
  assert.equal(envoy.counters.get('write_data_injected'), envoy.counters.get('write_data_sent'));
  assert.equal(envoy.counters.get('connections_closed'), 0);
});

test('timeRoundTrips: one round trip per answered message, in both directions, taken once', T, async (t) => {
  const echo = await startNetworkEchoProcessor();
  const up = new Upstream('lineEcho');
  await up.start();
  const upstream = { host: '127.0.0.1', port: up.port };
  const timed = await startNetworkStandIn({ processorAddress: echo.address, upstream, timeRoundTrips: true });
  const untimed = await startNetworkStandIn({ processorAddress: echo.address, upstream });
  t.after(async () => {
    await timed.close();
    await untimed.close();
    await up.close();
    await echo.close();
  });

  for (const envoy of [timed, untimed]) {
    const c = await connectClient(envoy.port);
    c.socket.write('one\n');
    await c.has('echo:one\n');
    c.socket.end();
    await c.until(() => c.ended);
  }
  const trips = timed.roundTrips();
  const answered = timed.counters.get('read_data_injected') + timed.counters.get('write_data_injected');
  assert.ok(answered >= 3); // the line, the client's end of stream, the echo (and its end of stream)
  assert.equal(trips.length, answered);
  for (const ms of trips) assert.ok(ms >= 0 && ms < 20_000);
  assert.deepEqual(timed.roundTrips(), []);
  assert.deepEqual(untimed.roundTrips(), []);
});

test('bytes rewritten both ways: grow, shrink, drop', T, async (t) => {
  const dropping = { read: false, write: false };
  const r = await rig(t, {
    handler: (req, s) => {
      if (req.read_data)
        s.reply(read(dropping.read ? '' : triple(text(req.read_data)))); // grow (or drop)
      else s.reply(write(dropping.write ? '' : text(req.write_data).replaceAll('h', ''))); // shrink (or drop)
    },
  });
  const c = await r.client();
  const u = await r.up.conn();

  c.socket.write('hi\n');
  const s = await r.proc.stream();
  await u.has('hhhiii\n');
  u.socket.write('echo:hhhiii\n');
  await c.has('eco:iii\n');

  dropping.read = true;
  c.socket.write('zz\n');
  await s.until(() => s.readBytes.endsWith('zz\n')); // every chunk of it answered (empty) by now
  dropping.read = false;
  c.socket.write('ok\n');
  await u.has('oookkk\n');
  assert.equal(u.data, 'hhhiii\noookkk\n');

  dropping.write = true;
  u.socket.write('secret\n');
  await s.until(() => s.writeBytes.endsWith('secret\n'));
  dropping.write = false;
  u.socket.write('pub\n');
  await c.has('pub\n');
  assert.equal(c.data, 'eco:iii\npub\n');
});

test('pipelined chunks: answers applied in order, per direction, with both directions in flight', T, async (t) => {
  const r = await rig(t);
  const c = await r.client();
  const u = await r.up.conn();
  const stream = r.proc.stream(); // opens with the first chunk

  // Each byte is written after the processor saw the previous one, so each is its own chunk.
  const reads: NetworkProcessingRequest[] = [];
  const writes: NetworkProcessingRequest[] = [];
  for (const [sock, b, list] of [
    [c, 'a', reads],
    [u, 'x', writes],
    [c, 'b', reads],
    [u, 'y', writes],
    [c, 'c', reads],
    [u, 'z', writes],
  ] as const) {
    sock.socket.write(b);
    list.push(await (await stream).next());
  }
  const s = await stream;
  assert.deepEqual(
    reads.map((q) => [text(q.read_data), q.read_data?.end_of_stream ?? false]),
    [
      ['a', false],
      ['b', false],
      ['c', false],
    ],
  );
  assert.deepEqual(
    writes.map((q) => text(q.write_data)),
    ['x', 'y', 'z'],
  );
  assert.equal(r.envoy.counters.get('stream_msgs_received'), 0);

  // Interleaved answers; within a direction, in order: grow, drop, grow.
  s.reply(read('A1'), write('X'), read(''), write('YY'), read('CCC'), write(''));
  await r.envoy.counters.reach('stream_msgs_received', 6);
  await u.has('CCC');
  await c.has('YY');
  assert.equal(u.data, 'A1CCC');
  assert.equal(c.data, 'XYY');
  assert.equal(r.envoy.counters.get('stream_msgs_sent'), 6);
  assert.equal(r.envoy.counters.get('stream_msgs_received'), 6);
});

test(
  "end_of_stream: the answer's flag half-closes; the gRPC stream is not half-closed on end_of_stream",
  T,
  async (t) => {
    const r = await rig(t);
    const c = await r.client();
    const u = await r.up.conn();
    const s = r.proc.stream0();

    c.socket.end('bye');
    let q = await s.next();
    while (!q.read_data?.end_of_stream) {
      s.reply(read(text(q.read_data)));
      q = await s.next();
    }
    s.reply(read(text(q.read_data), true));
    await u.until(() => u.ended);
    assert.equal(u.data, 'bye');

    // Still the same stream, still open toward the processor: the write direction goes on.
    u.socket.end('ciao');
    q = await s.next();
    while (!q.write_data?.end_of_stream) {
      s.reply(write(text(q.write_data)));
      q = await s.next();
    }
    assert.deepEqual(s.events, []);
    s.reply(write(text(q.write_data), true));
    await c.until(() => c.ended && c.closed);
    assert.equal(c.data, 'ciao');
    assert.equal(c.error, undefined);
    // At the end: half-close, then cancel.
    await s.until(() => s.events.includes('cancelled'));
    assert.equal(r.envoy.counters.get('streams_started'), 1);
    assert.equal(r.envoy.counters.get('streams_closed'), 1);
  },
);

test('process_write SKIP: upstream bytes pass untouched, reads are still processed', T, async (t) => {
  const r = await rig(t, {
    overrides: { processWrite: 'SKIP' },
    upstream: 'lineEcho',
    handler: (req, s) => s.reply(req.read_data ? read(upper(text(req.read_data))) : write('NEVER')),
  });
  const c = await r.client();
  c.socket.write('hi\n');
  await c.has('echo:HI\n');
  const s = await r.proc.stream();
  assert.ok(s.requests.every((q) => q.read_data && !q.write_data));
  assert.equal(r.envoy.counters.get('write_data_sent'), 0);
});

test('a response with both read_data and write_data applies only read_data', T, async (t) => {
  const r = await rig(t, {
    handler: (req, s) => {
      if (req.read_data) s.reply({ ...read(upper(text(req.read_data))), ...write('INJECTED\n') });
      else s.reply(echoResponse(req));
    },
  });
  const c = await r.client();
  const u = await r.up.conn();
  c.socket.write('q\n');
  await u.has('Q\n');
  u.socket.write('resp\n');
  await c.has('resp\n');
  assert.equal(c.data, 'resp\n'); // INJECTED would have come first
  assert.equal(r.envoy.counters.get('read_data_injected'), r.envoy.counters.get('read_data_sent'));
});

test('initial_metadata of grpc_service arrives at the processor as gRPC metadata', T, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'net-stand-in-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = parse(readFileSync(CONFIG, 'utf8'));
  const pg = cfg.static_resources.listeners.find((l: { name: string }) => l.name === 'postgres');
  const ep = pg.filter_chains[0].filters.find((f: { name: string }) => f.name === 'envoy.filters.network.ext_proc');
  ep.typed_config.grpc_service.initial_metadata = [{ key: 'x-portcullis-target', value: 'pg-dev' }];
  const file = join(dir, 'envoy.yaml');
  writeFileSync(file, stringify(cfg));

  const r = await rig(t, { config: file, upstream: 'lineEcho', handler: (req, s) => s.reply(echoResponse(req)) });
  assert.deepEqual(r.envoy.settings.initialMetadata, [['x-portcullis-target', 'pg-dev']]);
  const c = await r.client();
  c.socket.write('m\n');
  await c.has('echo:m\n');
  const s = await r.proc.stream();
  assert.deepEqual(s.call.metadata.get('x-portcullis-target'), ['pg-dev']);
});

// ------------------------------------------------------------------------------------------------ connection_status

test("CLOSE: the response's bytes are discarded, the client gets what was written before and a FIN", T, async (t) => {
  const r = await rig(t);
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();

  u.socket.write('bye');
  const w = await s.next();
  c.socket.write('q');
  await s.next();
  s.reply(write(upper(text(w.write_data))), { ...read('SHOULD-NOT-ARRIVE'), connection_status: 'CLOSE' });
  await c.until(() => c.ended);
  assert.equal(c.data, 'BYE');
  assert.equal(c.error, undefined);
  await u.until(() => u.ended);
  assert.equal(u.data, '');
  await s.until(() => s.events.includes('cancelled'));
  assert.equal(r.envoy.counters.get('connections_closed'), 1);
  assert.equal(r.envoy.counters.get('connections_reset'), 0);
});

test('CLOSE_RST: the client connection is reset, the bytes are discarded', T, async (t) => {
  const r = await rig(t);
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  c.socket.write('q');
  await s.next();
  s.reply({ ...read('SHOULD-NOT-ARRIVE'), connection_status: 'CLOSE_RST' });
  await c.until(() => c.closed);
  assert.equal(c.error, 'ECONNRESET');
  await u.until(() => u.ended);
  assert.equal(u.data, '');
  assert.equal(r.envoy.counters.get('connections_reset'), 1);
  assert.equal(r.envoy.counters.get('connections_closed'), 1);
});

// ------------------------------------------------------------------------------------------------ stream ends

test('server closes the stream with OK: the rest of the connection passes through unprocessed', T, async (t) => {
  const r = await rig(t);
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  c.socket.write('one\n');
  await s.until(() => s.readBytes === 'one\n');
  s.reply(read('ONE\n'));
  s.call.end();
  await r.envoy.counters.reach('streams_grpc_close');
  c.socket.write('two\n');
  await u.has('two\n');
  assert.equal(u.data, 'ONE\ntwo\n');
  u.socket.write('three\n');
  await c.has('three\n');
  assert.equal(c.data, 'three\n');
  assert.equal(s.requests.length, 1);
  assert.equal(r.envoy.counters.get('failure_mode_allowed'), 0);
});

test('gRPC error: the connection is closed (fail closed)', T, async (t) => {
  const r = await rig(t);
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  c.socket.write('q\n');
  await s.next();
  s.fail(grpc.status.INTERNAL);
  await c.until(() => c.ended && c.closed);
  assert.equal(c.data, '');
  assert.equal(c.error, undefined);
  await u.until(() => u.ended);
  assert.equal(u.data, '');
  assert.equal(r.envoy.counters.get('streams_grpc_error'), 1);
  assert.equal(r.envoy.counters.get('connections_closed'), 1);
  assert.equal(r.envoy.counters.get('failure_mode_allowed'), 0);
});

test('gRPC error with failure_mode_allow: chunks in flight are lost, then bytes pass through', T, async (t) => {
  const r = await rig(t, { overrides: { failureModeAllow: true } });
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  c.socket.write('lost\n');
  await s.until(() => s.readBytes === 'lost\n');
  s.fail(grpc.status.UNAVAILABLE);
  await r.envoy.counters.reach('failure_mode_allowed');
  c.socket.write('raw\n');
  await u.has('raw\n');
  assert.equal(u.data, 'raw\n');
  u.socket.write('back\n');
  await c.has('back\n');
  assert.equal(c.data, 'back\n');
  assert.equal(r.envoy.counters.get('streams_grpc_error'), 1);
  assert.equal(r.envoy.counters.get('connections_closed'), 0);
});

test(
  'no retry: a refused stream is one attempt and closes the connection; an unreachable processor too',
  T,
  async (t) => {
    // An HTTP/2 server that refuses every stream (REFUSED_STREAM), as a gRPC server going away does.
    let streams = 0;
    const h2 = http2.createServer();
    h2.on('stream', (st) => {
      streams++;
      st.on('error', () => {
        /* the refusal itself */
      });
      st.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const h2Port = (h2.address() as AddressInfo).port;
    const up = new Upstream('manual');
    await up.start();
    const envoy = await startNetworkStandIn({
      processorAddress: `127.0.0.1:${h2Port}`,
      upstream: { host: '127.0.0.1', port: up.port },
    });
    // A port nothing listens on.
    const dead = net.createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const envoyDead = await startNetworkStandIn({
      processorAddress: `127.0.0.1:${deadPort}`,
      upstream: { host: '127.0.0.1', port: up.port },
    });
    t.after(async () => {
      await envoy.close();
      await envoyDead.close();
      await up.close();
      h2.close();
    });

    // Control: grpc-js's default client retries a refused stream by itself, which Envoy's client does not.
    const Ctor = grpc.makeGenericClientConstructor(networkExtProcServiceDefinition(), 'NetworkExternalProcessor');
    const retrying = new Ctor(`127.0.0.1:${h2Port}`, grpc.credentials.createInsecure()) as unknown as {
      Process(): grpc.ClientDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>;
      close(): void;
    };
    const call = retrying.Process();
    call.on('error', () => {});
    call.write(read('x'));
    await new Promise((resolve) => call.on('status', resolve));
    retrying.close();
    assert.equal(streams, 2, 'control: the default grpc-js client retried once');

    streams = 0;
    const c = await connectClient(envoy.port);
    t.after(() => c.socket.destroy());
    c.socket.write('q\n');
    await c.until(() => c.ended && c.closed);
    assert.equal(streams, 1);
    assert.equal(envoy.counters.get('streams_grpc_error'), 1);
    assert.equal(envoy.counters.get('connections_closed'), 1);

    const c2 = await connectClient(envoyDead.port);
    t.after(() => c2.socket.destroy());
    c2.socket.write('q\n');
    await c2.until(() => c2.ended && c2.closed);
    assert.equal(envoyDead.counters.get('streams_grpc_error'), 1);
    await up.until(() => up.conns.length === 2 && up.conns.every((p) => p.ended));
    assert.ok(up.conns.every((p) => p.data === ''));
  },
);

// ------------------------------------------------------------------------------------------------ timers

test('message timeout: an unanswered chunk closes the connection', T, async (t) => {
  // The timer runs out only once the chunk has reached the processor: on a loaded machine a real 50 ms timer could
  // cancel the stream before the processor ever saw it.
  const clock = new ManualClock();
  const r = await rig(t, { overrides: { messageTimeoutMs: 50 }, clock });
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  c.socket.write('q');
  await s.next();
  clock.advance(50);
  await c.until(() => c.ended && c.closed);
  assert.equal(c.error, undefined);
  await u.until(() => u.ended);
  assert.equal(u.data, '');
  assert.equal(r.envoy.counters.get('message_timeouts'), 1);
  assert.equal(r.envoy.counters.get('connections_closed'), 1);
  await s.until(() => s.events.includes('cancelled'));
});

test('message timeout with failure_mode_allow: the chunk in flight is lost, then bytes pass through', T, async (t) => {
  const r = await rig(t, { overrides: { messageTimeoutMs: 50, failureModeAllow: true } });
  const c = await r.client();
  const u = await r.up.conn();
  c.socket.write('lost');
  await r.envoy.counters.reach('message_timeouts');
  c.socket.write('raw');
  await u.has('raw');
  assert.equal(u.data, 'raw');
  assert.equal(r.envoy.counters.get('failure_mode_allowed'), 1);
});

test('one timer per direction: a read answer does not stop the write timer', T, async (t) => {
  const clock = new ManualClock();
  const r = await rig(t, { overrides: { messageTimeoutMs: TIMER_MS }, clock });
  const c = await r.client();
  const u = await r.up.conn();
  const s = r.proc.stream0();
  u.socket.write('banner'); // never answered
  await s.next();
  c.socket.write('r');
  const q = await s.next();
  s.reply(read(text(q.read_data)));
  await u.has('r');
  clock.advance(TIMER_MS);
  assert.equal(r.envoy.counters.get('message_timeouts'), 1, 'the write timer was still armed');
  await c.until(() => c.ended && c.closed);
  assert.equal(c.data, '');
  assert.equal(r.envoy.counters.get('message_timeouts'), 1);
});

test('a response with neither read_data nor write_data is counted empty and does not stop the timer', T, async (t) => {
  const clock = new ManualClock();
  const r = await rig(t, { overrides: { messageTimeoutMs: TIMER_MS }, clock });
  const c = await r.client();
  const s = r.proc.stream0();
  c.socket.write('q');
  await s.next();
  s.reply({ data_processing_status: 'MODIFIED' });
  await r.envoy.counters.reach('empty_response_received');
  clock.advance(TIMER_MS);
  assert.equal(r.envoy.counters.get('message_timeouts'), 1, 'the read timer was still armed');
  await c.until(() => c.ended && c.closed);
});

test('message_timeout 0: no timer at all', T, async (t) => {
  // A control stand-in with a 400 ms timer on the same clock, moved once both chunks reached their processors: when
  // the control's timer fires, any timer of ≤ 400 ms (the 200 ms default, or "0 fires at once") on the zero one does too.
  const clock = new ManualClock();
  const zero = await rig(t, { overrides: { messageTimeoutMs: 0 }, clock });
  const control = await rig(t, { overrides: { messageTimeoutMs: 400 }, clock });
  const c0 = await zero.client();
  const u0 = await zero.up.conn();
  const s0 = zero.proc.stream0();
  c0.socket.write('a');
  const q = await s0.next();
  const c1 = await control.client();
  c1.socket.write('b');
  await control.proc.stream0().next();
  clock.advance(400);
  await c1.until(() => c1.closed);
  assert.equal(control.envoy.counters.get('message_timeouts'), 1);
  assert.equal(zero.envoy.counters.get('message_timeouts'), 0);
  s0.reply(read(upper(text(q.read_data))));
  await u0.has('A');
  assert.equal(c0.ended, false);
});

test(
  'write-timer bug switch (Envoy before #43167): a pause after a server→client chunk closes the connection',
  T,
  async (t) => {
    const echo: ScriptedProcessor['handler'] = (req, s) => s.reply(echoResponse(req));
    const opts = { upstream: 'lineEcho' as const, handler: echo };
    // One clock for both, moved once every answer has arrived: a timer either one left armed then fires.
    const clock = new ManualClock();
    const fixed = await rig(t, { ...opts, overrides: { messageTimeoutMs: TIMER_MS }, clock });
    const buggy = await rig(t, { ...opts, overrides: { messageTimeoutMs: TIMER_MS, writeTimerBug: true }, clock });

    const cf = await fixed.client();
    cf.socket.write('ping\n');
    await cf.has('echo:ping\n');
    const cb = await buggy.client();
    cb.socket.write('ping\n');
    await cb.has('echo:ping\n');
    clock.advance(TIMER_MS);
    await cb.until(() => cb.ended && cb.closed);
    assert.equal(cb.data, 'echo:ping\n');
    assert.equal(buggy.envoy.counters.get('message_timeouts'), 1);

    assert.equal(fixed.envoy.counters.get('message_timeouts'), 0);
    cf.socket.write('again\n');
    await cf.has('echo:again\n');
    assert.equal(cf.ended, false);
  },
);

// ------------------------------------------------------------------------------------------------ held closes

test(
  'a client reset while a read answer is outstanding: the answer still reaches the upstream, then it is closed',
  T,
  async (t) => {
    const r = await rig(t);
    const c = await r.client();
    const u = await r.up.conn();
    const s = r.proc.stream0();
    c.socket.write('last');
    const q = await s.next();
    const remoteClose = once(r.envoy.events, 'downstreamRemoteClose');
    c.socket.resetAndDestroy();
    await remoteClose;
    s.reply(read(upper(text(q.read_data))));
    await u.until(() => u.ended);
    assert.equal(u.data, 'LAST');
  },
);

test(
  'an upstream reset while a write answer is outstanding: the client still gets the answer, then a FIN',
  T,
  async (t) => {
    const r = await rig(t);
    const c = await r.client();
    const u = await r.up.conn();
    const s = r.proc.stream0();
    u.socket.write('bye');
    const q = await s.next();
    const remoteClose = once(r.envoy.events, 'upstreamRemoteClose');
    u.socket.resetAndDestroy();
    await remoteClose;
    s.reply(write(upper(text(q.write_data))));
    await c.until(() => c.ended);
    assert.equal(c.data, 'BYE');
    assert.equal(c.error, undefined);
  },
);
