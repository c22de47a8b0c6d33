/** Keeps an event's data under a byte limit, marking what was cut: long strings are shortened first. */

export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024;

/** Returns `data` unchanged when its JSON fits in maxBytes, otherwise a truncated copy with `truncated: true`. */
export function limitEventData(data: Record<string, unknown>, maxBytes: number): Record<string, unknown> {
  const json = JSON.stringify(data);
  // JSON length in UTF-16 units is a cheap lower bound for the byte length; only measure bytes when close.
  if (json.length * 3 <= maxBytes) return data;
  const bytes = Buffer.byteLength(json);
  if (bytes <= maxBytes) return data;
  const budget = Math.max(256, maxBytes - 256);
  const strings: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; len: number }> = [];
  const copy = cloneCollect(data, strings) as Record<string, unknown>;
  strings.sort((a, b) => b.len - a.len);
  let excess = bytes - budget;
  for (const s of strings) {
    if (excess <= 0) break;
    const value = (s.parent as Record<string | number, string>)[s.key];
    const len = Buffer.byteLength(value);
    const cut = truncateUtf8(value, len - excess);
    excess -= len - Buffer.byteLength(cut);
    (s.parent as Record<string | number, string>)[s.key] = cut;
  }
  const out = { ...copy, truncated: true, originalBytes: bytes };
  const outJson = JSON.stringify(out);
  if (Buffer.byteLength(outJson) <= maxBytes) return out;
  return { truncated: true, originalBytes: bytes, preview: truncateUtf8(json, budget / 2) };
}

function cloneCollect(
  value: unknown,
  strings: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; len: number }>,
): unknown {
  if (Array.isArray(value)) {
    const arr = value.map((v) => cloneCollect(v, strings));
    arr.forEach((v, i) => {
      if (typeof v === 'string') strings.push({ parent: arr, key: i, len: v.length });
    });
    return arr;
  }
  if (value !== null && typeof value === 'object') {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      obj[k] = cloneCollect(v, strings);
      if (typeof obj[k] === 'string') strings.push({ parent: obj, key: k, len: (obj[k] as string).length });
    }
    return obj;
  }
  return value;
}

/** The longest prefix of `s` of at most maxBytes UTF-8 bytes, never splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  // UTF-16 length × 3 bounds the UTF-8 size: a string that surely fits is returned without encoding it.
  if (s.length * 3 <= maxBytes) return s;
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
