/**
 * The masking engine in Node: the wasm core's built-in detectors and strategies, plus what only Node does — custom
 * detectors (regular expressions, word lists), whole-value field rules (JSON paths, Postgres columns) and JSON walks.
 */
import { randomBytes } from 'node:crypto';
import { CUSTOM_ID_BASE, FIELD_ID, type CompiledMasking, type FieldMasking } from './compile.ts';
import { utf8Text } from './custom-detectors.ts';
import { matchJsonPath, parseJsonPath } from './json-path.ts';
import { BUILTIN_ENTITIES, ENTITY_VALIDATION } from './types.ts';
import { compileCore, WasmCore, type CoreSpan } from './wasm-core.ts';

export interface Finding {
  /** Built-in entity, custom detector name, or the name of the field rule that masked a whole value. */
  entity: string;
  count: number;
}

/** One value found, for explaining what masking did; never the value itself. */
export interface Detection {
  /** Built-in entity, custom detector name, or `FIELD`. */
  entity: string;
  /** Byte offsets in the input (the whole stream, for a stream). */
  start: number;
  end: number;
  /** What the value passed to be reported. */
  validation: string;
}

export interface MaskResult {
  output: Uint8Array;
  findings: Finding[];
}

/** Custom detectors may match across blanks: a stream holds back the current line, at most this many bytes. */
const CUSTOM_HOLD = 256;

class FindingCounter {
  private readonly counts = new Map<string, number>();
  add(entity: string, n = 1): void {
    this.counts.set(entity, (this.counts.get(entity) ?? 0) + n);
  }
  list(): Finding[] {
    return [...this.counts].map(([entity, count]) => ({ entity, count }));
  }
  get empty(): boolean {
    return this.counts.size === 0;
  }
}

function configure(core: WasmCore, plan: CompiledMasking): void {
  if (core.configured === plan) return;
  plan.builtin.forEach((b, id) => {
    core.setStrategy(id, b.strategy, b.keep);
  });
  for (const d of plan.custom) {
    core.setName(d.id, d.name);
    core.setStrategy(d.id, d.strategy, d.keep);
  }
  core.configured = plan;
}

function entityName(plan: CompiledMasking, id: number): string {
  if (id < BUILTIN_ENTITIES.length) return BUILTIN_ENTITIES[id];
  return plan.custom[id - CUSTOM_ID_BASE]?.name ?? 'FIELD';
}

function validationOf(plan: CompiledMasking, id: number): string {
  if (id < BUILTIN_ENTITIES.length) return ENTITY_VALIDATION[BUILTIN_ENTITIES[id]];
  const custom = plan.custom[id - CUSTOM_ID_BASE];
  return custom ? `custom detector (${custom.kind})` : 'field rule';
}

/** Where one stream's detections are collected, with the input offset of the core's pending bytes. */
class DetectionLog {
  readonly list: Detection[] = [];
  offset = 0;
}

/**
 * A whole buffer is masked in pieces of this size through the stream path (same core, same results): the core's
 * memory and the rewrite stay in the CPU caches instead of walking the whole buffer three times.
 */
const WHOLE_BUFFER_PIECE = 64 * 1024;

/** The fewest bytes any built-in entity but a `::`-compressed IPv6 address takes (`pwd=x`; test/masking). */
const SHORTEST_ENTITY_WITHOUT_COLON = 5;
const COLON = 0x3a;

/**
 * One scan-and-rewrite step over the core's carry plus `chunk`. `view`: the result may be a view of the core's
 * memory, valid until the next call into the core (for a caller that copies it right away).
 */
function step(
  core: WasmCore,
  plan: CompiledMasking,
  chunk: Uint8Array,
  final: boolean,
  counter: FindingCounter,
  log?: DetectionLog,
  view = false,
): Uint8Array {
  configure(core, plan);
  const carried = core.pendingLength();
  const raw = core.scanRaw(chunk, plan.entityMask, final);
  let count = raw.count;
  let cut = raw.cut;
  if (plan.custom.length === 0 && !log) {
    // The common case: count the core's spans where they are, without building objects.
    for (let k = 0; k < count; k++) {
      const meta = raw.view[3 * k + 2];
      if (!core.continues(meta)) counter.add(entityName(plan, meta & 0xff));
    }
  } else {
    let spans: CoreSpan[] = [];
    for (let k = 0; k < count; k++) spans.push(core.spanAt(raw.view, k));
    if (plan.custom.length > 0) {
      const merged = mergeCustom(plan, core.pending(), spans, raw.cut, raw.total, final);
      spans = merged.spans;
      cut = merged.cut;
      core.setSpans(spans, merged.cut);
    }
    count = spans.length;
    for (const s of spans) if (!s.cont) counter.add(entityName(plan, s.entity));
    if (log) {
      for (const s of spans) {
        const last = log.list.at(-1);
        if (s.cont && last) last.end = log.offset + s.end;
        else {
          const entity = entityName(plan, s.entity);
          log.list.push({
            entity,
            start: log.offset + s.start,
            end: log.offset + s.end,
            validation: validationOf(plan, s.entity),
          });
        }
      }
      log.offset += cut;
    }
  }
  // Nothing to rewrite and no carry in front: the chunk itself (or its head) is the output, without a copy.
  if (count === 0 && carried === 0) return chunk.subarray(0, core.passThrough());
  return view ? core.applyView() : core.apply();
}

/**
 * Adds custom detector spans to the core's: built-in spans win overlaps; when streaming, the cut is lowered to the
 * start of the current line (at most CUSTOM_HOLD bytes back) and never left inside a span.
 */
function mergeCustom(
  plan: CompiledMasking,
  pending: Uint8Array,
  builtin: CoreSpan[],
  coreCut: number,
  total: number,
  final: boolean,
): { spans: CoreSpan[]; cut: number } {
  const { text, offsets } = utf8Text(pending);
  const found: CoreSpan[] = [];
  for (const d of plan.custom) {
    for (const [a, b] of d.find(text)) found.push({ start: offsets[a], end: offsets[b], entity: d.id, cont: false });
  }
  found.sort((x, y) => x.start - y.start || y.end - x.end);
  const all = [...builtin];
  const overlaps = (s: CoreSpan): boolean => all.some((t) => s.start < t.end && t.start < s.end);
  for (const s of found) if (s.end > s.start && !overlaps(s)) all.push(s);
  all.sort((x, y) => x.start - y.start);
  let cut = coreCut;
  if (!final) {
    const floor = Math.max(0, cut - CUSTOM_HOLD);
    const nl = pending.subarray(floor, cut).lastIndexOf(0x0a);
    cut = nl >= 0 ? floor + nl + 1 : floor;
    // Built-in spans are complete: never split one. A custom match across the cut waits for more data.
    for (const s of builtin) if (s.start < cut && cut < s.end) cut = s.end;
    for (const s of all)
      if (s.entity >= CUSTOM_ID_BASE && s.start < cut && (s.end > cut || s.end === total)) cut = s.start;
  }
  return { spans: all.filter((s) => s.end <= cut), cut };
}

export class MaskingStream {
  private readonly counter = new FindingCounter();
  private readonly log: DetectionLog | undefined;
  constructor(
    private readonly core: WasmCore,
    private readonly plan: CompiledMasking,
    opts: { explain?: boolean } = {},
  ) {
    this.log = opts.explain ? new DetectionLog() : undefined;
  }

  /** Masks what can be decided so far; holds back at most the carry-over cap (plus the chunk itself). */
  push(chunk: Uint8Array): Uint8Array {
    if (this.plan.contentEmpty) return chunk.slice();
    return step(this.core, this.plan, chunk, false, this.counter, this.log);
  }

  /** Flushes the carry: the stream's last masked bytes. */
  end(): Uint8Array {
    if (this.plan.contentEmpty) return new Uint8Array(0);
    const out = step(this.core, this.plan, new Uint8Array(0), true, this.counter, this.log);
    this.core.reset();
    return out;
  }

  findings(): Finding[] {
    return this.counter.list();
  }

  /** Each value found so far, with its input offsets (only for a stream created with `explain: true`). */
  detections(): Detection[] {
    return this.log?.list ?? [];
  }
}

/** Whether `buf` holds at least `n` ASCII digits. */
function holdsDigits(buf: Uint8Array, n: number): boolean {
  let seen = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57 && ++seen >= n) return true;
  }
  return false;
}

/** holdsDigits for text: ASCII digits are the same characters in a string as bytes in its UTF-8. */
function textHoldsDigits(text: string, n: number): boolean {
  let seen = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++seen >= n) return true;
  }
  return false;
}

export interface MaskJsonOptions {
  /** JSON paths whose string values are base64 (Kubernetes Secret `data`): decoded before detection, re-encoded. */
  base64Paths?: readonly string[];
}

export class MaskingEngine {
  private readonly core: WasmCore;

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly hashKey: Uint8Array,
  ) {
    this.core = new WasmCore(module, hashKey);
  }

  /**
   * Content detection over a whole buffer. A buffer with nothing to mask comes back as is: the output is then the
   * input itself (no copy), so a caller must not change the input while it still uses the output.
   */
  maskBytes(buf: Uint8Array, plan: CompiledMasking): MaskResult {
    if (plan.contentEmpty) return { output: buf.slice(), findings: [] };
    // The fast path for short values, most of a database's columns (ids, counts, flags, codes): no built-in entity
    // fits in fewer than 5 bytes except an IPv6 address compressed with `::` (`::1`), so a shorter value without a
    // colon is answered without a call into the core. Not with custom detectors: a policy's pattern may match 1 byte.
    if (buf.length < SHORTEST_ENTITY_WITHOUT_COLON && plan.custom.length === 0 && !buf.includes(COLON))
      return { output: buf, findings: [] };
    // Fewer digits than any of the plan's detectors needs (a statement's text, an id, a name): nothing to find.
    if (plan.minDigits > 0 && !holdsDigits(buf, plan.minDigits)) return { output: buf, findings: [] };
    const counter = new FindingCounter();
    this.core.reset();
    if (buf.length <= WHOLE_BUFFER_PIECE)
      return { output: step(this.core, plan, buf, true, counter), findings: counter.list() };
    // Until the first value is found every step passes its bytes through unchanged: the output is then a prefix of
    // the input, and is copied (once) only when a step rewrites something.
    let output: Buffer | undefined;
    let size = 0;
    for (let k = 0; k < buf.length; k += WHOLE_BUFFER_PIECE) {
      const end = Math.min(k + WHOLE_BUFFER_PIECE, buf.length);
      const piece = step(this.core, plan, buf.subarray(k, end), end === buf.length, counter, undefined, true);
      if (!output) {
        if (counter.empty) {
          size += piece.length;
          continue;
        }
        output = Buffer.allocUnsafe(buf.length + (buf.length >> 4));
        output.set(buf.subarray(0, size));
      }
      if (size + piece.length > output.length) {
        const grown = Buffer.allocUnsafe(Math.max(output.length * 2, size + piece.length));
        grown.set(output.subarray(0, size));
        output = grown;
      }
      output.set(piece, size);
      size += piece.length;
    }
    return { output: output ? output.subarray(0, size) : buf, findings: counter.list() };
  }

  /**
   * A streaming masker with its own carry-over (its own core instance). `explain` keeps a Detection per value found
   * (entity, offsets, validation; never the value).
   */
  createStream(plan: CompiledMasking, opts: { explain?: boolean } = {}): MaskingStream {
    return new MaskingStream(new WasmCore(this.module, this.hashKey), plan, opts);
  }

  /** Masks a whole value regardless of its content (column and path rules). Empty values stay empty. */
  maskField(value: Uint8Array, field: FieldMasking): Uint8Array {
    const core = this.core;
    core.reset();
    core.setName(FIELD_ID, field.label);
    core.setStrategy(FIELD_ID, field.strategy, field.keep);
    core.scan(value, 0, true);
    core.setSpans([{ start: 0, end: value.length, entity: FIELD_ID, cont: false }], value.length);
    return core.apply();
  }

  maskFieldText(value: string, field: FieldMasking): string {
    return Buffer.from(this.maskField(Buffer.from(value, 'utf8'), field)).toString('utf8');
  }

  /** Content detection over a string; the same string comes back when nothing was found. */
  maskText(value: string, plan: CompiledMasking): { value: string; findings: Finding[] } {
    if (plan.contentEmpty) return { value, findings: [] };
    // maskBytes' digit prefilter, before the text is encoded (a statement's text, most often).
    if (plan.minDigits > 0 && !textHoldsDigits(value, plan.minDigits)) return { value, findings: [] };
    const r = this.maskBytes(Buffer.from(value, 'utf8'), plan);
    return { value: r.findings.length === 0 ? value : Buffer.from(r.output).toString('utf8'), findings: r.findings };
  }

  /**
   * A base64 value (Kubernetes Secret `data`): decoded, then masked whole when `field` says so, otherwise by content;
   * re-encoded only if something was masked. A value that is not base64 is treated as text.
   */
  maskBase64Value(value: string, plan: CompiledMasking, field?: FieldMasking): { value: string; findings: Finding[] } {
    const decoded = decodeBase64(value);
    if (!decoded)
      return field
        ? { value: this.maskFieldText(value, field), findings: [{ entity: field.label, count: 1 }] }
        : this.maskText(value, plan);
    if (field) {
      return {
        value: Buffer.from(this.maskField(decoded, field)).toString('base64'),
        findings: [{ entity: field.label, count: 1 }],
      };
    }
    const r = this.maskBytes(decoded, plan);
    if (r.findings.length === 0) return { value, findings: [] };
    return { value: Buffer.from(r.output).toString('base64'), findings: r.findings };
  }

  /**
   * A masked deep copy of a JSON value: path rules mask whole values (every leaf under a matched object or array),
   * every other string is masked by content. Numbers and booleans masked whole become strings.
   */
  maskJson(value: unknown, plan: CompiledMasking, opts: MaskJsonOptions = {}): { value: unknown; findings: Finding[] } {
    const base64 = (opts.base64Paths ?? []).map(parseJsonPath);
    const counter = new FindingCounter();
    const loc: (string | number)[] = [];
    const isBase64 = (): boolean => base64.some((p) => matchJsonPath(p, loc));
    const whole = (v: unknown, field: FieldMasking): unknown => {
      if (typeof v === 'string') {
        counter.add(field.label);
        return isBase64() ? this.maskBase64Value(v, plan, field).value : this.maskFieldText(v, field);
      }
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
        counter.add(field.label);
        return this.maskFieldText(String(v), field);
      }
      return walkChildren(v, (child) => whole(child, field));
    };
    const walk = (v: unknown): unknown => {
      const rule = plan.paths.find((p) => matchJsonPath(p.path, loc));
      if (rule) return whole(v, rule.field);
      if (typeof v === 'string') {
        const r = isBase64() ? this.maskBase64Value(v, plan) : this.maskText(v, plan);
        for (const f of r.findings) counter.add(f.entity, f.count);
        return r.value;
      }
      return walkChildren(v, walk);
    };
    const walkChildren = (v: unknown, visit: (child: unknown) => unknown): unknown => {
      if (Array.isArray(v)) {
        return v.map((child, i) => {
          loc.push(i);
          try {
            return visit(child);
          } finally {
            loc.pop();
          }
        });
      }
      if (v !== null && typeof v === 'object') {
        const out: Record<string, unknown> = {};
        for (const [k, child] of Object.entries(v)) {
          loc.push(k);
          try {
            out[k] = visit(child);
          } finally {
            loc.pop();
          }
        }
        return out;
      }
      return v;
    };
    return { value: walk(value), findings: counter.list() };
  }
}

function decodeBase64(value: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  return Buffer.from(value, 'base64');
}

export async function loadMaskingEngine(
  opts: { hashKey?: Uint8Array; wasmPath?: string } = {},
): Promise<MaskingEngine> {
  const module = await compileCore(opts.wasmPath);
  return new MaskingEngine(module, opts.hashKey ?? randomBytes(32));
}

/**
 * The engine an adapter loads on first use and then shares: one load in flight at a time, and a load that failed is
 * tried again on the next call instead of failing every later action.
 */
export function lazyMaskingEngine(): () => Promise<MaskingEngine> {
  let engine: Promise<MaskingEngine> | undefined;
  return () => {
    engine ??= loadMaskingEngine().catch((err: unknown) => {
      engine = undefined;
      throw err;
    });
    return engine;
  };
}
