/**
 * The proxy-wasm filter as the HTTP Envoy stand-in runs it (test code only): one VM on the TypeScript host, placed
 * before ext_proc as envoy/portcullis.yaml places envoy.filters.http.wasm. Requests meet it first; responses meet it
 * last (Envoy runs encoder filters in reverse order), after ext_proc. Its timer runs on a real interval and its
 * callouts go to the clusters given here, as Envoy's async HTTP client would send them.
 */
import { fileURLToPath } from 'node:url';
import type { DirectionSink, LocalReply } from '../envoy/ext-proc-filter.ts';
import type { HeaderList } from '../envoy/header-mutation.ts';
import { type CalloutAnswer, type Callout, ProxyWasmHost, type Stream } from './proxy-wasm-host.ts';

export const FILTER_WASM = fileURLToPath(new URL('../../wasm-filter/build/filter.wasm', import.meta.url));

export interface WasmFilterOptions {
  /** The filter's plugin configuration (envoy.filters.http.wasm `configuration`). */
  pluginConfiguration: string;
  /** Cluster name → base URL (http://host:port) the callouts to that cluster go to. */
  clusters?: Record<string, string>;
  /** The VM's environment (vm_config.environment_variables). */
  environment?: Record<string, string>;
  wasmPath?: string;
}

async function callout(clusters: Record<string, string>, c: Callout): Promise<CalloutAnswer> {
  const base = clusters[c.cluster];
  const header = (k: string) => c.headers.find(([n]) => n === k)?.[1];
  const method = header(':method') ?? 'GET';
  try {
    const res = await fetch(`${base}${header(':path') ?? '/'}`, {
      method,
      headers: c.headers.filter(([k]) => !k.startsWith(':')),
      body: c.body.length > 0 ? new Uint8Array(c.body) : undefined,
      signal: AbortSignal.timeout(c.timeoutMs),
    });
    const headers = [...res.headers].map(([k, v]) => [k, v] as [string, string]);
    return { kind: 'response', status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? { kind: 'timeout' } : { kind: 'reset' };
  }
}

export class WasmFilterChain {
  private timer: NodeJS.Timeout | undefined;
  /** The x-request-id the filter set on each request, latest last (the last 100). */
  readonly requestIds: string[] = [];

  private constructor(readonly host: ProxyWasmHost) {}

  static async start(opts: WasmFilterOptions): Promise<WasmFilterChain> {
    const clusters = opts.clusters ?? {};
    const host = await ProxyWasmHost.start(opts.wasmPath ?? FILTER_WASM, {
      pluginConfiguration: opts.pluginConfiguration,
      clusters: Object.keys(clusters),
      environment: opts.environment,
      dispatch: (c) => callout(clusters, c),
    });
    const chain = new WasmFilterChain(host);
    if (host.tickPeriodMs > 0) {
      chain.timer = setInterval(() => host.tick(), host.tickPeriodMs);
      chain.timer.unref();
    }
    return chain;
  }

  /** A first snapshot refresh now (Envoy's first tick comes one period after start), answered before it returns. */
  async refreshNow(): Promise<void> {
    this.host.tick();
    await this.host.settle();
  }

  /**
   * The request headers through the filter: its local reply if it answered (the next filter never sees the request),
   * otherwise the headers as it left them.
   */
  requestHeaders(h: HeaderList, endStream: boolean): { stream: Stream; headers: HeaderList; reply?: LocalReply } {
    const stream = this.host.newStream();
    const r = stream.onRequestHeaders(h, endStream);
    const id = stream.requestHeaders.find(([k]) => k === 'x-request-id')?.[1];
    if (id) this.requestIds.push(id);
    if (this.requestIds.length > 100) this.requestIds.shift();
    return { stream, headers: stream.requestHeaders, ...(r.localReply ? { reply: r.localReply } : {}) };
  }

  /** Wraps the sink the response goes to after ext_proc: the filter sees headers, each chunk and trailers first. */
  responseSink(stream: Stream, sink: DirectionSink, reply: (r: LocalReply) => void): DirectionSink {
    return {
      headers(h, endStream) {
        const r = stream.onResponseHeaders(h, endStream);
        if (r.localReply) return reply(r.localReply);
        sink.headers(stream.responseHeaders, endStream);
        if (endStream) stream.finish();
      },
      data(chunk, endStream) {
        const r = stream.onResponseBody(chunk, endStream);
        if (r.localReply || stream.reset) return reply(r.localReply ?? resetReply);
        sink.data(r.out, endStream);
        if (endStream) stream.finish();
      },
      trailers(t) {
        stream.onResponseTrailers(t);
        sink.trailers(t);
        stream.finish();
      },
    };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

const resetReply: LocalReply = { status: 503, body: Buffer.alloc(0), headers: [], details: 'wasm_fail_stream' };
