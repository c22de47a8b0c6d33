/**
 * A proxy-wasm host (ABI 0.2.1) in TypeScript — TEST CODE ONLY. It loads a filter's .wasm with Node's WebAssembly and
 * implements the host functions the way Envoy's host does (proxy-wasm-cpp-host + Envoy's common/wasm, as
 * docs/envoy-behaviour.md D.4 describes): root context created, then on_vm_start and on_configure; one context per
 * stream with the root as parent; header maps in the ABI's serialization and lower-case names, `replace` removing every
 * copy, request headers gone once their callback continued; body buffers readable and writable only in their own
 * callback, writes only at start 0 (replace a prefix) or at the end; local replies deferred to the callback's return,
 * a reset once the response started; HTTP callouts made on the root context and answered on it (a reset as empty
 * headers and body); metrics with their type in the id's low bits, increments <= 0 refused; a trap kills the VM for
 * good (every later request 503 `wasm_fail_stream`, ticks stop). Timers and callouts are driven by the test
 * (tick(), the callout dispatcher), so nothing here depends on wall-clock time.
 */
import { randomFillSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  BufferType,
  deserializePairs,
  type Headers,
  type LogLine,
  MapType,
  type Phase,
  serializePairs,
  Status,
  VmDeadError,
} from './abi.ts';
import { Stream } from './stream.ts';

export {
  deserializePairs,
  type Headers,
  type LocalReply,
  type LogLine,
  serializePairs,
  Status,
  VmDeadError,
} from './abi.ts';
export { type CallbackResult, type EnvoyFilterStatus, Stream } from './stream.ts';

/** What the test's dispatcher answers to a callout: a response, or the way Envoy reports a failure. */
export type CalloutAnswer =
  | { kind: 'response'; status: number; headers?: Headers; body?: Buffer | string }
  | { kind: 'reset' }
  | { kind: 'timeout' }
  | { kind: 'no-healthy-upstream' };

export interface Callout {
  token: number;
  /** The context the call was made for (the effective context): Envoy cancels it when that context goes. */
  contextId: number;
  cluster: string;
  headers: Headers;
  body: Buffer;
  timeoutMs: number;
}

export interface HostOptions {
  pluginConfiguration?: string | Buffer;
  vmConfiguration?: string | Buffer;
  /** Clusters the bootstrap defines (a callout to another one is BadArgument, as in Envoy). */
  clusters?: string[];
  /** The variables vm_config.environment_variables passes to the VM (WASI environ_get). */
  environment?: Record<string, string>;
  /** Answers callouts; called when the filter makes one, its answer delivered on the root context. */
  dispatch?: (callout: Callout) => Promise<CalloutAnswer> | CalloutAnswer;
}

interface Exports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  [name: string]: unknown;
}

type Fn = (...args: (number | bigint)[]) => number | undefined;

export class ProxyWasmHost {
  private exports!: Exports;
  readonly logs: LogLine[] = [];
  /** Stat values by name (what Envoy's /stats shows, without its `wasmcustom.` prefix). */
  readonly metrics = new Map<string, bigint>();
  private readonly metricIds = new Map<number, { name: string; type: number }>();
  private nextMetricId = 1;
  readonly callouts: Callout[] = [];
  tickPeriodMs = 0;
  dead = false;
  trap: unknown = undefined;
  readonly rootId = 1;
  private nextContextId = 2;
  private nextToken = 1;
  private phase: Phase = { stream: undefined, maps: new Map(), buffers: new Map() };
  private configuration: { plugin: Buffer; vm: Buffer };
  private readonly inFlight = new Set<Promise<void>>();
  /** proxy_set_effective_context's choice for the rest of the current callback (undefined: the callback's own). */
  private effectiveContext: number | undefined;
  private readonly liveContexts = new Set<number>([1]);
  private readonly cancelled = new Set<number>();

  private constructor(private readonly opts: HostOptions) {
    this.configuration = {
      plugin: Buffer.from(opts.pluginConfiguration ?? ''),
      vm: Buffer.from(opts.vmConfiguration ?? ''),
    };
  }

  /** Loads the module and runs Envoy's start sequence; throws if on_configure refuses the configuration. */
  static async start(wasmPath: string, opts: HostOptions = {}): Promise<ProxyWasmHost> {
    const host = new ProxyWasmHost(opts);
    const module = await WebAssembly.compile(new Uint8Array(await readFile(wasmPath)));
    // During instantiation (the start function) no host function may be called: each import throws then.
    let starting = true;
    const imports = host.imports(() => starting);
    const instance = await WebAssembly.instantiate(module, imports);
    starting = false;
    host.exports = instance.exports as unknown as Exports;
    host.call('proxy_on_context_create', host.rootId, 0);
    if (!host.call('proxy_on_vm_start', host.rootId, host.configuration.vm.length))
      throw new Error('proxy_on_vm_start failed');
    if (!host.configure()) throw new Error('plugin configuration rejected (proxy_on_configure returned false)');
    return host;
  }

  /** Runs on_configure again (as Envoy does for the canary and each worker VM, or a new configuration). */
  configure(plugin?: string | Buffer): boolean {
    if (plugin !== undefined) this.configuration.plugin = Buffer.from(plugin);
    return this.inPhase({ stream: undefined, maps: new Map(), buffers: new Map() }, () =>
      Boolean(this.call('proxy_on_configure', this.rootId, this.configuration.plugin.length)),
    );
  }

  metric(name: string): bigint | undefined {
    return this.metrics.get(name);
  }

  /** One timer tick on the root context (Envoy's timer; the test decides when). */
  tick(): void {
    if (this.dead || this.tickPeriodMs === 0) return;
    this.inPhase({ stream: undefined, maps: new Map(), buffers: new Map() }, () =>
      this.call('proxy_on_tick', this.rootId),
    );
  }

  /** Waits until every callout made so far has been answered. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  newStream(): Stream {
    const id = this.nextContextId++;
    const stream = new Stream(this, id);
    this.liveContexts.add(id);
    if (!this.dead) this.call('proxy_on_context_create', id, this.rootId);
    return stream;
  }

  // ---------------------------------------------------------------------------------------------- internals

  /** Calls an export; a trap marks the VM dead for good, as in Envoy. */
  call(name: string, ...args: (number | bigint)[]): number {
    if (this.dead) throw new VmDeadError(`VM is dead (trapped in an earlier call: ${String(this.trap)})`);
    const f = this.exports[name] as Fn | undefined;
    if (typeof f !== 'function') return 0;
    try {
      return f(...args) ?? 0;
    } catch (err) {
      this.dead = true;
      this.trap = err;
      throw new VmDeadError(`VM trapped in ${name}: ${String(err)}`);
    }
  }

  inPhase<T>(phase: Phase, run: () => T): T {
    const saved = this.phase;
    const savedEffective = this.effectiveContext;
    this.phase = phase;
    this.effectiveContext = undefined;
    try {
      return run();
    } finally {
      this.phase = saved;
      this.effectiveContext = savedEffective;
    }
  }

  /** A stream context is gone (after on_delete): Envoy cancels the callouts made for it. */
  contextDeleted(id: number): void {
    this.liveContexts.delete(id);
    for (const c of this.callouts) if (c.contextId === id) this.cancelled.add(c.token);
  }

  private mem(): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer);
  }

  private view(): DataView {
    return new DataView(this.exports.memory.buffer);
  }

  private read(ptr: number, len: number): Buffer {
    if (ptr < 0 || len < 0 || ptr + len > this.exports.memory.buffer.byteLength) throw new RangeError('out of bounds');
    return Buffer.from(this.mem().subarray(ptr, ptr + len));
  }

  /** Copies bytes into module memory obtained from its malloc, and writes pointer and size (copyToPointerSize). */
  private give(bytes: Buffer, ptrPtr: number, sizePtr: number): number {
    const p = Number(this.exports.malloc(bytes.length)) >>> 0;
    if (p === 0 && bytes.length > 0) return Status.InvalidMemoryAccess;
    const size = this.exports.memory.buffer.byteLength;
    if (p + bytes.length > size || ptrPtr + 4 > size || sizePtr + 4 > size) return Status.InvalidMemoryAccess;
    this.mem().set(bytes, p);
    this.view().setUint32(ptrPtr, p, true);
    this.view().setUint32(sizePtr, bytes.length, true);
    return Status.Ok;
  }

  private imports(starting: () => boolean): WebAssembly.Imports {
    // A host function called while the module starts traps (Envoy refuses the module then).
    const guard =
      <A extends number[]>(name: string, f: (...a: A) => number) =>
      (...a: A): number => {
        if (starting()) throw new Error(`${name} called during module start`);
        return f(...a);
      };
    const env: Record<string, (...a: never[]) => number> = {
      proxy_log: guard('proxy_log', (level: number, ptr: number, len: number) => {
        this.logs.push({ level, message: this.read(ptr, len).toString('latin1') });
        return Status.Ok;
      }),
      proxy_get_buffer_bytes: guard(
        'proxy_get_buffer_bytes',
        (type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
          const buf = this.buffer(type);
          if (!buf) return Status.NotFound;
          if (start < 0 || length < 0 || start > buf.length) return Status.BadArgument;
          return this.give(buf.subarray(start, Math.min(buf.length, start + length)), ptrPtr, sizePtr);
        },
      ),
      proxy_set_buffer_bytes: guard(
        'proxy_set_buffer_bytes',
        (type: number, start: number, length: number, ptr: number, len: number) => {
          const buf = this.phase.buffers.get(type);
          if (!buf) return Status.NotFound;
          const data = this.read(ptr, len);
          // Envoy's BufferBase::copyFrom: start 0 drops `length` bytes and prepends; start >= size appends.
          let next: Buffer;
          if (start === 0) next = Buffer.concat([data, buf.subarray(Math.min(length, buf.length))]);
          else if (start >= buf.length) next = Buffer.concat([buf, data]);
          else return Status.BadArgument;
          this.phase.buffers.set(type, next);
          return Status.Ok;
        },
      ),
      proxy_get_header_map_pairs: guard(
        'proxy_get_header_map_pairs',
        // Envoy serializes a map not available in this callback as an empty one.
        (type: number, ptrPtr: number, sizePtr: number) =>
          this.give(serializePairs(this.phase.maps.get(type) ?? []), ptrPtr, sizePtr),
      ),
      proxy_get_header_map_value: guard(
        'proxy_get_header_map_value',
        (type: number, kPtr: number, kLen: number, ptrPtr: number, sizePtr: number) =>
          this.withMap(type, kPtr, kLen, (map, key) => {
            const hit = map.find(([k]) => k === key);
            return hit ? this.give(Buffer.from(hit[1], 'latin1'), ptrPtr, sizePtr) : Status.NotFound;
          }),
      ),
      proxy_replace_header_map_value: guard(
        'proxy_replace_header_map_value',
        (type: number, kPtr: number, kLen: number, vPtr: number, vLen: number) =>
          this.withMap(type, kPtr, kLen, (map, key) => {
            this.setMap(type, [...map.filter(([k]) => k !== key), [key, this.read(vPtr, vLen).toString('latin1')]]);
            return Status.Ok;
          }),
      ),
      proxy_add_header_map_value: guard(
        'proxy_add_header_map_value',
        (type: number, kPtr: number, kLen: number, vPtr: number, vLen: number) =>
          this.withMap(type, kPtr, kLen, (map, key) => {
            this.setMap(type, [...map, [key, this.read(vPtr, vLen).toString('latin1')]]);
            return Status.Ok;
          }),
      ),
      proxy_remove_header_map_value: guard(
        'proxy_remove_header_map_value',
        (type: number, kPtr: number, kLen: number) =>
          this.withMap(type, kPtr, kLen, (map, key) => {
            this.setMap(
              type,
              map.filter(([k]) => k !== key),
            );
            return Status.Ok;
          }),
      ),
      proxy_send_local_response: guard(
        'proxy_send_local_response',
        (
          status: number,
          dPtr: number,
          dLen: number,
          bPtr: number,
          bLen: number,
          hPtr: number,
          hLen: number,
          _grpc: number,
        ) => {
          if (!this.phase.stream) return Status.BadArgument;
          const headers = hLen > 0 ? deserializePairs(this.read(hPtr, hLen)) : [];
          if (!headers) return Status.SerializationFailure;
          this.phase.localReply = {
            status,
            details: this.read(dPtr, dLen).toString('latin1').replace(/ /g, '_'),
            body: this.read(bPtr, bLen),
            headers,
          };
          return Status.Ok;
        },
      ),
      proxy_set_effective_context: guard('proxy_set_effective_context', (id: number) => {
        if (!this.liveContexts.has(id >>> 0)) return Status.BadArgument;
        this.effectiveContext = id >>> 0;
        return Status.Ok;
      }),
      proxy_set_tick_period_milliseconds: guard('proxy_set_tick_period_milliseconds', (period: number) => {
        this.tickPeriodMs = period >>> 0;
        return Status.Ok;
      }),
      proxy_http_call: guard(
        'proxy_http_call',
        (
          uPtr: number,
          uLen: number,
          hPtr: number,
          hLen: number,
          bPtr: number,
          bLen: number,
          _tPtr: number,
          _tLen: number,
          timeoutMs: number,
          tokenPtr: number,
        ) => this.httpCall(uPtr, uLen, hPtr, hLen, bPtr, bLen, timeoutMs, tokenPtr),
      ),
      proxy_define_metric: guard('proxy_define_metric', (type: number, nPtr: number, nLen: number, idPtr: number) => {
        if (type < 0 || type > 2) return Status.BadArgument;
        // Envoy gives a new id on every call (type in the low bits), all ids of one name naming one stat.
        const name = this.read(nPtr, nLen).toString('latin1');
        const id = (this.nextMetricId++ << 2) | type;
        this.metricIds.set(id, { name, type });
        if (!this.metrics.has(name)) this.metrics.set(name, 0n);
        this.view().setUint32(idPtr, id, true);
        return Status.Ok;
      }),
      proxy_increment_metric: guard('proxy_increment_metric', (id: number, offset: number) => {
        const m = this.metricIds.get(id >>> 0);
        if (!m) return Status.NotFound;
        const by = BigInt(offset);
        if (m.type === 0 && by <= 0n) return Status.BadArgument;
        this.metrics.set(m.name, (this.metrics.get(m.name) ?? 0n) + by);
        return Status.Ok;
      }),
    };
    return {
      env,
      wasi_snapshot_preview1: {
        random_get: (ptr: number, len: number) => {
          randomFillSync(this.mem(), ptr, len);
          return 0;
        },
        environ_sizes_get: (countPtr: number, sizePtr: number) => {
          const entries = this.environ();
          this.view().setUint32(countPtr, entries.length, true);
          this.view().setUint32(
            sizePtr,
            entries.reduce((n, e) => n + e.length, 0),
            true,
          );
          return 0;
        },
        environ_get: (ptrs: number, buf: number) => {
          let at = buf;
          this.environ().forEach((e, i) => {
            this.view().setUint32(ptrs + i * 4, at, true);
            this.mem().set(e, at);
            at += e.length;
          });
          return 0;
        },
      },
    };
  }

  /** NAME=value\0 entries, as WASI lays them out. */
  private environ(): Buffer[] {
    return Object.entries(this.opts.environment ?? {}).map(([k, v]) => Buffer.from(`${k}=${v}\0`));
  }

  private buffer(type: number): Buffer | undefined {
    if (type === BufferType.PluginConfiguration) return this.configuration.plugin;
    if (type === BufferType.VmConfiguration) return this.configuration.vm;
    return this.phase.buffers.get(type);
  }

  /** A header map call: BadArgument when the map is not available in this callback (Envoy), the key lower-cased. */
  private withMap(type: number, kPtr: number, kLen: number, op: (map: Headers, key: string) => number): number {
    const map = this.phase.maps.get(type);
    if (!map) return Status.BadArgument;
    return op(map, this.read(kPtr, kLen).toString('latin1').toLowerCase());
  }

  private setMap(type: number, map: Headers): void {
    this.phase.maps.set(type, map);
    this.phase.stream?.mapChanged(type, map);
  }

  private httpCall(
    uPtr: number,
    uLen: number,
    hPtr: number,
    hLen: number,
    bPtr: number,
    bLen: number,
    timeoutMs: number,
    tokenPtr: number,
  ): number {
    const cluster = this.read(uPtr, uLen).toString('latin1');
    const headers = deserializePairs(this.read(hPtr, hLen));
    if (!headers) return Status.SerializationFailure;
    const has = (k: string) => headers.some(([n]) => n === k);
    if (!has(':method') || !has(':path') || !has(':authority')) return Status.BadArgument;
    if (!(this.opts.clusters ?? []).includes(cluster)) return Status.BadArgument;
    const token = this.nextToken++;
    this.view().setUint32(tokenPtr, token, true);
    const contextId = this.effectiveContext ?? this.phase.stream?.id ?? this.rootId;
    const callout: Callout = { token, contextId, cluster, headers, body: this.read(bPtr, bLen), timeoutMs };
    this.callouts.push(callout);
    const dispatch = this.opts.dispatch ?? (() => ({ kind: 'no-healthy-upstream' }) as const);
    const done = Promise.resolve()
      .then(() => dispatch(callout))
      .catch((): CalloutAnswer => ({ kind: 'reset' }))
      .then((answer) => this.deliver(callout, answer))
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
    return Status.Ok;
  }

  /** The answer on the context that made the call: Envoy's onSuccess / onFailure (reset: no headers, no body). */
  private deliver(callout: Callout, answer: CalloutAnswer): void {
    const { token, contextId } = callout;
    if (this.dead || this.cancelled.has(token)) return;
    let headers: Headers = [];
    let body = Buffer.alloc(0);
    switch (answer.kind) {
      case 'response':
        headers = [[':status', String(answer.status)], ...(answer.headers ?? [])];
        body = Buffer.from(answer.body ?? '');
        break;
      case 'timeout':
        headers = [[':status', '504']];
        body = Buffer.from('upstream request timeout');
        break;
      case 'no-healthy-upstream':
        headers = [[':status', '503']];
        body = Buffer.from('no healthy upstream');
        break;
      case 'reset':
        break;
      default: {
        const never: never = answer;
        throw new Error(`unknown answer ${String(never)}`);
      }
    }
    const phase: Phase = {
      stream: undefined,
      maps: new Map([[MapType.HttpCallResponseHeaders, headers]]),
      buffers: new Map([[BufferType.HttpCallResponseBody, body]]),
    };
    try {
      this.inPhase(phase, () =>
        this.call('proxy_on_http_call_response', contextId, token, headers.length, body.length, 0),
      );
    } catch (err) {
      if (!(err instanceof VmDeadError)) throw err;
    }
  }
}
