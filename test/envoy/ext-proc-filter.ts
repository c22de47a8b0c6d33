/**
 * One HTTP stream's worth of Envoy's HTTP ext_proc filter (envoy.filters.http.ext_proc), as docs/envoy-behaviour.md section B
 * describes it: one lazily opened gRPC stream per HTTP request, a state per direction named by the answer it awaits,
 * one timer per direction, pipelined STREAMED chunks, mutation and content-length rules, immediate responses, fail
 * closed or open, and half-close + reset (or graceful) at the end. Test code: it stands in for Envoy, it is not Envoy.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  BodyMutation,
  BodySendMode,
  CommonResponse,
  ExternalProcessorClient,
  HeaderMutation,
  ProcessingRequest,
  ProcessingResponse,
} from '../../extproc/envoy-api/index.ts';
import { httpStatusNumber } from '../../extproc/envoy-api/index.ts';
import type { Clock, Disarm } from './clock.ts';
import type { Counters } from './counters.ts';
import { applyHeaderMutation, get, MutationError, remove, toHeaderMap } from './header-mutation.ts';
import type { HeaderList } from './header-mutation.ts';
import { durationMs, effectiveOverride } from './stand-in-config.ts';
import type { ExtProcSettings, Modes } from './stand-in-config.ts';

export type Dir = 'request' | 'response';

/** Where a direction's processed output goes: upstream for the request, the client for the response. */
export interface DirectionSink {
  headers(h: HeaderList, endStream: boolean): void;
  data(chunk: Buffer, endStream: boolean): void;
  trailers(t: HeaderList): void;
}

/** Watermark control of a direction's source. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

export interface LocalReply {
  status: number;
  body: Buffer;
  headers: HeaderList;
  details: string;
}

export interface FilterHost {
  settings: ExtProcSettings;
  counters: Counters;
  /** What the message timers and the graceful-close timer run on. */
  clock: Clock;
  client: ExternalProcessorClient;
  sinks: Record<Dir, DirectionSink>;
  flow: Record<Dir, FlowControl>;
  /** Sends a local reply, or resets the client stream if the response already started. */
  sendLocalReply(reply: LocalReply): void;
  /** Called when a request-path clear_route_cache is honoured. */
  clearRouteCache(headers: HeaderList): void;
  /** Stores dynamic metadata the processor returned in an accepted namespace (what access logs read). */
  setDynamicMetadata(namespace: string, fields: Record<string, string>): void;
}

type CallbackState =
  | 'Idle'
  | 'HeadersCallback'
  | 'BufferedBodyCallback'
  | 'StreamedBodyCallback'
  | 'BufferedPartialBodyCallback'
  | 'TrailersCallback';

interface Sent {
  chunk: Buffer;
  endStream: boolean;
}

class DirState {
  callback: CallbackState = 'Idle';
  headersReceived = false;
  headers: HeaderList = [];
  headersEndStream = false;
  headersContinued = false;
  /** Data received and neither sent to the processor nor forwarded. */
  held: Buffer[] = [];
  heldBytes = 0;
  /** Sent to the processor, awaiting its answer (FIFO; STREAMED may have several). */
  outstanding: Sent[] = [];
  /** The source has ended (end of data or trailers). */
  endStream = false;
  eosSent = false;
  trailers: HeaderList | undefined;
  trailersSent = false;
  /** BUFFERED / BUFFERED_PARTIAL: the one body message was sent / answered. */
  bodySent = false;
  bodyProcessed = false;
  /** content-length is removed in this direction (decided when headers are sent, B.14). */
  clRemoved = false;
  /** CONTINUE_AND_REPLACE: nothing more is processed or forwarded from the source. */
  replaced = false;
  /** The sink has seen end of stream. */
  done = false;
  paused = false;
  timer: Disarm | undefined;
  timerOverridden = false;
}

export class ExtProcFilter {
  private readonly st: Record<Dir, DirState> = { request: new DirState(), response: new DirState() };
  private modes: Modes;
  private call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> | undefined;
  private streamClosed = false;
  /** Envoy's processing_complete_: the processor is no longer consulted. */
  private complete = false;
  private firstMessage = true;

  constructor(private readonly host: FilterHost) {
    this.modes = { ...host.settings.modes };
  }

  // ---------------------------------------------------------------------------------------- events from HTTP

  onHeaders(dir: Dir, headers: HeaderList, endStream: boolean): void {
    const s = this.st[dir];
    s.headersReceived = true;
    s.headers = headers;
    s.headersEndStream = endStream;
    s.endStream = endStream;
    if (this.complete || this.headerMode(dir) === 'SKIP') {
      // Without a headers message the processor cannot fix content-length for a changed body.
      s.clRemoved = this.bodyMode(dir) !== 'NONE' && !this.complete;
      this.continueHeaders(dir, endStream);
      this.advance(dir);
      return;
    }
    const bm = this.bodyMode(dir);
    s.clRemoved = bm === 'STREAMED' || bm === 'BUFFERED_PARTIAL';
    s.callback = 'HeadersCallback';
    const hh = { headers: toHeaderMap(headers), ...(endStream ? { end_of_stream: true } : {}) };
    this.send(dir === 'request' ? { request_headers: hh } : { response_headers: hh }, dir);
  }

  onData(dir: Dir, chunk: Buffer, endStream: boolean): void {
    const s = this.st[dir];
    if (endStream) s.endStream = true;
    if (s.done || s.replaced) return;
    if (chunk.length > 0) {
      s.held.push(chunk);
      s.heldBytes += chunk.length;
    }
    if (this.overLimit(dir)) return;
    this.advance(dir);
  }

  onTrailers(dir: Dir, trailers: HeaderList): void {
    const s = this.st[dir];
    s.endStream = true;
    if (s.done || s.replaced) return;
    s.trailers = trailers;
    this.advance(dir);
  }

  /** The HTTP stream is over (completed or aborted): close the gRPC stream as Envoy's onDestroy does. */
  onDestroy(): void {
    this.stopTimer('request');
    this.stopTimer('response');
    this.complete = true;
    this.closeStream(false);
  }

  // ---------------------------------------------------------------------------------------- the state machine

  private headerMode(dir: Dir): 'SEND' | 'SKIP' {
    return dir === 'request' ? this.modes.request_header_mode : this.modes.response_header_mode;
  }

  private bodyMode(dir: Dir): BodySendMode {
    return dir === 'request' ? this.modes.request_body_mode : this.modes.response_body_mode;
  }

  private trailerMode(dir: Dir): 'SEND' | 'SKIP' {
    return dir === 'request' ? this.modes.request_trailer_mode : this.modes.response_trailer_mode;
  }

  private transition(dir: Dir, to: CallbackState): void {
    this.st[dir].callback = to;
  }

  /** Does the next thing a direction can do without an answer from the processor. */
  private advance(dir: Dir): void {
    const s = this.st[dir];
    if (!s.headersReceived || s.done) return;
    if (this.complete) {
      this.flush(dir);
      return;
    }
    if (s.replaced || s.callback === 'HeadersCallback' || s.callback === 'TrailersCallback') return;
    if (s.callback === 'BufferedBodyCallback' || s.callback === 'BufferedPartialBodyCallback') return;
    const bm = this.bodyMode(dir);
    const bodyEnds = s.endStream && !s.trailers;
    switch (bm) {
      case 'NONE':
        this.continueHeaders(dir, s.headersEndStream);
        this.forwardHeld(dir, bodyEnds);
        break;
      case 'BUFFERED':
        if (s.headersEndStream) {
          this.continueHeaders(dir, true);
          return;
        }
        if (!s.bodyProcessed) {
          if (!s.endStream) return; // keep buffering; headers stay held while the body may still change them
          this.sendBody(dir, 'BufferedBodyCallback', bodyEnds);
          return;
        }
        this.forwardHeld(dir, bodyEnds);
        break;
      case 'STREAMED':
        this.continueHeaders(dir, s.headersEndStream);
        if (s.headersEndStream) return;
        if (s.heldBytes > 0 || (bodyEnds && !s.eosSent)) {
          // Everything received so far goes as one chunk; data that arrived whole before the headers answer is
          // thus sent like BUFFERED (B.14).
          this.sendBody(dir, 'StreamedBodyCallback', bodyEnds);
        }
        if (s.outstanding.length > 0) return; // trailers wait until the chunk queue drains
        break;
      case 'BUFFERED_PARTIAL':
        if (s.headersEndStream) {
          this.continueHeaders(dir, true);
          return;
        }
        if (!s.bodyProcessed) {
          if (!s.bodySent && (s.endStream || s.heldBytes > this.host.settings.bufferLimitBytes)) {
            this.sendBody(dir, 'BufferedPartialBodyCallback', bodyEnds);
          }
          return;
        }
        this.forwardHeld(dir, bodyEnds);
        break;
      default:
        throw new Error(`unsupported body mode ${bm as string}`);
    }
    if (s.trailers && s.callback === 'Idle' && !s.done) {
      if (this.trailerMode(dir) === 'SEND' && !s.trailersSent) {
        s.trailersSent = true;
        this.transition(dir, 'TrailersCallback');
        const t = { trailers: toHeaderMap(s.trailers) };
        this.send(dir === 'request' ? { request_trailers: t } : { response_trailers: t }, dir);
      } else if (!s.trailersSent) {
        this.emitTrailers(dir, s.trailers);
      }
    }
    this.updateFlow(dir);
  }

  private sendBody(dir: Dir, state: CallbackState, endStream: boolean): void {
    const s = this.st[dir];
    const chunk = Buffer.concat(s.held);
    s.held = [];
    s.heldBytes = 0;
    s.outstanding.push({ chunk, endStream });
    if (endStream) s.eosSent = true;
    if (state !== 'StreamedBodyCallback') s.bodySent = true;
    this.transition(dir, state);
    // Envoy (C++) never puts a false/empty default on the wire; protobufjs would if it were set explicitly.
    const body = { ...(chunk.length > 0 ? { body: chunk } : {}), ...(endStream ? { end_of_stream: true } : {}) };
    this.send(dir === 'request' ? { request_body: body } : { response_body: body }, dir);
  }

  /** Envoy stops buffering at the connection buffer limit: 413 / 500 for BUFFERED, a watermark otherwise. */
  private overLimit(dir: Dir): boolean {
    const s = this.st[dir];
    if (this.complete || this.bodyMode(dir) !== 'BUFFERED' || s.bodyProcessed) return false;
    if (s.heldBytes <= this.host.settings.bufferLimitBytes) return false;
    this.fail(
      dir === 'request' ? 413 : 500,
      dir === 'request' ? 'request_payload_too_large' : 'response_payload_too_large',
      dir === 'request' ? 'Payload Too Large' : 'Internal Server Error',
    );
    return true;
  }

  private updateFlow(dir: Dir): void {
    const s = this.st[dir];
    const pending = s.heldBytes + s.outstanding.reduce((n, o) => n + o.chunk.length, 0);
    const limit = this.host.settings.bufferLimitBytes;
    if (!s.paused && pending > limit && this.bodyMode(dir) !== 'BUFFERED') {
      s.paused = true;
      this.host.flow[dir].pause();
    } else if (s.paused && pending <= limit / 2) {
      s.paused = false;
      this.host.flow[dir].resume();
    }
  }

  private continueHeaders(dir: Dir, endStream: boolean): void {
    const s = this.st[dir];
    if (s.headersContinued) return;
    s.headersContinued = true;
    const h = s.clRemoved ? remove(s.headers, 'content-length') : s.headers;
    if (endStream) s.done = true;
    this.host.sinks[dir].headers(h, endStream);
  }

  private forwardHeld(dir: Dir, endStream: boolean): void {
    const s = this.st[dir];
    if (s.done) return;
    if (s.heldBytes === 0 && !(endStream && !s.eosSent)) return;
    const chunk = Buffer.concat(s.held);
    s.held = [];
    s.heldBytes = 0;
    this.emitData(dir, chunk, endStream);
  }

  private emitData(dir: Dir, chunk: Buffer, endStream: boolean): void {
    const s = this.st[dir];
    if (s.done) return;
    if (endStream) {
      s.eosSent = true;
      s.done = true;
    }
    this.host.sinks[dir].data(chunk, endStream);
  }

  private emitTrailers(dir: Dir, t: HeaderList): void {
    const s = this.st[dir];
    if (s.done) return;
    s.done = true;
    s.trailersSent = true;
    this.host.sinks[dir].trailers(t);
  }

  /** With the processor out of the picture: release everything held, unmodified, and pass the rest through. */
  private flush(dir: Dir): void {
    const s = this.st[dir];
    if (s.done || s.replaced) return;
    if (!s.headersReceived) return;
    this.continueHeaders(dir, s.headersEndStream);
    if (s.outstanding.length > 0) {
      s.held = [...s.outstanding.map((o) => o.chunk), ...s.held];
      s.heldBytes = s.held.reduce((n, b) => n + b.length, 0);
      s.outstanding = [];
      s.eosSent = false;
    }
    this.forwardHeld(dir, s.endStream && !s.trailers);
    if (s.trailers) this.emitTrailers(dir, s.trailers);
    if (s.paused) {
      s.paused = false;
      this.host.flow[dir].resume();
    }
  }

  // ---------------------------------------------------------------------------------------- the gRPC stream

  private send(msg: ProcessingRequest, dir: Dir): void {
    if (!this.call) {
      this.host.counters.inc('streams_started');
      const metadata = new grpc.Metadata();
      for (const [k, v] of this.host.settings.initialMetadata) metadata.add(k, v);
      this.call = this.host.client.Process(metadata);
      const call = this.call;
      call.on('data', (r: ProcessingResponse) => this.onMessage(r));
      call.on('status', (st: grpc.StatusObject) => this.onStatus(st));
      call.on('error', () => {
        /* reported through 'status' */
      });
    }
    if (this.firstMessage) {
      // Envoy >= 1.34 tells the processor its configured body modes, on the first message only.
      msg.protocol_config = {
        request_body_mode: this.host.settings.modes.request_body_mode,
        response_body_mode: this.host.settings.modes.response_body_mode,
      };
      this.firstMessage = false;
    }
    this.host.counters.inc('stream_msgs_sent');
    this.call.write(msg);
    this.startTimer(dir, this.host.settings.messageTimeoutMs);
  }

  private onStatus(st: grpc.StatusObject): void {
    if (this.streamClosed) return; // our own close
    this.streamClosed = true;
    if (st.code === 0) {
      // The server closed with OK: stop consulting it, continue unmodified, whatever failure_mode_allow says.
      this.host.counters.inc('streams_closed');
      this.bypass();
      return;
    }
    this.host.counters.inc('streams_failed');
    if (this.complete) return;
    if (this.host.settings.failureModeAllow) {
      this.host.counters.inc('failure_mode_allowed');
      this.bypass();
      return;
    }
    this.fail(500, `ext_proc_error_gRPC_error_${st.code}{${st.details}}`);
  }

  private onMessage(r: ProcessingResponse): void {
    this.host.counters.inc('stream_msgs_received');
    if (this.complete) {
      this.host.counters.inc('spurious_msgs_received');
      return;
    }
    if (r.override_message_timeout) {
      this.onNewTimeout(durationMs(r.override_message_timeout, 0));
      return; // the rest of this message is ignored (B.3)
    }
    if (r.dynamic_metadata) this.takeDynamicMetadata(r.dynamic_metadata);
    const inHeaders = this.st.request.callback === 'HeadersCallback' || this.st.response.callback === 'HeadersCallback';
    if (r.mode_override && inHeaders && this.host.settings.allowModeOverride) {
      // Applied before the response's kind is checked, to both directions (B.7, B.14).
      this.modes = effectiveOverride(this.host.settings.modes, r.mode_override as Record<string, never>);
    }
    try {
      switch (r.response) {
        case 'request_headers':
          return this.onHeadersResponse('request', r.request_headers.response);
        case 'response_headers':
          return this.onHeadersResponse('response', r.response_headers.response);
        case 'request_body':
          return this.onBodyResponse('request', r.request_body.response);
        case 'response_body':
          return this.onBodyResponse('response', r.response_body.response);
        case 'request_trailers':
          return this.onTrailersResponse('request', r.request_trailers.header_mutation);
        case 'response_trailers':
          return this.onTrailersResponse('response', r.response_trailers.header_mutation);
        case 'immediate_response':
          if (this.host.settings.disableImmediateResponse) return this.spurious();
          return this.onImmediateResponse(r.immediate_response);
        case undefined:
          return this.spurious();
        default: {
          const never: never = r;
          throw new Error(`unexpected response ${JSON.stringify(never)}`);
        }
      }
    } catch (e) {
      if (!(e instanceof MutationError)) throw e;
      this.fail(500, e.message.replaceAll(' ', '_'));
    }
  }

  /**
   * Envoy keeps the namespaces listed in metadata_options.receiving_namespaces.untyped and drops the others. String
   * values are all the processor sends. google.protobuf.Value decodes with protobufjs's built-in descriptor, whose
   * field names stay camelCase under keepCase (structValue, stringValue).
   */
  private takeDynamicMetadata(m: NonNullable<ProcessingResponse['dynamic_metadata']>): void {
    type Value = { structValue?: { fields?: Record<string, Value> }; stringValue?: string };
    for (const [ns, value] of Object.entries((m as { fields?: Record<string, Value> }).fields ?? {})) {
      if (!this.host.settings.receivingNamespaces.includes(ns)) continue;
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(value.structValue?.fields ?? {}))
        if (typeof v.stringValue === 'string') fields[k] = v.stringValue;
      this.host.setDynamicMetadata(ns, fields);
    }
  }

  private spurious(): void {
    this.host.counters.inc('spurious_msgs_received');
    if (this.host.settings.failureModeAllow) {
      this.host.counters.inc('failure_mode_allowed');
      this.resetStream();
      this.bypass();
      return;
    }
    this.fail(500, 'ext_proc_error_spurious_message');
  }

  private mutate(dir: Dir, h: HeaderList, m: HeaderMutation | undefined): HeaderList {
    return applyHeaderMutation(h, m, {
      rules: this.host.settings.mutationRules,
      contentLengthRemoved: this.st[dir].clRemoved,
      onRejected: () => this.host.counters.inc('rejected_header_mutations'),
    });
  }

  private onHeadersResponse(dir: Dir, common: CommonResponse | undefined): void {
    const s = this.st[dir];
    if (s.callback !== 'HeadersCallback') return this.spurious();
    this.stopTimer(dir);
    s.headers = this.mutate(dir, s.headers, common?.header_mutation);
    if (common?.clear_route_cache) {
      if (dir === 'request' && common.header_mutation) this.host.clearRouteCache(s.headers);
      else this.host.counters.inc('clear_route_cache_ignored');
    }
    this.transition(dir, 'Idle');
    if (common?.status === 'CONTINUE_AND_REPLACE') {
      // Replace the body, stop processing this direction: no body or trailer messages, content-length dropped.
      const body = replacementBody(common.body_mutation);
      s.replaced = true;
      s.held = [];
      s.heldBytes = 0;
      s.trailers = undefined;
      s.headers = remove(s.headers, 'content-length');
      s.headersContinued = true;
      s.done = true;
      this.host.sinks[dir].headers(s.headers, body.length === 0);
      if (body.length > 0) this.host.sinks[dir].data(body, true);
      if (s.paused) this.host.flow[dir].resume();
    } else {
      this.advance(dir);
    }
    this.closeIfNothingMoreToProcess();
  }

  private onBodyResponse(dir: Dir, common: CommonResponse | undefined): void {
    const s = this.st[dir];
    const cb = s.callback;
    if (cb === 'StreamedBodyCallback' && s.outstanding.length > 0) {
      // One timer per direction: the first answer stops it; later chunks in flight run without one (B.14).
      this.stopTimer(dir);
      const sent = s.outstanding.shift()!;
      const chunk = common?.body_mutation ? replacementBody(common.body_mutation) : sent.chunk;
      if (s.outstanding.length === 0) this.transition(dir, 'Idle');
      this.emitData(dir, chunk, sent.endStream);
      this.advance(dir);
      this.closeIfNothingMoreToProcess();
      return;
    }
    if (cb !== 'BufferedBodyCallback' && cb !== 'BufferedPartialBodyCallback') return this.spurious();
    this.stopTimer(dir);
    const sent = s.outstanding.shift()!;
    let headers = s.headers;
    // A header mutation in a body response applies only while headers are still held.
    if (!s.headersContinued) headers = this.mutate(dir, headers, common?.header_mutation);
    let body = sent.chunk;
    if (common?.body_mutation) {
      body = replacementBody(common.body_mutation);
      const cl = s.clRemoved || s.headersContinued ? undefined : get(headers, 'content-length');
      if (cl !== undefined && Number(cl) !== body.length) {
        this.fail(500, 'mismatch_between_content_length_and_the_length_of_the_mutated_body');
        return;
      }
    }
    s.headers = headers;
    s.bodyProcessed = true;
    this.transition(dir, 'Idle');
    this.continueHeaders(dir, false);
    if (body.length > 0 || sent.endStream) this.emitData(dir, body, sent.endStream);
    this.advance(dir);
    this.closeIfNothingMoreToProcess();
  }

  private onTrailersResponse(dir: Dir, m: HeaderMutation | undefined): void {
    const s = this.st[dir];
    if (s.callback !== 'TrailersCallback' || !s.trailers) return this.spurious();
    this.stopTimer(dir);
    this.transition(dir, 'Idle');
    this.emitTrailers(dir, this.mutate(dir, s.trailers, m));
  }

  private onImmediateResponse(
    ir: NonNullable<Extract<ProcessingResponse, { immediate_response: unknown }>['immediate_response']>,
  ): void {
    this.complete = true;
    this.stopTimer('request');
    this.stopTimer('response');
    this.closeStream(false);
    let status = httpStatusNumber(ir.status?.code);
    if (status < 200) status = 200;
    let headers: HeaderList = [];
    try {
      headers = this.mutate('response', [], ir.headers);
    } catch {
      // Envoy only logs a failed mutation of a local reply.
    }
    if (ir.grpc_status) headers.push(['grpc-status', String(ir.grpc_status.status ?? 0)]);
    this.host.sendLocalReply({
      status,
      body: Buffer.from(ir.body ?? Buffer.alloc(0)),
      headers,
      details: (ir.details ?? '').replaceAll(' ', '_'),
    });
  }

  // ---------------------------------------------------------------------------------------- timers

  private startTimer(dir: Dir, ms: number): void {
    const s = this.st[dir];
    s.timer?.();
    s.timerOverridden = false;
    s.timer = this.host.clock.after(ms, () => this.onMessageTimeout(dir));
  }

  private stopTimer(dir: Dir): void {
    const s = this.st[dir];
    s.timer?.();
    s.timer = undefined;
  }

  private onNewTimeout(ms: number): void {
    this.host.counters.inc('override_message_timeout_received');
    const max = this.host.settings.maxMessageTimeoutMs;
    const dir: Dir | undefined = this.st.request.timer ? 'request' : this.st.response.timer ? 'response' : undefined;
    if (max < 1 || ms < 1 || ms > max || !dir || this.st[dir].timerOverridden) {
      this.host.counters.inc('override_message_timeout_ignored');
      return;
    }
    const s = this.st[dir];
    s.timer?.();
    s.timer = this.host.clock.after(ms, () => this.onMessageTimeout(dir));
    s.timerOverridden = true;
  }

  private onMessageTimeout(dir: Dir): void {
    this.st[dir].timer = undefined;
    if (this.complete) return;
    this.host.counters.inc('message_timeouts');
    if (this.host.settings.failureModeAllow) {
      this.host.counters.inc('failure_mode_allowed');
      this.resetStream();
      this.bypass();
      return;
    }
    this.fail(504, 'ext_proc_error_per-message_timeout_exceeded', 'Gateway Timeout');
  }

  // ---------------------------------------------------------------------------------------- endings

  /** Fail-open or server OK-close: the processor is no longer consulted; held data goes on unmodified. */
  private bypass(): void {
    this.complete = true;
    this.stopTimer('request');
    this.stopTimer('response');
    for (const dir of ['request', 'response'] as const) {
      this.st[dir].callback = 'Idle';
      this.flush(dir);
    }
  }

  /** Fail closed: a local reply, and the gRPC stream is reset at once (error paths never close gracefully). */
  private fail(status: number, details: string, body?: string): void {
    if (this.complete) return;
    this.complete = true;
    this.stopTimer('request');
    this.stopTimer('response');
    this.resetStream();
    this.host.sendLocalReply({ status, body: Buffer.from(body ?? 'Internal Server Error'), headers: [], details });
  }

  private resetStream(): void {
    this.closeStream(true);
  }

  /**
   * Envoy's close(): half-close, then reset (the server sees CANCELLED). With the runtime flag
   * ext_proc_graceful_grpc_close: half-close only, and reset after remote_close_timeout if the server has not finished.
   */
  private closeStream(reset: boolean): void {
    const call = this.call;
    if (!call || this.streamClosed) return;
    this.streamClosed = true;
    this.host.counters.inc('streams_closed');
    call.end();
    if (reset || !this.host.settings.gracefulClose) {
      call.cancel();
      return;
    }
    const disarm = this.host.clock.after(this.host.settings.remoteCloseTimeoutMs, () => call.cancel());
    call.on('status', disarm);
  }

  /**
   * Envoy >= 1.37 closes the stream as soon as the last expected answer arrived (not for BUFFERED/BUFFERED_PARTIAL
   * bodies): e.g. request headers answered with no body, and nothing to send on the response path.
   */
  private closeIfNothingMoreToProcess(): void {
    if (this.complete || !this.call || this.streamClosed) return;
    const idle = (dir: Dir) => this.st[dir].callback === 'Idle' && this.st[dir].outstanding.length === 0;
    const reqDone = this.st.request.done && idle('request');
    const respNothing =
      this.modes.response_header_mode === 'SKIP'
      && this.modes.response_body_mode === 'NONE'
      && this.modes.response_trailer_mode === 'SKIP';
    const respDone = this.st.response.done && idle('response');
    const lastWasBuffered = (dir: Dir) =>
      this.bodyMode(dir) === 'BUFFERED' || this.bodyMode(dir) === 'BUFFERED_PARTIAL';
    if (
      reqDone
      && (respNothing || respDone)
      && !(respDone ? lastWasBuffered('response') && this.st.response.bodySent : false)
    ) {
      this.closeStream(false);
    }
  }
}

function replacementBody(m: BodyMutation | undefined): Buffer {
  if (!m) return Buffer.alloc(0);
  if ('body' in m && m.body) return Buffer.from(m.body);
  return Buffer.alloc(0);
}
