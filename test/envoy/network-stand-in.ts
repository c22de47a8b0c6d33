/**
 * THE NETWORK ENVOY STAND-IN — test code only, never in the product's data path. A plain-TCP proxy that plays a TCP
 * listener of envoy/portcullis.yaml (default: `postgres`): Envoy's network filter manager (close held back while a
 * filter has answers outstanding) → the network ext_proc filter (`envoy.filters.network.ext_proc`, alpha, Envoy ≥ 1.36)
 * → `tcp_proxy` to one upstream. Behaviour as docs/envoy-behaviour.md C.2 and its Appendix describe it, read from
 * Envoy's source/extensions/filters/network/ext_proc/ext_proc.cc (function names are given below so the two can be
 * compared). Settings come from the same YAML a real Envoy loads. See README.md for what is and is not implemented.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { networkExtProcServiceDefinition } from '../../extproc/envoy-api/index.ts';
import type { NetworkProcessingRequest, NetworkProcessingResponse } from '../../extproc/envoy-api/index.ts';
import { realClock } from './clock.ts';
import type { Clock, Disarm } from './clock.ts';
import { loadNetworkExtProcSettings } from './network-stand-in-config.ts';
import type { NetworkExtProcSettings, NetworkSettingsOverrides } from './network-stand-in-config.ts';

// ------------------------------------------------------------------------------------------------ counters

/**
 * Envoy's counter names for the network filter (ALL_NETWORK_EXT_PROC_FILTER_STATS in ext_proc.h; Envoy prefixes them
 * with network_ext_proc.<stat_prefix>.). `new_connection_sent` (process_new_connection, newer than the project's
 * proto) is left out.
 */
export const NETWORK_EXT_PROC_COUNTERS = [
  'streams_started',
  'stream_msgs_sent',
  'stream_msgs_received',
  'read_data_sent',
  'write_data_sent',
  'read_data_injected',
  'write_data_injected',
  'empty_response_received',
  'spurious_msgs_received',
  'streams_closed',
  'streams_grpc_error',
  'streams_grpc_close',
  'connections_closed',
  'failure_mode_allowed',
  'stream_open_failures',
  'connections_reset',
  'message_timeouts',
] as const;

export type NetworkCounterName = (typeof NETWORK_EXT_PROC_COUNTERS)[number];

/**
 * Same shape as counters.ts's `Counters` (inc/get/snapshot), which is typed to the HTTP filter's names. Also an
 * EventEmitter ('inc', name, value) so tests can wait for a counter instead of sleeping: `await counters.reach(n, v)`.
 */
export class NetworkCounters extends EventEmitter {
  private readonly values = new Map<NetworkCounterName, number>();

  inc(name: NetworkCounterName): void {
    const v = (this.values.get(name) ?? 0) + 1;
    this.values.set(name, v);
    this.emit('inc', name, v);
  }

  get(name: NetworkCounterName): number {
    return this.values.get(name) ?? 0;
  }

  /** All counters, zeros included. */
  snapshot(): Record<NetworkCounterName, number> {
    return Object.fromEntries(NETWORK_EXT_PROC_COUNTERS.map((n) => [n, this.get(n)])) as Record<
      NetworkCounterName,
      number
    >;
  }

  /** Resolves once counter `name` is at least `value`. */
  reach(name: NetworkCounterName, value = 1): Promise<void> {
    if (this.get(name) >= value) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (n: NetworkCounterName, v: number) => {
        if (n === name && v >= value) {
          this.off('inc', on);
          resolve();
        }
      };
      this.on('inc', on);
    });
  }
}

// ------------------------------------------------------------------------------------------------ public API

export interface NetworkStandInOptions {
  /** Bootstrap YAML (default envoy/portcullis.yaml). */
  config?: string;
  /** TCP listener whose network ext_proc filter and tcp_proxy to play (default 'postgres'). */
  listener?: string;
  /** host:port of the NetworkExternalProcessor. */
  processorAddress: string;
  /** Where tcp_proxy connects (the cluster's one endpoint). */
  upstream: { host: string; port: number };
  /** Test-only changes to the settings read from the YAML (e.g. a short message_timeout, writeTimerBug). */
  overrides?: NetworkSettingsOverrides;
  /** What the message timers run on: the real clock unless a test about them moves its own. */
  clock?: Clock;
  /**
   * Time each message's round trip to the processor (from the request written to its answer received), for
   * benchmarks: roundTrips() returns them. Envoy keeps no such figure for the network filter; off by default.
   */
  timeRoundTrips?: boolean;
}

/** How a connection was closed: Envoy's ConnectionCloseType FlushWrite / NoFlush / AbortReset. */
export type CloseType = 'flush' | 'noflush' | 'reset';

/**
 * Events for tests to wait on (the stand-in's own, not Envoy's): 'downstreamRemoteClose' and 'upstreamRemoteClose'
 * when a peer closes (Envoy's RemoteClose), 'closed' ({ local, type }) when the downstream connection is finally
 * closed (after any held-back close was released).
 */
export interface NetworkEnvoyStandIn {
  port: number;
  counters: NetworkCounters;
  settings: NetworkExtProcSettings;
  events: EventEmitter;
  /** The round trips (ms) timed since the last call, in the order answered; empty unless timeRoundTrips is set. */
  roundTrips(): number[];
  close(): Promise<void>;
}

const DEFAULT_CONFIG = new URL('../../envoy/portcullis.yaml', import.meta.url).pathname;

interface NetworkProcessClient extends grpc.Client {
  Process(
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>;
}

/** Envoy's gRPC client does no transparent retries (docs/envoy-behaviour.md B.15): the stand-in's must not either. */
function newNoRetryClient(address: string): NetworkProcessClient {
  const Ctor = grpc.makeGenericClientConstructor(networkExtProcServiceDefinition(), 'NetworkExternalProcessor');
  return new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.enable_retries': 0,
  }) as unknown as NetworkProcessClient;
}

export async function startNetworkStandIn(opts: NetworkStandInOptions): Promise<NetworkEnvoyStandIn> {
  const settings = loadNetworkExtProcSettings(
    opts.config ?? DEFAULT_CONFIG,
    opts.listener ?? 'postgres',
    opts.overrides,
  );
  const counters = new NetworkCounters();
  const events = new EventEmitter();
  const client = newNoRetryClient(opts.processorAddress);
  const conns = new Set<Connection>();
  const ctx: Ctx = {
    settings,
    counters,
    events,
    client,
    upstream: opts.upstream,
    clock: opts.clock ?? realClock,
    roundTrips: opts.timeRoundTrips ? [] : null,
  };
  // pauseOnConnect: tcp_proxy keeps downstream reads disabled until the upstream connection is up.
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const c = new Connection(ctx, socket);
    conns.add(c);
    socket.on('close', () => conns.delete(c));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    counters,
    settings,
    events,
    roundTrips: () => (ctx.roundTrips === null ? [] : ctx.roundTrips.splice(0)),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) c.destroy();
      await closed;
      client.close();
    },
  };
}

interface Ctx {
  settings: NetworkExtProcSettings;
  counters: NetworkCounters;
  events: EventEmitter;
  client: NetworkProcessClient;
  upstream: { host: string; port: number };
  clock: Clock;
  /** Round trips timed so far (ms), or null when not timed. */
  roundTrips: number[] | null;
}

// ------------------------------------------------------------------------------------------------ the filter

type FilterStatus = 'Continue' | 'StopIteration';

/** What the filter needs from the connection (Envoy's ReadFilterCallbacks / WriteFilterCallbacks). */
interface FilterCallbacks {
  injectReadDataToFilterChain(data: Buffer, endStream: boolean): void;
  injectWriteDataToFilterChain(data: Buffer, endStream: boolean): void;
  disableClose(dir: 'read' | 'write', disable: boolean): void;
  close(type: CloseType): void;
}

/** The message received from grpc-js: absent message fields may be null. */
type Received = { [K in keyof NetworkProcessingResponse]?: NetworkProcessingResponse[K] | null };

/** One connection's NetworkExtProcFilter (ext_proc.cc), its MessageTimeoutManager included. */
class NetworkExtProcFilter {
  private call: grpc.ClientDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse> | undefined;
  /** ProcessorStreamImpl::stream_closed_: set by our close() and by the server's close. */
  private streamClosed = false;
  /** processing_complete_ */
  private complete = false;
  private readPending = false;
  private writePending = false;
  /** When each message awaiting its answer was sent, per direction (only when round trips are timed). */
  private readonly readSentAt: number[] = [];
  private readonly writeSentAt: number[] = [];
  private readonly timers: { read?: Disarm; write?: Disarm } = {};
  /** closeStream() resets timeout_manager_: no timer is ever started again. */
  private timersGone = false;
  private disableCountRead = 0;
  private disableCountWrite = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly cb: FilterCallbacks,
  ) {}

  /** onData: a downstream read (client → upstream). */
  onData(data: Buffer, endStream: boolean): FilterStatus {
    if (this.ctx.settings.processRead === 'SKIP') return 'Continue';
    if (!this.openStream()) return 'Continue';
    this.sendRequest(data, endStream, true);
    return 'StopIteration';
  }

  /** onWrite: a write toward the downstream (upstream → client). */
  onWrite(data: Buffer, endStream: boolean): FilterStatus {
    if (this.ctx.settings.processWrite === 'SKIP') return 'Continue';
    if (!this.openStream()) return 'Continue';
    this.sendRequest(data, endStream, false);
    return 'StopIteration';
  }

  /** onDownstreamEvent(LocalClose | RemoteClose), and the filter's destructor. */
  onDownstreamClose(): void {
    this.closeStream();
  }

  /** openStream(): false = IgnoreError (processing complete: let the bytes through). */
  private openStream(): boolean {
    if (this.complete) return false;
    if (this.call) return true;
    const metadata = new grpc.Metadata();
    for (const [k, v] of this.ctx.settings.initialMetadata) metadata.add(k, v);
    const call = this.ctx.client.Process(metadata);
    this.call = call;
    call.on('data', (r: Received) => {
      if (this.call === call && !this.streamClosed) this.onReceiveMessage(r);
    });
    call.on('status', (st: grpc.StatusObject) => {
      if (this.call !== call || this.streamClosed) return; // our own close (CANCELLED)
      this.streamClosed = true; // onRemoteClose
      if (st.code === grpc.status.OK) this.onGrpcClose();
      else this.onGrpcError();
    });
    call.on('error', () => {
      /* reported through 'status' */
    });
    this.ctx.counters.inc('streams_started');
    return true;
  }

  private sendRequest(data: Buffer, endStream: boolean, isRead: boolean): void {
    if (!this.call) return;
    this.updateCloseCallbackStatus(true, isRead);
    const d = { data, end_of_stream: endStream };
    const req: NetworkProcessingRequest = isRead ? { read_data: d } : { write_data: d };
    if (isRead) {
      this.ctx.counters.inc('read_data_sent');
      this.readPending = true;
    } else {
      this.ctx.counters.inc('write_data_sent');
      this.writePending = true;
    }
    this.startTimer(isRead);
    // Answers come in order per direction, so each direction's send times form a queue.
    if (this.ctx.roundTrips !== null) (isRead ? this.readSentAt : this.writeSentAt).push(performance.now());
    this.call.write(req);
    this.ctx.counters.inc('stream_msgs_sent');
    // The buffer is drained: the bytes now exist only in the message.
  }

  private onReceiveMessage(r: Received): void {
    const { counters, settings } = this.ctx;
    if (this.complete) {
      counters.inc('spurious_msgs_received');
      return;
    }
    counters.inc('stream_msgs_received');
    // connection_status first: the bytes of a CLOSE / CLOSE_RST response are discarded.
    this.handleConnectionStatus(r);
    if (this.complete) return;
    if (r.read_data) {
      this.timeRoundTrip(this.readSentAt);
      if (this.readPending) this.stopTimer(true);
      this.readPending = false;
      this.cb.injectReadDataToFilterChain(toBuffer(r.read_data.data), r.read_data.end_of_stream === true);
      this.updateCloseCallbackStatus(false, true);
      counters.inc('read_data_injected');
    } else if (r.write_data) {
      this.timeRoundTrip(this.writeSentAt);
      // Before envoyproxy/envoy#43167 a write answer stopped the READ timer.
      if (this.writePending) this.stopTimer(settings.writeTimerBug);
      this.writePending = false;
      this.cb.injectWriteDataToFilterChain(toBuffer(r.write_data.data), r.write_data.end_of_stream === true);
      this.updateCloseCallbackStatus(false, false);
      counters.inc('write_data_injected');
    } else {
      counters.inc('empty_response_received');
    }
  }

  private timeRoundTrip(sentAt: number[]): void {
    const sent = sentAt.shift();
    if (sent !== undefined) this.ctx.roundTrips?.push(performance.now() - sent);
  }

  private handleConnectionStatus(r: Received): void {
    const s = r.connection_status as string | number | null | undefined;
    if (s === 'CLOSE' || s === 1) {
      this.closeConnection('flush');
      this.complete = true;
    } else if (s === 'CLOSE_RST' || s === 2) {
      this.closeConnection('reset');
      this.complete = true;
    }
    // CONTINUE, unset or unknown: carry on.
  }

  private onGrpcError(): void {
    this.complete = true;
    this.closeStream();
    this.ctx.counters.inc('streams_grpc_error');
    if (!this.ctx.settings.failureModeAllow) {
      this.closeConnection('flush');
      return;
    }
    this.ctx.counters.inc('failure_mode_allowed');
  }

  /** The server ended the stream with OK: stop processing; bytes pass unprocessed, whatever failure_mode_allow says. */
  private onGrpcClose(): void {
    this.complete = true;
    this.ctx.counters.inc('streams_grpc_close');
    this.closeStream();
  }

  private handleMessageTimeout(): void {
    this.ctx.counters.inc('message_timeouts');
    this.complete = true;
    this.readPending = false;
    this.writePending = false;
    this.closeStream();
    if (this.ctx.settings.failureModeAllow) this.ctx.counters.inc('failure_mode_allowed');
    else this.closeConnection('flush');
  }

  /** Stops the timers, releases held closes, and closes the stream: half-close then reset (the server sees CANCELLED). */
  private closeStream(): void {
    this.stopTimer(true);
    this.stopTimer(false);
    this.timersGone = true;
    this.readPending = false;
    this.writePending = false;
    if (this.disableCountRead > 0) {
      this.disableCountRead = 0;
      this.cb.disableClose('read', false);
    }
    if (this.disableCountWrite > 0) {
      this.disableCountWrite = 0;
      this.cb.disableClose('write', false);
    }
    const call = this.call;
    if (!call) return;
    if (!this.streamClosed) {
      this.streamClosed = true;
      call.end();
      call.cancel();
      this.ctx.counters.inc('streams_closed');
    }
  }

  private closeConnection(type: CloseType): void {
    this.closeStream();
    this.cb.close(type);
    if (type === 'reset') this.ctx.counters.inc('connections_reset');
    this.ctx.counters.inc('connections_closed');
  }

  /** Close is held back while answers are outstanding, per direction (uint32 counters in Envoy). */
  private updateCloseCallbackStatus(enable: boolean, isRead: boolean): void {
    const dir = isRead ? 'read' : 'write';
    if (enable) {
      if (isRead) this.disableCountRead++;
      else this.disableCountWrite++;
      this.cb.disableClose(dir, true);
      return;
    }
    const n = isRead ? --this.disableCountRead : --this.disableCountWrite;
    if (n === 0) this.cb.disableClose(dir, false);
  }

  // MessageTimeoutManager: one timer per direction, re-armed on every send; 0 = no timer.
  private startTimer(isRead: boolean): void {
    const ms = this.ctx.settings.messageTimeoutMs;
    if (this.timersGone || ms === 0) return;
    const key = isRead ? 'read' : 'write';
    this.timers[key]?.();
    this.timers[key] = this.ctx.clock.after(ms, () => {
      this.timers[key] = undefined;
      this.handleMessageTimeout();
    });
  }

  private stopTimer(isRead: boolean): void {
    const key = isRead ? 'read' : 'write';
    this.timers[key]?.();
    this.timers[key] = undefined;
  }
}

function toBuffer(d: Buffer | Uint8Array | null | undefined): Buffer {
  if (!d) return Buffer.alloc(0);
  return Buffer.isBuffer(d) ? d : Buffer.from(d);
}

// ------------------------------------------------------------------------------------------------ the connection

/**
 * One downstream connection: the network filter manager (FilterManagerImpl: close gating, write filter chain) with
 * the ext_proc filter, then tcp_proxy and its upstream connection.
 */
class Connection implements FilterCallbacks {
  private state: 'open' | 'closed' = 'open';
  /** ActiveReadFilter / ActiveWriteFilter pending_close_ of the ext_proc filter. */
  private readonly holds = { read: false, write: false };
  /** latched_close_action_: a close waiting for the holds to go. */
  private latched: { local: boolean; type: CloseType } | undefined;
  /** write_end_stream_ of the downstream connection. */
  private downstreamWriteEnded = false;
  private upstreamWriteEnded = false;
  private upstreamConnected = false;
  private upstreamGone = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly filter: NetworkExtProcFilter;
  private readonly up: net.Socket;

  constructor(
    private readonly ctx: Ctx,
    private readonly down: net.Socket,
  ) {
    this.filter = new NetworkExtProcFilter(ctx, this);
    down.on('data', (c: Buffer) => this.onRead(c, false));
    down.on('end', () => this.onRead(Buffer.alloc(0), true));
    down.on('error', () => {
      /* a reset: 'close' follows */
    });
    down.on('close', () => this.onDownstreamSocketClosed());

    // tcp_proxy: connect upstream at once; downstream reads stay disabled until it is up.
    this.up = net.connect({ host: ctx.upstream.host, port: ctx.upstream.port, allowHalfOpen: true });
    this.up.on('connect', () => {
      this.upstreamConnected = true;
      this.resetIdleTimer();
      if (this.state === 'open') down.resume();
    });
    this.up.on('data', (c: Buffer) => this.onUpstreamData(c, false));
    this.up.on('end', () => this.onUpstreamData(Buffer.alloc(0), true));
    this.up.on('error', () => {
      /* 'close' follows */
    });
    this.up.on('close', () => this.onUpstreamSocketClosed());
  }

  /** The stand-in is shutting down. */
  destroy(): void {
    this.closeNow('noflush', true);
  }

  // -------------------------------------------------------------------------------- read path

  private onRead(data: Buffer, endStream: boolean): void {
    if (this.state !== 'open') return;
    if (this.filter.onData(data, endStream) === 'Continue') this.tcpProxyOnData(data, endStream);
  }

  injectReadDataToFilterChain(data: Buffer, endStream: boolean): void {
    if (this.state !== 'open') return;
    this.tcpProxyOnData(data, endStream);
  }

  /** TcpProxy::Filter::onData: to the upstream, half-closing it on end_stream. */
  private tcpProxyOnData(data: Buffer, endStream: boolean): void {
    this.resetIdleTimer();
    if (this.upstreamWriteEnded || this.upstreamGone) return;
    if (data.length > 0) this.up.write(data);
    if (endStream) {
      this.upstreamWriteEnded = true;
      this.up.end();
    }
  }

  // -------------------------------------------------------------------------------- write path

  /** TcpProxy::Filter::onUpstreamData → downstream connection write() through the write filter chain. */
  private onUpstreamData(data: Buffer, endStream: boolean): void {
    this.resetIdleTimer();
    if (this.state !== 'open' || this.downstreamWriteEnded) return;
    if (this.latched) return; // regular writes are refused while a close is pending
    if (this.filter.onWrite(data, endStream) === 'Continue') this.rawWrite(data, endStream);
  }

  injectWriteDataToFilterChain(data: Buffer, endStream: boolean): void {
    if (this.state !== 'open') return;
    if (this.latched && !this.latched.local) return; // injected writes only while a LOCAL close is pending
    this.rawWrite(data, endStream);
  }

  private rawWrite(data: Buffer, endStream: boolean): void {
    if (this.downstreamWriteEnded) return;
    if (data.length > 0) this.down.write(data);
    if (endStream) {
      this.downstreamWriteEnded = true;
      this.down.end();
    }
  }

  // -------------------------------------------------------------------------------- closing

  disableClose(dir: 'read' | 'write', disable: boolean): void {
    this.holds[dir] = disable;
    if (!disable) this.maybeClose();
  }

  private held(): boolean {
    return this.holds.read || this.holds.write;
  }

  private maybeClose(): void {
    if (this.state !== 'open' || this.held() || !this.latched) return;
    const { local, type } = this.latched;
    this.latched = undefined;
    this.closeNow(type, local);
  }

  /** Connection::close(type) from a filter (a local close): held back while the ext_proc filter waits for answers. */
  close(type: CloseType): void {
    if (this.state !== 'open') return;
    if (!this.held()) {
      this.closeNow(type, true);
      return;
    }
    if (this.latched?.local) return; // the first local close stands
    this.latched = { local: true, type };
  }

  /** The client closed (reset, or both directions ended). */
  private onDownstreamSocketClosed(): void {
    if (this.state !== 'open') return;
    this.ctx.events.emit('downstreamRemoteClose');
    if (!this.held()) {
      this.closeNow('noflush', false);
      return;
    }
    if (!this.latched) this.latched = { local: false, type: 'noflush' };
  }

  /** TcpProxy upstream RemoteClose: close the downstream after flushing (held back like any close). */
  private onUpstreamSocketClosed(): void {
    this.upstreamGone = true;
    if (this.state !== 'open') return;
    this.ctx.events.emit('upstreamRemoteClose');
    // Upstream connect failure: tcp_proxy closes the downstream without flushing.
    this.close(this.upstreamConnected ? 'flush' : 'noflush');
  }

  /** ConnectionImpl::closeConnection and the LocalClose / RemoteClose event to the filters. */
  private closeNow(type: CloseType, local: boolean): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    const d = this.down;
    if (local) {
      if (type === 'reset') d.resetAndDestroy();
      else if (type === 'noflush') d.destroy();
      else {
        if (!this.downstreamWriteEnded) d.end();
        this.downstreamWriteEnded = true;
        d.destroySoon();
      }
    } else {
      d.destroy();
    }
    this.filter.onDownstreamClose();
    // TcpProxy: a local close drops the upstream without flushing; a remote close flushes it.
    if (!this.upstreamGone) {
      if (local) this.up.destroy();
      else {
        if (!this.upstreamWriteEnded) this.up.end();
        this.upstreamWriteEnded = true;
        this.up.destroySoon();
      }
    }
    this.ctx.events.emit('closed', { local, type });
  }

  /** tcp_proxy idle_timeout: no bytes through the proxy for that long closes both connections. */
  private resetIdleTimer(): void {
    const ms = this.ctx.settings.idleTimeoutMs;
    if (ms <= 0 || this.state !== 'open') return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close('noflush'), ms);
    this.idleTimer.unref();
  }
}
