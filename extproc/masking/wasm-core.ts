/**
 * One instance of the masking core (wasm-filter/build/masking.wasm): typed calls over its exports and its memory.
 * An instance holds one stream's carry-over, so every stream gets its own instance of the shared compiled module.
 */
import { readFile } from 'node:fs/promises';
import { packageFile } from '../common/package-files.ts';

interface CoreExports {
  memory: WebAssembly.Memory;
  reserve(n: number): number;
  scan(n: number, entities: number, final: number): number;
  pending(): number;
  pendingLength(): number;
  spans(): number;
  cutPosition(): number;
  carryLimit(): number;
  contFlag(): number;
  reserveSpans(n: number): number;
  setSpans(n: number, cut: number): number;
  apply(): number;
  passThrough(): number;
  output(): number;
  reset(): void;
  setStrategy(entity: number, strategy: number, keep: number): number;
  setName(entity: number, n: number): number;
  setHashKey(n: number): number;
}

export const WASM_PATH = packageFile('wasm-filter/build/masking.wasm', 'masking.wasm');

export class MaskingCoreMissingError extends Error {
  readonly code = 'masking_core_missing';
}

let compiled: Promise<WebAssembly.Module> | undefined;

export function compileCore(path = WASM_PATH): Promise<WebAssembly.Module> {
  if (path !== WASM_PATH) return load(path);
  compiled ??= load(path).catch((err: unknown) => {
    compiled = undefined;
    throw err;
  });
  return compiled;
}

async function load(path: string): Promise<WebAssembly.Module> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new MaskingCoreMissingError(`masking core not found at ${path}: run npm run build:wasm`);
  }
  return WebAssembly.compile(new Uint8Array(bytes));
}

/** A span the core found or will rewrite: byte offsets into the pending data, engine entity id, continuation flag. */
export interface CoreSpan {
  start: number;
  end: number;
  entity: number;
  cont: boolean;
}

export const STRATEGY_CODES = { redact: 0, mask: 1, partial: 2, hash: 3 } as const;

export class WasmCore {
  private readonly x: CoreExports;
  private readonly contFlag: number;
  /** The plan the entity table was last configured for (set by the engine). */
  configured: unknown = undefined;

  constructor(module: WebAssembly.Module, hashKey: Uint8Array) {
    this.x = new WebAssembly.Instance(module, {}).exports as unknown as CoreExports;
    this.contFlag = this.x.contFlag();
    this.write(hashKey);
    this.check(this.x.setHashKey(hashKey.length), 'setHashKey');
  }

  get carryLimit(): number {
    return this.x.carryLimit();
  }

  private check(result: number, what: string): number {
    if (result < 0) throw new Error(`masking core: ${what} failed`);
    return result;
  }

  /** Copies bytes after the carry (where the next scan reads them). */
  write(bytes: Uint8Array): void {
    const p = this.x.reserve(bytes.length);
    if (p === 0) throw new Error('masking core: out of memory');
    new Uint8Array(this.x.memory.buffer, p, bytes.length).set(bytes);
  }

  setStrategy(entity: number, strategy: keyof typeof STRATEGY_CODES, keep: number): void {
    this.check(this.x.setStrategy(entity, STRATEGY_CODES[strategy], keep), 'setStrategy');
  }

  setName(entity: number, name: string): void {
    const bytes = Buffer.from(name, 'utf8');
    this.write(bytes);
    this.check(this.x.setName(entity, bytes.length), 'setName');
  }

  reset(): void {
    this.x.reset();
  }

  /** Scans the carry plus `chunk`; returns the spans found and the cut. */
  scan(chunk: Uint8Array, entityMask: number, final: boolean): { spans: CoreSpan[]; cut: number; total: number } {
    const raw = this.scanRaw(chunk, entityMask, final);
    const spans: CoreSpan[] = [];
    for (let k = 0; k < raw.count; k++) spans.push(this.spanAt(raw.view, k));
    return { spans, cut: raw.cut, total: raw.total };
  }

  /**
   * Scans like scan() but leaves the spans in the core's memory (3 int32 per span, valid until the next call), for
   * a host that only counts them.
   */
  scanRaw(
    chunk: Uint8Array,
    entityMask: number,
    final: boolean,
  ): { count: number; view: Int32Array; cut: number; total: number } {
    this.write(chunk);
    const count = this.check(this.x.scan(chunk.length, entityMask, final ? 1 : 0), 'scan');
    const view = new Int32Array(this.x.memory.buffer, this.x.spans(), count * 3);
    return { count, view, cut: this.x.cutPosition(), total: this.x.pendingLength() };
  }

  /** Whether a span's meta word marks it as the continuation of a value begun in an earlier chunk. */
  continues(meta: number): boolean {
    return (meta & this.contFlag) !== 0;
  }

  spanAt(view: Int32Array, k: number): CoreSpan {
    const meta = view[3 * k + 2];
    return { start: view[3 * k], end: view[3 * k + 1], entity: meta & 0xff, cont: (meta & this.contFlag) !== 0 };
  }

  /** Bytes held from earlier chunks (between steps: the carry). */
  pendingLength(): number {
    return this.x.pendingLength();
  }

  /** The pending bytes (carry + last chunk) as a view; valid until the next call into the core. */
  pending(): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, this.x.pending(), this.x.pendingLength());
  }

  /** Replaces the core's span list and cut (after merging spans found in Node). */
  setSpans(spans: readonly CoreSpan[], cut: number): void {
    const p = this.x.reserveSpans(spans.length);
    if (p === 0 && spans.length > 0) throw new Error('masking core: out of memory');
    const view = new Int32Array(this.x.memory.buffer, p, spans.length * 3);
    spans.forEach((s, k) => {
      view[3 * k] = s.start;
      view[3 * k + 1] = s.end;
      view[3 * k + 2] = s.entity | (s.cont ? this.contFlag : 0);
    });
    this.check(this.x.setSpans(spans.length, cut), 'setSpans');
  }

  /** Rewrites everything before the cut and returns a copy of it; the rest stays as carry. */
  apply(): Uint8Array {
    return Buffer.from(this.applyView());
  }

  /** Like apply(), but the result is a view of the core's memory, valid until the next call into the core. */
  applyView(): Uint8Array {
    const n = this.check(this.x.apply(), 'apply');
    return new Uint8Array(this.x.memory.buffer, this.x.output(), n);
  }

  /** With no spans: makes the bytes before the cut final without a copy; returns how many they are. */
  passThrough(): number {
    return this.check(this.x.passThrough(), 'passThrough');
  }
}
