// Host calls the filter makes with scratch memory: header values, serialized header maps, the Kubernetes Status
// local reply, metrics and logs. Every helper returns what the host said; none aborts.
import {
  COUNTER, OK, proxy_define_metric, proxy_get_header_map_value, proxy_increment_metric, proxy_log,
  proxy_send_local_response,
} from "./abi";
import { literal, retLen, retPtr, RET_LEN, RET_PTR, scratchAlloc, writeDecimal, writeLiteral } from "./memory";

/** The value of the last header read with readHeader. */
export let valuePtr: usize = 0;
export let valueLen: i32 = 0;

/** Reads header `name` of a map into valuePtr/valueLen; false if absent or the host refused. */
export function readHeader(map: i32, name: string): bool {
  const k = literal(name);
  if (k == 0) return false;
  if (proxy_get_header_map_value(map, k, name.length, RET_PTR, RET_LEN) != OK) return false;
  valuePtr = retPtr();
  valueLen = retLen();
  return valueLen >= 0;
}

// ------------------------------------------------------------------------------------------------ header maps

const MAX_PAIRS: i32 = 8;
const PAIRS: usize = memory.data(MAX_PAIRS * 16, 8);
let pairCount: i32 = 0;

export function pairsStart(): void {
  pairCount = 0;
}

export function pairsAdd(k: usize, kn: i32, v: usize, vn: i32): void {
  if (pairCount >= MAX_PAIRS || kn < 0 || vn < 0) return;
  const q = PAIRS + <usize>(pairCount * 16);
  store<u32>(q, <u32>k);
  store<i32>(q, kn, 4);
  store<u32>(q, <u32>v, 8);
  store<i32>(q, vn, 12);
  pairCount++;
}

export function pairsAddLiterals(k: string, v: string): void {
  const kp = literal(k);
  const vp = literal(v);
  if (kp != 0 && vp != 0) pairsAdd(kp, k.length, vp, v.length);
}

/** The proxy-wasm serialization of the pairs added: count, (key size, value size)*, then each key\0 value\0. */
export let pairsPtr: usize = 0;
export let pairsLen: i32 = 0;

export function pairsBuild(): bool {
  let size = 4 + pairCount * 8;
  for (let i = 0; i < pairCount; i++) {
    const q = PAIRS + <usize>(i * 16);
    size += load<i32>(q, 4) + load<i32>(q, 12) + 2;
  }
  const p = scratchAlloc(size);
  if (p == 0) return false;
  store<u32>(p, <u32>pairCount);
  let d = p + 4 + <usize>(pairCount * 8);
  for (let i = 0; i < pairCount; i++) {
    const q = PAIRS + <usize>(i * 16);
    const kn = load<i32>(q, 4);
    const vn = load<i32>(q, 12);
    store<u32>(p + 4 + <usize>(i * 8), <u32>kn);
    store<u32>(p + 8 + <usize>(i * 8), <u32>vn);
    memory.copy(d, <usize>load<u32>(q), <usize>kn);
    d += <usize>kn;
    store<u8>(d++, 0);
    memory.copy(d, <usize>load<u32>(q, 8), <usize>vn);
    d += <usize>vn;
    store<u8>(d++, 0);
  }
  pairsPtr = p;
  pairsLen = size;
  return true;
}

// ------------------------------------------------------------------------------------------------ local replies

function reasonOf(code: i32): string {
  switch (code) {
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 406: return "NotAcceptable";
    case 503: return "ServiceUnavailable";
    default: return "InternalError";
  }
}

/** Appends message bytes with JSON string escaping (quote, backslash, control bytes). */
export function writeJsonEscaped(src: usize, n: i32, dst: usize): i32 {
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = load<u8>(src + <usize>i);
    if (c == 34 || c == 92) {
      store<u8>(dst + <usize>(o++), 92);
      store<u8>(dst + <usize>(o++), c);
    } else if (c < 32) {
      store<u8>(dst + <usize>(o++), 32);
    } else {
      store<u8>(dst + <usize>(o++), c);
    }
  }
  return o;
}

/**
 * Sends a Kubernetes Status as the local reply (what kubectl prints as `Error from server (<Reason>): <message>`),
 * with the request id so the agent can name the request. Details become Envoy's response code details.
 */
export function sendStatus(
  code: i32, message: usize, messageLen: i32, details: string, requestId: usize, requestIdLen: i32,
): bool {
  const reason = reasonOf(code);
  const body = scratchAlloc(256 + messageLen * 2 + reason.length);
  if (body == 0) return false;
  let o = writeLiteral("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"", body);
  o += writeJsonEscaped(message, messageLen, body + <usize>o);
  o += writeLiteral("\",\"reason\":\"", body + <usize>o);
  o += writeLiteral(reason, body + <usize>o);
  o += writeLiteral("\",\"code\":", body + <usize>o);
  o += writeDecimal(code, body + <usize>o);
  o += writeLiteral("}", body + <usize>o);
  pairsStart();
  pairsAddLiterals("content-type", "application/json");
  pairsAddLiterals("cache-control", "no-cache, private");
  if (requestIdLen > 0) {
    const k = literal("x-portcullis-request-id");
    if (k != 0) pairsAdd(k, 23, requestId, requestIdLen);
  }
  if (!pairsBuild()) return false;
  const d = literal(details);
  return proxy_send_local_response(code, d, details.length, body, o, pairsPtr, pairsLen, -1) == OK;
}

// ------------------------------------------------------------------------------------------------ metrics, logs

export const REQUESTS_SEEN: i32 = 0;
export const DENIED_LOCALLY: i32 = 1;
export const BYTES_MASKED: i32 = 2;
export const SNAPSHOT_REFRESHED: i32 = 3;
export const SNAPSHOT_REFRESH_FAILED: i32 = 4;
export const MASK_FAILURES: i32 = 5;
export const REPORTS_FAILED: i32 = 6;
const METRIC_COUNT: i32 = 7;
const METRIC_IDS: usize = memory.data(METRIC_COUNT * 4, 4);
let metricsDefined: bool = false;

function metricName(m: i32): string {
  switch (m) {
    case REQUESTS_SEEN: return "portcullis.requests_seen";
    case DENIED_LOCALLY: return "portcullis.denied_locally";
    case BYTES_MASKED: return "portcullis.bytes_masked";
    case SNAPSHOT_REFRESHED: return "portcullis.snapshot_refreshed";
    case SNAPSHOT_REFRESH_FAILED: return "portcullis.snapshot_refresh_failed";
    case REPORTS_FAILED: return "portcullis.refusal_reports_failed";
    default: return "portcullis.mask_failures";
  }
}

/** Defines the counters (in on_configure: the ABI refuses metric calls while the module starts). */
export function defineMetrics(): void {
  let all = true;
  for (let m = 0; m < METRIC_COUNT; m++) {
    const name = metricName(m);
    const p = literal(name);
    if (p == 0 || proxy_define_metric(COUNTER, p, name.length, METRIC_IDS + <usize>(m * 4)) != OK) all = false;
  }
  metricsDefined = all;
}

export function count(m: i32, delta: i64): void {
  // Envoy refuses increments <= 0 (BadArgument); skip them rather than make a call that fails.
  if (!metricsDefined || delta <= 0 || m < 0 || m >= METRIC_COUNT) return;
  proxy_increment_metric(load<u32>(METRIC_IDS + <usize>(m * 4)), delta);
}

export function log(level: i32, message: string): void {
  const p = literal(message);
  if (p != 0) proxy_log(level, p, message.length);
}

/** Logs a literal followed by n bytes (never a header value or body byte: only ids and versions). */
export function logWith(level: i32, message: string, p: usize, n: i32): void {
  const buf = scratchAlloc(message.length + n);
  if (buf == 0) return;
  const m = writeLiteral(message, buf);
  memory.copy(buf + <usize>m, p, <usize>n);
  proxy_log(level, buf, m + n);
}
