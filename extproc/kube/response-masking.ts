/**
 * Masking of Kubernetes API responses, by what the body is:
 * - JSON objects, lists and `as=Table` responses (BUFFERED): each object is masked on its own — path rules are
 *   relative to the object (`$.data.*`), a Secret's `data` values are base64-decoded before detection and re-encoded,
 *   every other string is scanned for PII; list envelopes and table cells are scanned too;
 * - watch streams (STREAMED, one JSON event per line): each complete line's `object` is masked like the above; a
 *   partial line is carried over to the next chunk, up to MAX_EVENT_BYTES;
 * - log text (BUFFERED, or STREAMED for `follow=true`): the engine's streaming masker, whose carry-over is bounded.
 * Any other content type cannot be masked and is refused by the processor.
 */
import type { CompiledMasking, Finding, MaskingEngine, MaskingStream } from '../masking/index.ts';

export type ContentKind = 'json' | 'text' | 'other';

/** Largest watch event (one line) held while waiting for its end; etcd's object limit is ~1.5 MiB. */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

export class MaskingLimitError extends Error {}

/** The media type family of a response, from its content-type (parameters such as `as=Table` kept out). */
export function contentKind(contentType: string | undefined): ContentKind {
  const media = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json'))) return 'json';
  if (media === 'text/plain') return 'text';
  return 'other';
}

/** True when a plan masks anything at all. */
export function masksAnything(plan: CompiledMasking | null): plan is CompiledMasking {
  return plan !== null && (!plan.contentEmpty || plan.paths.length > 0);
}

export class Findings {
  private readonly counts = new Map<string, number>();
  add(list: readonly Finding[]): void {
    for (const f of list) this.counts.set(f.entity, (this.counts.get(f.entity) ?? 0) + f.count);
  }
  list(): Finding[] {
    return [...this.counts].map(([entity, count]) => ({ entity, count }));
  }
  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Masks one decoded response document; `resource` tells Secrets apart when items carry no `kind`. */
export function maskKubeJson(
  engine: MaskingEngine,
  plan: CompiledMasking,
  value: unknown,
  resource: string,
  found: Findings,
): unknown {
  const maskObject = (o: unknown): unknown => {
    const secret = isObject(o) && (o.kind === 'Secret' || (o.kind === undefined && resource === 'secrets'));
    const r = engine.maskJson(o, plan, secret ? { base64Paths: ['$.data.*'] } : {});
    found.add(r.findings);
    return r.value;
  };
  const maskContent = (v: unknown): unknown => {
    const r = engine.maskJson(v, { ...plan, paths: [] });
    found.add(r.findings);
    return r.value;
  };
  if (isObject(value) && value.kind === 'Table' && Array.isArray(value.rows)) {
    const { rows, ...envelope } = value;
    const out = maskContent(envelope) as Json;
    out.rows = (rows as unknown[]).map((row) => {
      if (!isObject(row)) return maskContent(row);
      const { cells, object, ...rest } = row;
      const masked = maskContent(rest) as Json;
      if (cells !== undefined) masked.cells = maskContent(cells);
      if (object !== undefined) masked.object = maskObject(object);
      return masked;
    });
    return out;
  }
  if (isObject(value) && Array.isArray(value.items) && typeof value.kind === 'string' && value.kind.endsWith('List')) {
    const { items, ...envelope } = value;
    const out = maskContent(envelope) as Json;
    out.items = (items as unknown[]).map(maskObject);
    return out;
  }
  return maskObject(value);
}

/**
 * A whole JSON body. Returns null when nothing changed (the body goes on untouched). One raw scan of the bytes
 * decides whether content detection can find anything; when it cannot, the structured walk runs path rules only
 * (plain JS, no detector calls per string). Secrets always get the full walk: their values are base64, which a raw
 * scan cannot see into. A body that is not JSON is masked as text.
 */
export function maskJsonBody(
  engine: MaskingEngine,
  plan: CompiledMasking,
  body: Uint8Array,
  resource: string,
  found: Findings,
): Uint8Array | null {
  const secret = resource === 'secrets';
  const contentFound = secret || (!plan.contentEmpty && engine.maskBytes(body, plan).findings.length > 0);
  if (!contentFound && !anyPathMayMatch(plan, body)) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return maskTextBody(engine, plan, body, found);
  }
  const before = found.total;
  const masked = maskKubeJson(engine, contentFound ? plan : pathsOnly(plan), doc, resource, found);
  if (found.total === before) return null;
  return Buffer.from(JSON.stringify(masked));
}

/**
 * Fast path for the common response (a Pod list, a Deployment): no path rule can match unless every member name the
 * path spells out occurs in the document, and the raw bytes show whether one does: without a `\u` escape in the
 * body, a member name without `"`, `\`, `/` or control characters can only be written as itself between quotes. A
 * body with any `\u`, or a path of wildcards only, takes the full walk.
 */
export function anyPathMayMatch(plan: CompiledMasking, body: Uint8Array): boolean {
  if (plan.paths.length === 0) return false;
  const needles = pathNeedles(plan);
  if (needles.some((n) => n === null)) return true;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.includes(UNICODE_ESCAPE)) return true;
  // Paths share names ($.data.* and $.items[*].data.*): each name is looked for once per body.
  const present = new Map<Buffer, boolean>();
  for (const names of needles) {
    if (names === null) continue;
    let all = true;
    for (const name of names) {
      let p = present.get(name);
      if (p === undefined) {
        p = buf.includes(name);
        present.set(name, p);
      }
      if (!p) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

const UNICODE_ESCAPE = Buffer.from('\\u');
/** A name a JSON encoder may only write verbatim (no escape applies to any of its characters but `\u`). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON escapes exactly these control characters
const VERBATIM_NAME = /^[^"\\/\u0000-\u001f\u2028\u2029]+$/;
const needleCache = new WeakMap<CompiledMasking, (Buffer[] | null)[]>();

/** Per path: the quoted member names it requires, or null when it requires none we can look for. */
function pathNeedles(plan: CompiledMasking): (Buffer[] | null)[] {
  let needles = needleCache.get(plan);
  if (!needles) {
    const interned = new Map<string, Buffer>();
    needles = plan.paths.map(({ path }) => {
      const names: Buffer[] = [];
      for (const seg of path) {
        const key = seg.kind === 'key' || seg.kind === 'descend' ? seg.key : null;
        if (key === null) continue;
        if (!VERBATIM_NAME.test(key)) return null;
        const quoted = JSON.stringify(key);
        let needle = interned.get(quoted);
        if (!needle) {
          needle = Buffer.from(quoted, 'utf8');
          interned.set(quoted, needle);
        }
        names.push(needle);
      }
      return names.length > 0 ? names : null;
    });
    needleCache.set(plan, needles);
  }
  return needles;
}

const pathsOnlyPlans = new WeakMap<CompiledMasking, CompiledMasking>();
function pathsOnly(plan: CompiledMasking): CompiledMasking {
  let p = pathsOnlyPlans.get(plan);
  if (!p) {
    p = { ...plan, entityMask: 0, custom: [], contentEmpty: true, minDigits: 0 };
    pathsOnlyPlans.set(plan, p);
  }
  return p;
}

export function maskTextBody(
  engine: MaskingEngine,
  plan: CompiledMasking,
  body: Uint8Array,
  found: Findings,
): Uint8Array | null {
  const r = engine.maskBytes(body, plan);
  found.add(r.findings);
  return r.findings.length === 0 ? null : r.output;
}

/** A masker for one streamed response body: push each chunk, then end once. */
export interface StreamMasker {
  push(chunk: Uint8Array): Uint8Array;
  end(): Uint8Array;
}

/** Newline-delimited watch events: whole lines are masked as JSON; the partial last line waits for the next chunk. */
export class WatchMasker implements StreamMasker {
  private carry: Buffer[] = [];
  private carried = 0;

  constructor(
    private readonly engine: MaskingEngine,
    private readonly plan: CompiledMasking,
    private readonly resource: string,
    private readonly found: Findings,
  ) {}

  push(chunk: Uint8Array): Uint8Array {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const nl = buf.lastIndexOf(0x0a);
    if (nl < 0) {
      this.hold(buf);
      return new Uint8Array(0);
    }
    const complete = Buffer.concat([...this.carry, buf.subarray(0, nl + 1)]);
    this.carry = [];
    this.carried = 0;
    this.hold(buf.subarray(nl + 1));
    return this.maskLines(complete);
  }

  end(): Uint8Array {
    const rest = Buffer.concat(this.carry);
    this.carry = [];
    this.carried = 0;
    return rest.length === 0 ? rest : this.maskLines(rest);
  }

  private hold(part: Buffer): void {
    if (part.length === 0) return;
    this.carried += part.length;
    if (this.carried > MAX_EVENT_BYTES) throw new MaskingLimitError(`a watch event exceeds ${MAX_EVENT_BYTES} bytes`);
    this.carry.push(Buffer.from(part));
  }

  private maskLines(text: Buffer): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf(0x0a, start);
      end = end < 0 ? text.length : end + 1;
      out.push(this.maskLine(text.subarray(start, end)));
      start = end;
    }
    return Buffer.concat(out);
  }

  private maskLine(line: Buffer): Buffer {
    const trimmedEnd = line[line.length - 1] === 0x0a ? line.length - 1 : line.length;
    const body = line.subarray(0, trimmedEnd);
    if (body.length === 0) return line;
    let event: unknown;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch {
      const r = this.engine.maskBytes(line, this.plan);
      this.found.add(r.findings);
      return Buffer.from(r.output);
    }
    const before = this.found.total;
    const masked =
      isObject(event) && 'object' in event
        ? {
            ...maskKubeJsonShallow(event, this.engine, this.plan, this.found),
            object: maskKubeJson(this.engine, this.plan, event.object, this.resource, this.found),
          }
        : maskKubeJson(this.engine, this.plan, event, this.resource, this.found);
    if (this.found.total === before) return line;
    return Buffer.from(`${JSON.stringify(masked)}${trimmedEnd < line.length ? '\n' : ''}`);
  }
}

function maskKubeJsonShallow(event: Json, engine: MaskingEngine, plan: CompiledMasking, found: Findings): Json {
  const { object: _object, ...rest } = event;
  const r = engine.maskJson(rest, { ...plan, paths: [] });
  found.add(r.findings);
  return r.value as Json;
}

/** Followed log text: the engine's streaming masker (bounded carry-over, so `kubectl logs -f` keeps streaming). */
export class LogMasker implements StreamMasker {
  private readonly stream: MaskingStream;

  constructor(
    engine: MaskingEngine,
    plan: CompiledMasking,
    private readonly found: Findings,
  ) {
    this.stream = engine.createStream(plan);
  }

  push(chunk: Uint8Array): Uint8Array {
    return this.stream.push(chunk);
  }

  end(): Uint8Array {
    const out = this.stream.end();
    this.found.add(this.stream.findings());
    return out;
  }
}
