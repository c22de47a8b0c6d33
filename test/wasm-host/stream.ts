/**
 * One HTTP stream's context on the TypeScript proxy-wasm host (test code only): the callbacks in Envoy's order, each
 * with only its own maps and buffers, local replies and resets, and Envoy's reading of the statuses.
 */
import { BufferType, type Headers, type LocalReply, MapType, type Phase, VmDeadError } from './abi.ts';
import type { ProxyWasmHost } from './proxy-wasm-host.ts';

/** What one callback returned and did. */
export interface CallbackResult {
  /** What the filter returned (the ABI's number). */
  status: number;
  /** What Envoy does with it (docs/envoy-behaviour.md D.4). */
  envoy: EnvoyFilterStatus;
  localReply?: LocalReply;
}

export type EnvoyFilterStatus =
  | 'Continue'
  | 'StopIteration'
  | 'ContinueAndEndStream'
  | 'StopAllIterationAndBuffer'
  | 'StopAllIterationAndWatermark'
  | 'StopIterationAndBuffer'
  | 'StopIterationAndWatermark'
  | 'StopIterationNoBuffer';

/**
 * Envoy's conversion of a callback's status: for headers, StopIteration becomes StopAllIterationAndWatermark (Envoy
 * has no allow_on_headers_stop_iteration here); for bodies, the body statuses; anything unknown continues.
 */
function envoyStatus(kind: 'headers' | 'body' | 'trailers', status: number): EnvoyFilterStatus {
  if (kind === 'body') {
    return (
      (['Continue', 'StopIterationAndBuffer', 'StopIterationAndWatermark', 'StopIterationNoBuffer'] as const)[status]
      ?? 'Continue'
    );
  }
  if (kind === 'trailers') return status === 1 ? 'StopIteration' : 'Continue';
  return (
    (
      [
        'Continue',
        'StopAllIterationAndWatermark',
        'ContinueAndEndStream',
        'StopAllIterationAndBuffer',
        'StopAllIterationAndWatermark',
      ] as const
    )[status] ?? 'Continue'
  );
}

/** One HTTP stream's context: the callbacks in Envoy's order, each with only its own maps and buffers. */
export class Stream {
  requestHeaders: Headers = [];
  responseHeaders: Headers = [];
  /** Response bytes as the filter let them out. */
  responseOut: Buffer[] = [];
  localReply?: LocalReply;
  /** The stream was reset (a local reply after the response started, or a dead VM mid-stream). */
  reset = false;
  private responseStarted = false;
  private finished = false;

  constructor(
    private readonly host: ProxyWasmHost,
    readonly id: number,
  ) {}

  mapChanged(type: number, map: Headers): void {
    if (type === MapType.RequestHeaders) this.requestHeaders = map;
    if (type === MapType.ResponseHeaders) this.responseHeaders = map;
  }

  private failStream(): CallbackResult {
    const reply: LocalReply = { status: 503, details: 'wasm_fail_stream', body: Buffer.alloc(0), headers: [] };
    if (this.responseStarted) this.reset = true;
    else this.localReply = reply;
    return { status: 1, envoy: 'StopIteration', localReply: reply };
  }

  private run(
    kind: 'headers' | 'body' | 'trailers',
    phase: Omit<Phase, 'stream'>,
    name: string,
    ...args: number[]
  ): CallbackResult {
    if (this.host.dead || this.localReply || this.reset) return this.failStream();
    const p: Phase = { ...phase, stream: this };
    let status: number;
    try {
      status = this.host.inPhase(p, () => this.host.call(name, this.id, ...args));
    } catch (err) {
      if (err instanceof VmDeadError) return this.failStream();
      throw err;
    }
    if (p.localReply) {
      // Deferred until the callback returned; it forces Stop. Too late once the response reached the client.
      if (this.responseStarted) this.reset = true;
      else this.localReply = p.localReply;
      return { status, envoy: 'StopIteration', localReply: p.localReply };
    }
    return { status, envoy: envoyStatus(kind, status) };
  }

  onRequestHeaders(headers: Headers, endOfStream: boolean): CallbackResult {
    this.requestHeaders = headers.map(([k, v]) => [k.toLowerCase(), v]);
    return this.run(
      'headers',
      { maps: new Map([[MapType.RequestHeaders, this.requestHeaders]]), buffers: new Map() },
      'proxy_on_request_headers',
      headers.length,
      endOfStream ? 1 : 0,
    );
  }

  onResponseHeaders(headers: Headers, endOfStream: boolean): CallbackResult {
    this.responseHeaders = headers.map(([k, v]) => [k.toLowerCase(), v]);
    const r = this.run(
      'headers',
      { maps: new Map([[MapType.ResponseHeaders, this.responseHeaders]]), buffers: new Map() },
      'proxy_on_response_headers',
      headers.length,
      endOfStream ? 1 : 0,
    );
    if (!r.localReply) this.responseStarted = true;
    return r;
  }

  /** One chunk as Envoy hands it (the filter continued at headers, so chunk by chunk); returns what goes out. */
  onResponseBody(chunk: Buffer, endOfStream: boolean): CallbackResult & { out: Buffer } {
    const buffers = new Map([[BufferType.ResponseBody, chunk]]);
    const r = this.run(
      'body',
      { maps: new Map(), buffers },
      'proxy_on_response_body',
      chunk.length,
      endOfStream ? 1 : 0,
    );
    const out = r.localReply || this.reset ? Buffer.alloc(0) : (buffers.get(BufferType.ResponseBody) ?? chunk);
    if (out.length > 0) this.responseOut.push(out);
    return { ...r, out };
  }

  onResponseTrailers(trailers: Headers): CallbackResult {
    return this.run(
      'trailers',
      { maps: new Map([[MapType.ResponseTrailers, trailers]]), buffers: new Map() },
      'proxy_on_response_trailers',
      trailers.length,
    );
  }

  /** Stream end, in Envoy's order: on_log, on_done, on_delete. */
  finish(): void {
    if (this.host.dead || this.finished) return;
    this.finished = true;
    try {
      for (const name of ['proxy_on_log', 'proxy_on_done', 'proxy_on_delete'])
        this.host.inPhase({ stream: undefined, maps: new Map(), buffers: new Map() }, () =>
          this.host.call(name, this.id),
        );
    } catch (err) {
      if (!(err instanceof VmDeadError)) throw err;
    }
    this.host.contextDeleted(this.id);
  }
}
