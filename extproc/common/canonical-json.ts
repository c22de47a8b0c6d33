/**
 * Canonical JSON for hashing: keys sorted by code unit order at every level, no whitespace, `undefined` members
 * omitted (as JSON.stringify does). Same value → same bytes, whatever order an adapter built the object in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return JSON.stringify(value.toString());
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v = value[i];
      out += v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v);
    }
    return `${out}]`;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * `objectJson`, the canonical JSON of an object without a member `key`, with the member `key: valueJson` added at its
 * sorted place: the canonical JSON of the object with that member, without parsing and serializing it again. Reads
 * the object's top level only as far as the place (each member's key, then its value skipped over).
 */
export function withMember(objectJson: string, key: string, valueJson: string): string {
  const member = `${JSON.stringify(key)}:${valueJson}`;
  if (objectJson === '{}') return `{${member}}`;
  let i = 1;
  for (;;) {
    const keyEnd = stringEnd(objectJson, i);
    const k = objectJson.slice(i + 1, keyEnd);
    if ((k.includes('\\') ? (JSON.parse(`"${k}"`) as string) : k) > key)
      return `${objectJson.slice(0, i)}${member},${objectJson.slice(i)}`;
    const next = valueEnd(objectJson, keyEnd + 2);
    if (objectJson.charCodeAt(next) !== COMMA) return `${objectJson.slice(0, next)},${member}}`;
    i = next + 1;
  }
}

/** The index of the quote that closes the JSON string opening at `start`. */
function stringEnd(json: string, start: number): number {
  let q = json.indexOf('"', start + 1);
  for (;;) {
    let slashes = 0;
    while (json.charCodeAt(q - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q;
    q = json.indexOf('"', q + 1);
  }
}

/** The index just past the JSON value starting at `start`: the `,` or `}` that follows it in its object. */
function valueEnd(json: string, start: number): number {
  let depth = 0;
  for (let i = start; ; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) i = stringEnd(json, i);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return i;
      depth--;
    } else if (c === COMMA && depth === 0) return i;
  }
}
