/**
 * Redaction applied inside Recorder.record() to every event's data, so no adapter can record a secret by mistake:
 * credential headers, members named like a password/token/secret, anything that looks like a bearer token or a JWT,
 * and exact secret values registered at run time (vault values, issued agent tokens).
 */

export const REDACTED = '[REDACTED]';

const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
]);
/** Member names whose value is a credential, whatever its shape (compared lower-case, without `-_.`, by suffix). */
const SECRET_NAME_SUFFIXES = [
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'secret',
  'secrets',
  'token',
  'tokens',
  'apikey',
  'privatekey',
  'credential',
  'credentials',
  'authorization',
  'cookie',
  'sessionkey',
];

/**
 * What the recorder needs to know about a member name: its name, whether it names a secret, and its JSON as the first
 * member (`"name":`) and as a later one (`,"name":`).
 */
interface MemberName {
  name: string;
  secret: boolean;
  json: string;
  nextJson: string;
}

const memberNames = new Map<string, MemberName>();

function memberName(name: string): MemberName {
  let r = memberNames.get(name);
  if (r === undefined) {
    const n = name.toLowerCase().replace(/[-_.]/g, '');
    const secret =
      n === 'pass' || SECRET_HEADERS.has(name.toLowerCase()) || SECRET_NAME_SUFFIXES.some((s) => n.endsWith(s));
    const json = `${JSON.stringify(name)}:`;
    r = { name, secret, json, nextJson: `,${json}` };
    // Member names come from adapters' fixed vocabularies; the bound only guards against data used as keys.
    if (memberNames.size < 10_000) memberNames.set(name, r);
  }
  return r;
}

function isSecretName(name: string): boolean {
  return memberName(name).secret;
}
/** `Bearer xxx` / `Basic xxx`. */
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*/gi;

/** A base64url character: a JWT segment's. */
function isBase64url(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95;
}

/** A word character, as `\b` reads them. */
function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

const DOT = 46;

/** The end of the run of base64url characters starting at `i` (`i` itself when there is none). */
function base64urlRunEnd(s: string, i: number): number {
  let j = i;
  while (j < s.length && isBase64url(s.charCodeAt(j))) j++;
  return j;
}

/**
 * JWTs replaced by REDACTED: what `s.replace(/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\/g, REDACTED)`
 * does (a JSON header `eyJ…`, a payload, an optional signature), in one pass. The regular expression tries every
 * `eyJ` after a `-` inside a run of base64url characters and reads the run again from each: quadratic in the run's
 * length, and a recorded string is the agent's (a 40 KB statement of `-eyJabcd` repeated took 0.45 s, 16 MB would
 * hold the service for hours). A first segment ends where its run ends whichever `eyJ` it starts at, so the run is
 * read once: its leftmost start matches if any does.
 */
export function redactJwts(s: string): string {
  let out = '';
  let copied = 0;
  let i = 0;
  while (i < s.length) {
    if (!isBase64url(s.charCodeAt(i))) {
      i++;
      continue;
    }
    const runEnd = base64urlRunEnd(s, i);
    let start = -1;
    for (let p = i; p + 8 <= runEnd && start < 0; p++) {
      const header = s.charCodeAt(p) === 101 && s.charCodeAt(p + 1) === 121 && s.charCodeAt(p + 2) === 74;
      if (header && (p === 0 || !isWordChar(s.charCodeAt(p - 1)))) start = p;
    }
    i = runEnd;
    if (start < 0 || s.charCodeAt(runEnd) !== DOT) continue;
    const payloadEnd = base64urlRunEnd(s, runEnd + 1);
    if (payloadEnd === runEnd + 1 || s.charCodeAt(payloadEnd) !== DOT) continue;
    const end = base64urlRunEnd(s, payloadEnd + 1);
    out += s.slice(copied, start) + REDACTED;
    copied = end;
    i = end;
  }
  return copied === 0 ? s : out + s.slice(copied);
}

/** Exact secret values to scrub from every recorded string (vault values, live agent tokens). */
export class SecretRegistry {
  private readonly values = new Set<string>();
  /** Changes whenever the values do: what was redacted under another version is redacted again. */
  version = 0;
  add(value: string): void {
    // Very short values would scrub ordinary words; they are covered by name-based redaction instead.
    if (value.length >= 6 && !this.values.has(value)) {
      this.values.add(value);
      this.version++;
    }
  }
  delete(value: string): void {
    if (this.values.delete(value)) this.version++;
  }
  get size(): number {
    return this.values.size;
  }
  scrub(text: string): string {
    let out = text;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }
}

function redactString(s: string, secrets: SecretRegistry | undefined): string {
  let out = s;
  if (out.length > 20) {
    if (out.includes('earer ') || out.includes('asic ') || /bearer|basic/i.test(out))
      out = out.replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`);
    if (out.includes('eyJ')) out = redactJwts(out);
  }
  if (secrets && secrets.size > 0) out = secrets.scrub(out);
  return out;
}

/** Returns a redacted deep copy of `value` (plain JSON data; other values are converted as JSON would). */
export function redact(value: unknown, secrets?: SecretRegistry): unknown {
  return walk(value, secrets, 0);
}

function walk(value: unknown, secrets: SecretRegistry | undefined, depth: number): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (depth > 64) return '[DEPTH LIMIT]';
  if (Array.isArray(value)) {
    // Header lists as [name, value] pairs (Node rawHeaders style, ext_proc header lists).
    if (value.length === 2 && typeof value[0] === 'string' && SECRET_HEADERS.has(value[0].toLowerCase()))
      return [value[0], REDACTED];
    return value.map((v) => walk(v, secrets, depth + 1));
  }
  if (value instanceof Uint8Array) return redactString(Buffer.from(value).toString('utf8'), secrets);
  if (value instanceof Date) return value.toISOString();
  const obj = value as Record<string, unknown>;
  // {key, value} / {name, value} header entries as Envoy's HeaderMap encodes them.
  const headerName = typeof obj.key === 'string' ? obj.key : typeof obj.name === 'string' ? obj.name : undefined;
  const isSecretHeader =
    headerName !== undefined
    && ('value' in obj || 'raw_value' in obj || 'rawValue' in obj)
    && SECRET_HEADERS.has(headerName.toLowerCase());
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (isSecretHeader && (k === 'value' || k === 'raw_value' || k === 'rawValue')) {
      out[k] = REDACTED;
      continue;
    }
    if (isSecretName(k) && !isCountOrFlag(v)) {
      out[k] = REDACTED;
      continue;
    }
    out[k] = walk(v, secrets, depth + 1);
  }
  return out;
}

/** `tokenCount: 3`, `passwordSet: true`: numbers and booleans under secret-like names carry no secret. */
function isCountOrFlag(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'boolean' || v === null;
}

/**
 * The hot-path form used by the recorder: canonicalJson(redact(value, secrets)) in one pass, without building the
 * redacted copy. When `texts` is given, the redacted strings are appended to it (the searchable text of an action).
 *
 * The pieces are collected in an array and joined once, so the result is one flat string. Built by concatenation it
 * was a rope of a few hundred small strings (a decision event's data), which the collector copied while the event
 * waited for its batch and which was flattened again when the writer put it into its slab: writing it cost about
 * 4 µs an event, and the rope several times its own size on the heap.
 */
export function redactToCanonical(
  value: unknown,
  secrets: SecretRegistry | undefined,
  texts: string[] | null,
  /** Only the strings under this member of `value` go to `texts` (an action recorded inside its decision). */
  textsUnder?: string,
): string {
  const out: string[] = [];
  if (textsUnder !== undefined && texts !== null) emitValue(value, secrets, texts, 0, out, textsUnder);
  else emit(value, secrets, texts, 0, out);
  return out.join('');
}

/** Strings JSON.stringify would leave as they are between quotes: no `"`, `\\`, control characters or surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON must escape.
const JSON_PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** JSON.stringify(s) into `out`, without its generic path for the common string that needs no escaping. */
function pushQuoted(out: string[], s: string): void {
  if (s.length < 256 && JSON_PLAIN.test(s)) out.push('"', s, '"');
  else out.push(JSON.stringify(s));
}

/**
 * Sorted members of objects already seen, by their own (insertion) order: adapters build their event data in a few
 * fixed shapes, so the sort and the names' lookups are done once per shape. Looked up by first name, then compared
 * name by name.
 */
const sortedKeyCache = new Map<string, Array<{ keys: string[]; sorted: MemberName[] }>>();
const NO_SHAPES: Array<{ keys: string[]; sorted: MemberName[] }> = [];
let sortedKeyCacheSize = 0;

function sortedMembers(obj: Record<string, unknown>): MemberName[] {
  const keys = Object.keys(obj);
  const id = keys[0];
  const list = sortedKeyCache.get(id) ?? NO_SHAPES;
  for (let i = 0; i < list.length; i++) if (sameKeys(list[i].keys, keys)) return list[i].sorted;
  const sorted = keys.slice().sort().map(memberName);
  // Member names come from adapters' fixed vocabularies; the bound only guards against data used as keys.
  if (sortedKeyCacheSize < 2_000 && keys.length <= 64 && list.length < 16) {
    sortedKeyCacheSize++;
    if (list === NO_SHAPES) sortedKeyCache.set(id, [{ keys, sorted }]);
    else list.push({ keys, sorted });
  }
  return sorted;
}

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The output of frozen objects and arrays, which cannot change: adapters record some shared, frozen data again and
 * again (a statement shape's classification), which is then redacted and serialized once per registry version.
 */
interface FrozenOutput {
  secrets: SecretRegistry | undefined;
  version: number;
  depth: number;
  json: string;
  /** The redacted strings, in order, as `texts` collects them. */
  texts: string[];
}
/** By object; `null` for a frozen object holding one that is not (it could change: never kept). */
const frozenOutputs = new WeakMap<object, FrozenOutput | null>();

function deeplyFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (!Object.isFrozen(value)) return false;
  for (const v of Object.values(value)) if (!deeplyFrozen(v)) return false;
  return true;
}

function emit(
  value: unknown,
  secrets: SecretRegistry | undefined,
  texts: string[] | null,
  depth: number,
  out: string[],
): void {
  if (typeof value === 'object' && value !== null && Object.isFrozen(value))
    emitFrozen(value, secrets, texts, depth, out);
  else emitValue(value, secrets, texts, depth, out);
}

function emitFrozen(
  value: object,
  secrets: SecretRegistry | undefined,
  texts: string[] | null,
  depth: number,
  out: string[],
): void {
  const version = secrets?.version ?? 0;
  let kept = frozenOutputs.get(value);
  if (kept === null) return emitValue(value, secrets, texts, depth, out);
  if (!kept || kept.secrets !== secrets || kept.version !== version || kept.depth !== depth) {
    if (kept === undefined && !deeplyFrozen(value)) {
      frozenOutputs.set(value, null);
      return emitValue(value, secrets, texts, depth, out);
    }
    const collected: string[] = [];
    const pieces: string[] = [];
    emitValue(value, secrets, collected, depth, pieces);
    kept = { secrets, version, depth, json: pieces.join(''), texts: collected };
    frozenOutputs.set(value, kept);
  }
  if (texts) for (const t of kept.texts) texts.push(t);
  out.push(kept.json);
}

function emitValue(
  value: unknown,
  secrets: SecretRegistry | undefined,
  texts: string[] | null,
  depth: number,
  out: string[],
  textsUnder?: string,
): void {
  if (typeof value === 'string') {
    const r = redactString(value, secrets);
    if (texts) texts.push(r);
    pushQuoted(out, r);
    return;
  }
  if (typeof value === 'number') {
    out.push(Number.isFinite(value) ? String(value) : 'null');
    return;
  }
  if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
    return;
  }
  if (value === null || typeof value !== 'object') {
    out.push(typeof value === 'bigint' ? JSON.stringify(value.toString()) : (JSON.stringify(value) ?? 'null'));
    return;
  }
  if (depth > 64) {
    out.push('"[DEPTH LIMIT]"');
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 2 && typeof value[0] === 'string' && SECRET_HEADERS.has(value[0].toLowerCase())) {
      out.push(`[${JSON.stringify(value[0])},"${REDACTED}"]`);
      return;
    }
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (i > 0) out.push(',');
      if (v === undefined || typeof v === 'function') out.push('null');
      else emit(v, secrets, texts, depth + 1, out);
    }
    out.push(']');
    return;
  }
  if (value instanceof Uint8Array || value instanceof Date)
    return emit(walk(value, secrets, depth), secrets, texts, depth, out);
  const obj = value as Record<string, unknown>;
  const headerName = typeof obj.key === 'string' ? obj.key : typeof obj.name === 'string' ? obj.name : undefined;
  const isSecretHeader =
    headerName !== undefined
    && ('value' in obj || 'raw_value' in obj || 'rawValue' in obj)
    && SECRET_HEADERS.has(headerName.toLowerCase());
  const members = sortedMembers(obj);
  out.push('{');
  let first = true;
  for (let i = 0; i < members.length; i++) {
    const name = members[i];
    const k = name.name;
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    out.push(first ? name.json : name.nextJson);
    first = false;
    if (
      (isSecretHeader && (k === 'value' || k === 'raw_value' || k === 'rawValue'))
      || (name.secret && !isCountOrFlag(v))
    ) {
      out.push(`"${REDACTED}"`);
    } else {
      emit(v, secrets, textsUnder === undefined || k === textsUnder ? texts : null, depth + 1, out);
    }
  }
  out.push('}');
}
