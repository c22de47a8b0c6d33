// What the filter reads from a request: the path without its query, deny rule patterns, whether the response is
// a stream the filter masks, the bearer token's shape and id, and a fresh request id. Pure functions over bytes.
import { bytesEqualLiteral, scratchAlloc } from "./memory";

/** Length of the path part of :path (up to `?` or `#`). */
export function pathLength(p: usize, n: i32): i32 {
  for (let i = 0; i < n; i++) {
    const c = load<u8>(p + <usize>i);
    if (c == 63 || c == 35) return i;
  }
  return n;
}

/** True if path[0, n) matches the pattern: `/`-separated segments, `*` = exactly one non-empty segment. */
export function matchPattern(pat: usize, pn: i32, path: usize, n: i32): bool {
  let i = 0;
  let j = 0;
  while (i < pn && j < n) {
    const pc = load<u8>(pat + <usize>i);
    const wildcard = pc == 42 && i > 0 && load<u8>(pat + <usize>(i - 1)) == 47
      && (i + 1 == pn || load<u8>(pat + <usize>(i + 1)) == 47);
    if (wildcard) {
      const segStart = j;
      while (j < n && load<u8>(path + <usize>j) != 47) j++;
      if (j == segStart) return false;
      i++;
      continue;
    }
    if (pc != load<u8>(path + <usize>j)) return false;
    i++;
    j++;
  }
  return i == pn && j == n;
}

/** Segment k (0-based, after the leading `/`) of path[0, n): sets segStart/segLen; false if there is none. */
export let segStart: i32 = 0;
export let segLen: i32 = 0;
function segment(path: usize, n: i32, k: i32): bool {
  let i = 0;
  let index = -1;
  while (i < n) {
    if (load<u8>(path + <usize>i) != 47) return false;
    i++;
    const s = i;
    while (i < n && load<u8>(path + <usize>i) != 47) i++;
    index++;
    if (index == k) {
      segStart = s;
      segLen = i - s;
      return true;
    }
  }
  return false;
}

function segmentIs(path: usize, n: i32, k: i32, s: string): bool {
  return segment(path, n, k) && bytesEqualLiteral(path + <usize>segStart, segLen, s);
}

/** A query boolean as apimachinery reads it: absent, `0` and `false` (any case) are false, anything else true. */
function queryTrue(q: usize, n: i32, name: string): bool {
  let i = 0;
  while (i < n) {
    let e = i;
    while (e < n && load<u8>(q + <usize>e) != 38) e++;
    let eq = i;
    while (eq < e && load<u8>(q + <usize>eq) != 61) eq++;
    if (bytesEqualLiteral(q + <usize>i, eq - i, name)) {
      const vs = eq < e ? eq + 1 : e;
      const vn = e - vs;
      if (bytesEqualLiteral(q + <usize>vs, vn, "0")) return false;
      if (vn == 5) {
        let isFalse = true;
        const f = "false";
        for (let k = 0; k < 5; k++) {
          if ((<u16>load<u8>(q + <usize>(vs + k)) | 0x20) != f.charCodeAt(k)) isFalse = false;
        }
        if (isFalse) return false;
      }
      return true; // the first value decides
    }
    i = e + 1;
  }
  return false;
}

/**
 * True for responses the filter masks as a stream: watches (`/watch/` segment or a true `watch` query) and pod logs
 * (followed or not). ext_proc stays the authority and masks them too; the filter masks them before a single byte
 * leaves Envoy even when ext_proc passes a chunk through unbuffered.
 */
export function isStreamedResponse(path: usize, n: i32): bool {
  const pn = pathLength(path, n);
  if (segmentIs(path, pn, 0, "api") && segmentIs(path, pn, 2, "watch")) return true;
  if (segmentIs(path, pn, 0, "apis") && segmentIs(path, pn, 3, "watch")) return true;
  // .../pods/<name>/log
  let last = -1;
  for (let k = 0; k < 16; k++) if (segment(path, pn, k)) last = k;
  if (last >= 2 && segmentIs(path, pn, last, "log") && segmentIs(path, pn, last - 2, "pods")) return true;
  if (pn < n) {
    const q = path + <usize>(pn + 1);
    const qn = n - pn - 1;
    if (queryTrue(q, qn, "watch") || queryTrue(q, qn, "follow")) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------------ bearer token

export const TOKEN_NOT_BEARER: i32 = 0; // not a `Bearer <token>` value: ext_proc decides
export const TOKEN_MALFORMED: i32 = 1;
export const TOKEN_JWT: i32 = 2;
export let tokenStart: i32 = 0;
export let tokenLen: i32 = 0;
export let payloadStart: i32 = 0;
export let payloadLen: i32 = 0;

function isBase64Url(c: u8): bool {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95;
}

/**
 * Reads an Authorization value as ext_proc does (`Bearer`, any case, blanks, one token, trailing blanks) and says
 * whether the token has the shape of a Portcullis agent token (a compact JWS: three non-empty base64url parts).
 * A value that is not plainly a bearer token is left to ext_proc.
 */
export function classifyAuthorization(v: usize, n: i32): i32 {
  if (n < 7) return TOKEN_NOT_BEARER;
  const b = "bearer";
  for (let k = 0; k < 6; k++) if ((<u16>load<u8>(v + <usize>k) | 0x20) != b.charCodeAt(k)) return TOKEN_NOT_BEARER;
  let i = 6;
  const blank0 = i;
  while (i < n && (load<u8>(v + <usize>i) == 32 || load<u8>(v + <usize>i) == 9)) i++;
  if (i == blank0 || i == n) return TOKEN_NOT_BEARER;
  const s = i;
  while (i < n) {
    const c = load<u8>(v + <usize>i);
    if (c == 32 || c == 9) break;
    if (c <= 32 || c >= 127) return TOKEN_NOT_BEARER;
    i++;
  }
  const e = i;
  while (i < n && (load<u8>(v + <usize>i) == 32 || load<u8>(v + <usize>i) == 9)) i++;
  if (i != n) return TOKEN_NOT_BEARER;
  tokenStart = s;
  tokenLen = e - s;
  let dots = 0;
  let partStart = s;
  for (let k = s; k <= e; k++) {
    const end = k == e || load<u8>(v + <usize>k) == 46;
    if (!end) {
      if (!isBase64Url(load<u8>(v + <usize>k))) return TOKEN_MALFORMED;
      continue;
    }
    if (k == partStart) return TOKEN_MALFORMED;
    if (dots == 1) {
      payloadStart = partStart;
      payloadLen = k - partStart;
    }
    if (k < e) dots++;
    partStart = k + 1;
  }
  return dots == 2 ? TOKEN_JWT : TOKEN_MALFORMED;
}

function b64(c: u8): i32 {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c == 45) return 62;
  if (c == 95) return 63;
  return -1;
}

/** Decodes base64url p[0, n) into scratch; sets decodedPtr/decodedLen; false if out of scratch. */
export let decodedPtr: usize = 0;
export let decodedLen: i32 = 0;
export function decodeBase64Url(p: usize, n: i32): bool {
  const out = scratchAlloc((n >> 2) * 3 + 3);
  if (out == 0) return false;
  let acc: u32 = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const d = b64(load<u8>(p + <usize>i));
    if (d < 0) return false;
    acc = (acc << 6) | <u32>d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(out + <usize>(o++), <u8>(acc >> <u32>bits));
    }
  }
  decodedPtr = out;
  decodedLen = o;
  return true;
}

// ------------------------------------------------------------------------------------------------ request id

const HEX = "0123456789abcdef";

/** Formats 16 random bytes at src as a version 4 UUID (36 bytes at dst). */
export function formatUuid(src: usize, dst: usize): void {
  store<u8>(src + 6, (load<u8>(src + 6) & 0x0f) | 0x40);
  store<u8>(src + 8, (load<u8>(src + 8) & 0x3f) | 0x80);
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) store<u8>(dst + <usize>(o++), 45);
    const b = load<u8>(src + <usize>i);
    store<u8>(dst + <usize>(o++), <u8>HEX.charCodeAt(b >> 4));
    store<u8>(dst + <usize>(o++), <u8>HEX.charCodeAt(b & 15));
  }
}
