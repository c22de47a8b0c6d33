// The Portcullis proxy-wasm HTTP filter (ABI 0.2.1), placed before ext_proc on the Kubernetes listener. It does what
// must not cost a gRPC round trip: refuses, from a compiled policy snapshot, requests whose outcome depends on nothing
// else (no token, a malformed or revoked token, exec/attach/port-forward, deleting namespaces) with a Kubernetes
// Status; sets the request id; masks streamed response bodies chunk by chunk with the shared masking core. Every
// other request goes on to ext_proc, which stays the authority.
//
// Rules that keep the VM alive (a trap kills it for good, docs/envoy-behaviour.md D.4): nothing runs at top level
// (only constants and static memory), no AssemblyScript allocation (runtime stub, static regions in memory.ts), every
// host status checked, every length bounded before a load or store. build.mjs refuses a module with `unreachable`, a
// start function, an `abort` import or an import outside the ABI.
import {
  CONTINUE, HTTP_CALL_RESPONSE_BODY, HTTP_CALL_RESPONSE_HEADERS, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN, OK,
  PLUGIN_CONFIGURATION, proxy_get_buffer_bytes, proxy_http_call, proxy_remove_header_map_value,
  proxy_set_effective_context,
  proxy_replace_header_map_value, proxy_set_buffer_bytes, proxy_set_tick_period_milliseconds, random_get,
  REQUEST_HEADERS, RESPONSE_BODY, RESPONSE_HEADERS, STOP_ITERATION,
} from "./abi";
import {
  BYTES_MASKED, count, DENIED_LOCALLY, defineMetrics, log, logWith, MASK_FAILURES, pairsAdd, pairsAddLiterals,
  pairsBuild, pairsLen, pairsPtr, pairsStart, readHeader, REPORTS_FAILED, REQUESTS_SEEN, sendStatus,
  SNAPSHOT_REFRESH_FAILED, SNAPSHOT_REFRESHED, valueLen, valuePtr, writeJsonEscaped,
} from "./http";
import {
  bytesEqual, bytesEqualLiteral, indexOf, literal, RET_LEN, RET_PTR, retLen, retPtr,
  scratchAlloc, scratchMark, scratchRelease, scratchReset, writeDecimal, writeLiteral,
} from "./memory";
import {
  classifyAuthorization, decodeBase64Url, decodedLen, decodedPtr, formatUuid, isStreamedResponse, matchPattern,
  pathLength, payloadLen, payloadStart, TOKEN_JWT, TOKEN_MALFORMED, tokenLen, tokenStart,
} from "./request";
import {
  activeText, candidateText, denyCount, denyField, embeddedSnapshotStart, entityMask, hasSnapshot, keepOf,
  MAX_ENTITY, parseCandidate, parseSettings, refreshAuthorityLen, refreshAuthorityOff, refreshClusterLen,
  refreshClusterOff, refreshConfigured, refreshPathLen, refreshPathOff, refreshPeriodMs, refreshTimeoutMs,
  refreshTokenLen, refreshTokenPtr, refreshTokenUnset, reportConfigured, reportPathLen, reportPathOff,
  reportTargetLen, reportTargetOff, revokedCount, revokedLength, revokedOffset, settingsText, strategyOf, TEXT_MAX,
  tokenRequired, versionLength, versionOffset,
} from "./snapshot";
import {
  beginChunk, carryLength, claimSlot, configureEntity, finishChunk, maskedLen, maskedPtr, releaseSlot, slotOf,
} from "./stream-masking";


let rootContextId: u32 = 0;
let calloutInFlight: bool = false;
/** The token of the refresh call in flight; any other answer is a refusal report's. */
let refreshCallToken: u32 = 0;
/** Ticks since the refresh call went out: one never answered (it should not happen) does not stop refreshes. */
let ticksWaiting: i32 = 0;
const MAX_TICKS_WAITING: i32 = 10;
/** Body bytes read from the host per call, so a large chunk never needs a large scratch region. */
const BODY_WINDOW: i32 = 64 * 1024;

export function proxy_abi_version_0_2_1(): void {}

/** The host asks for memory to hand us a value; it lives until the callback that asked returns. */
export function malloc(size: i32): usize {
  return scratchAlloc(size);
}

export function proxy_on_memory_allocate(size: i32): usize {
  return scratchAlloc(size);
}

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  scratchReset();
  if (parentContextId == 0) rootContextId = contextId;
}

export function proxy_on_vm_start(rootId: u32, vmConfigurationSize: i32): i32 {
  scratchReset();
  return 1;
}

/** Applies the active snapshot's masking strategies to the core (its table is shared by every stream). */
function configureMasking(): void {
  for (let e = 0; e < MAX_ENTITY; e++) {
    if ((entityMask() & ((<u32>1) << <u32>e)) != 0) configureEntity(e, strategyOf(e), keepOf(e));
  }
}

function logSnapshotVersion(what: string): void {
  logWith(LOG_INFO, what, activeText() + <usize>versionOffset(), versionLength());
}

export function proxy_on_configure(rootId: u32, configurationSize: i32): i32 {
  scratchReset();
  defineMetrics();
  if (configurationSize < 0 || configurationSize > TEXT_MAX + 4096) {
    log(LOG_ERROR, "portcullis: plugin configuration too large");
    return 0;
  }
  let p: usize = 0;
  let n = 0;
  if (configurationSize > 0) {
    if (proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, configurationSize, RET_PTR, RET_LEN) != OK) {
      log(LOG_ERROR, "portcullis: plugin configuration unreadable");
      return 0;
    }
    p = retPtr();
    n = retLen();
  }
  if (!parseSettings(p, n)) {
    log(LOG_ERROR, "portcullis: plugin configuration invalid (refresh-* settings)");
    return 0;
  }
  if (embeddedSnapshotStart >= 0) {
    const sn = n - embeddedSnapshotStart;
    if (sn > TEXT_MAX) {
      log(LOG_ERROR, "portcullis: snapshot in the plugin configuration too large");
      return 0;
    }
    memory.copy(candidateText(), p + <usize>embeddedSnapshotStart, <usize>sn);
    if (!parseCandidate(sn)) {
      log(LOG_ERROR, "portcullis: snapshot in the plugin configuration invalid");
      return 0;
    }
    configureMasking();
    logSnapshotVersion("portcullis: snapshot from configuration, version ");
  }
  if (refreshTokenUnset) {
    log(LOG_ERROR, "portcullis: refresh-token-env names an unset variable; the snapshot is never refreshed");
  }
  if (refreshConfigured()) proxy_set_tick_period_milliseconds(<u32>refreshPeriodMs);
  return 1;
}

// ------------------------------------------------------------------------------------------------ refresh

/** Where a call to the admin API writes its token. */
const CALL_TOKEN: usize = memory.data(4, 4);

/**
 * Calls the admin API (the refresh cluster, authority and credential) on the current effective context: `:method`,
 * the path at settings[pathOff, +pathLen), and one more header given as literals. Returns the host's status.
 */
function callAdmin(
  method: string, pathOff: i32, pathLen: i32, header: string, value: string, body: usize, bodyLen: i32,
): u32 {
  const s = settingsText();
  const bearer = scratchAlloc(7 + refreshTokenLen);
  const kPath = literal(":path");
  const kAuthority = literal(":authority");
  const kAuth = literal("authorization");
  if (bearer == 0 || kPath == 0 || kAuthority == 0 || kAuth == 0) return 10; // InternalFailure: out of scratch
  writeLiteral("Bearer ", bearer);
  memory.copy(bearer + 7, refreshTokenPtr, <usize>refreshTokenLen);
  pairsStart();
  pairsAddLiterals(":method", method);
  pairsAdd(kPath, 5, s + <usize>pathOff, pathLen);
  pairsAdd(kAuthority, 10, s + <usize>refreshAuthorityOff, refreshAuthorityLen);
  pairsAdd(kAuth, 13, bearer, 7 + refreshTokenLen);
  pairsAddLiterals(header, value);
  if (!pairsBuild()) return 10;
  return proxy_http_call(s + <usize>refreshClusterOff, refreshClusterLen, pairsPtr, pairsLen, body, bodyLen, 0, 0,
    <u32>refreshTimeoutMs, CALL_TOKEN);
}

export function proxy_on_tick(rootId: u32): void {
  scratchReset();
  if (!refreshConfigured()) return;
  if (calloutInFlight && ++ticksWaiting < MAX_TICKS_WAITING) return;
  calloutInFlight = false;
  ticksWaiting = 0;
  const r = callAdmin("GET", refreshPathOff, refreshPathLen, "accept", "text/plain", 0, 0);
  if (r == OK) {
    calloutInFlight = true;
    refreshCallToken = load<u32>(CALL_TOKEN);
  } else {
    count(SNAPSHOT_REFRESH_FAILED, 1);
    log(LOG_WARN, "portcullis: snapshot refresh call refused by the host; keeping the last good snapshot");
  }
}

export function proxy_on_http_call_response(
  rootId: u32, token: u32, headerCount: i32, bodySize: i32, trailerCount: i32,
): void {
  scratchReset();
  if (!calloutInFlight || token != refreshCallToken) {
    reportAnswered();
    return;
  }
  calloutInFlight = false;
  let ok = false;
  if (readHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") && bytesEqualLiteral(valuePtr, valueLen, "200")
      && bodySize > 0 && bodySize <= TEXT_MAX
      && proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, bodySize, RET_PTR, RET_LEN) == OK
      && retLen() == bodySize) {
    memory.copy(candidateText(), retPtr(), <usize>bodySize);
    ok = parseCandidate(bodySize);
  }
  if (ok) {
    configureMasking();
    count(SNAPSHOT_REFRESHED, 1);
    logWith(LOG_DEBUG, "portcullis: snapshot refreshed, version ", activeText() + <usize>versionOffset(),
      versionLength());
  } else {
    count(SNAPSHOT_REFRESH_FAILED, 1);
    if (hasSnapshot()) {
      logWith(LOG_WARN, "portcullis: snapshot refresh failed; keeping version ",
        activeText() + <usize>versionOffset(), versionLength());
    } else {
      log(LOG_WARN, "portcullis: snapshot refresh failed; no snapshot yet, every request goes to ext_proc");
    }
  }
}

// ------------------------------------------------------------------------------------------------ refusal reports

/** A report's answer: 2xx is recorded (or knowingly not: no session); anything else is counted and logged. */
function reportAnswered(): void {
  if (readHeader(HTTP_CALL_RESPONSE_HEADERS, ":status") && valueLen == 3 && load<u8>(valuePtr) == 50) return;
  count(REPORTS_FAILED, 1);
  log(LOG_WARN, "portcullis: a refusal report was not accepted; the refusal is only in Envoy's access log");
}

/** Appends `"name":"` + JSON-escaped bytes + `"` at dst; returns the length written. */
function jsonField(dst: usize, name: string, p: usize, n: i32, first: bool): i32 {
  let o = writeLiteral(first ? "{\"" : ",\"", dst);
  o += writeLiteral(name, dst + <usize>o);
  o += writeLiteral("\":\"", dst + <usize>o);
  o += writeJsonEscaped(p, n, dst + <usize>o);
  o += writeLiteral("\"", dst + <usize>o);
  return o;
}

/**
 * Reports a policy refusal to the service so it is recorded in the agent's session (extproc/kube/filter-refusal.ts),
 * fire and forget: the call is made on the root context, which outlives the refused stream.
 */
function reportRefusal(
  streamId: u32, code: i32, message: usize, messageLen: i32, method: usize, methodLen: i32, path: usize,
  pathLen: i32, token: usize, tokenLength: i32,
): void {
  if (!reportConfigured() || requestIdLen == 0 || tokenLength <= 0) return;
  const s = settingsText();
  const size = 160 + 2 * (reportTargetLen + methodLen + pathLen + tokenLength + messageLen) + requestIdLen;
  const body = scratchAlloc(size);
  if (body == 0) return;
  let o = jsonField(body, "target", s + <usize>reportTargetOff, reportTargetLen, true);
  o += jsonField(body + <usize>o, "requestId", requestIdPtr, requestIdLen, false);
  o += jsonField(body + <usize>o, "method", method, methodLen, false);
  o += jsonField(body + <usize>o, "path", path, pathLen, false);
  o += jsonField(body + <usize>o, "token", token, tokenLength, false);
  o += jsonField(body + <usize>o, "message", message, messageLen, false);
  o += writeLiteral(",\"status\":", body + <usize>o);
  o += writeDecimal(code, body + <usize>o);
  o += writeLiteral("}", body + <usize>o);
  const r = proxy_set_effective_context(rootContextId) == OK
    && callAdmin("POST", reportPathOff, reportPathLen, "content-type", "application/json", body, o) == OK;
  proxy_set_effective_context(streamId);
  if (!r) {
    count(REPORTS_FAILED, 1);
    log(LOG_WARN, "portcullis: a refusal report could not be sent; the refusal is only in Envoy's access log");
  }
}

// ------------------------------------------------------------------------------------------------ requests

/** Sets our own request id (replacing the one the HCM added, or one the agent sent); its bytes at requestIdPtr. */
let requestIdPtr: usize = 0;
let requestIdLen: i32 = 0;

function setRequestId(): void {
  requestIdLen = 0;
  const raw = scratchAlloc(16);
  const id = scratchAlloc(36);
  if (raw == 0 || id == 0 || random_get(raw, 16) != 0) return;
  formatUuid(raw, id);
  const k = literal("x-request-id");
  if (k == 0) return;
  if (proxy_replace_header_map_value(REQUEST_HEADERS, k, 12, id, 36) == OK) {
    requestIdPtr = id;
    requestIdLen = 36;
  }
}

function deny(code: i32, message: usize, messageLen: i32, details: string): i32 {
  if (!sendStatus(code, message, messageLen, details, requestIdPtr, requestIdLen)) {
    // No room for the reply (or the host refused it): ext_proc, the authority, decides instead.
    log(LOG_WARN, "portcullis: local reply could not be sent; the request goes on to ext_proc");
    return CONTINUE;
  }
  count(DENIED_LOCALLY, 1);
  return STOP_ITERATION;
}

function denyLiteral(code: i32, message: string, details: string): i32 {
  const m = literal(message);
  return deny(code, m, m == 0 ? 0 : message.length, details);
}

/** True if the token's payload names a revoked token id (`"jti":"<id>"`); fills the message. */
let revokedMessagePtr: usize = 0;
let revokedMessageLen: i32 = 0;
function isRevoked(auth: usize): bool {
  const n = revokedCount();
  if (n == 0) return false;
  const mark = scratchMark();
  if (!decodeBase64Url(auth + <usize>payloadStart, payloadLen)) return false;
  const text = activeText();
  for (let k = 0; k < n; k++) {
    const off = revokedOffset(k);
    const len = revokedLength(k);
    const needle = scratchAlloc(len + 9);
    if (needle == 0) break;
    let o = writeLiteral("\"jti\":\"", needle);
    memory.copy(needle + <usize>o, text + <usize>off, <usize>len);
    o += len;
    store<u8>(needle + <usize>(o++), 34);
    if (indexOf(decodedPtr, decodedLen, needle, o) >= 0) {
      const msg = scratchAlloc(len + 40);
      if (msg == 0) return true;
      let m = writeLiteral("the agent token ", msg);
      memory.copy(msg + <usize>m, text + <usize>off, <usize>len);
      m += len;
      m += writeLiteral(" has been revoked", msg + <usize>m);
      revokedMessagePtr = msg;
      revokedMessageLen = m;
      return true;
    }
  }
  scratchRelease(mark);
  return false;
}

export function proxy_on_request_headers(contextId: u32, headerCount: i32, endOfStream: i32): i32 {
  scratchReset();
  count(REQUESTS_SEEN, 1);
  setRequestId();
  if (!hasSnapshot()) return CONTINUE;

  let bearer: usize = 0; // the Authorization value, when it holds a token-shaped bearer token
  if (tokenRequired()) {
    if (!readHeader(REQUEST_HEADERS, "authorization")) {
      return denyLiteral(401, "no Portcullis agent token was presented (send it as a bearer token)",
        "portcullis_wasm_token_missing");
    }
    const auth = valuePtr;
    const kind = classifyAuthorization(auth, valueLen);
    if (kind == TOKEN_MALFORMED) {
      return denyLiteral(401, "the bearer token is not a Portcullis agent token", "portcullis_wasm_token_malformed");
    }
    if (kind == TOKEN_JWT && isRevoked(auth)) {
      return deny(401, revokedMessagePtr, revokedMessageLen, "portcullis_wasm_token_revoked");
    }
    if (kind == TOKEN_JWT) bearer = auth;
  }

  if (!readHeader(REQUEST_HEADERS, ":path")) return CONTINUE;
  const path = valuePtr;
  const pathLen = valueLen;
  if (!readHeader(REQUEST_HEADERS, ":method")) return CONTINUE;
  const method = valuePtr;
  const methodLen = valueLen;

  const rules = denyCount();
  if (rules > 0) {
    const pn = pathLength(path, pathLen);
    const text = activeText();
    for (let k = 0; k < rules; k++) {
      const mp = text + <usize>denyField(k, 1);
      const mn = denyField(k, 2);
      if (!bytesEqualLiteral(mp, mn, "*") && !bytesEqual(mp, mn, method, methodLen)) continue;
      if (!matchPattern(text + <usize>denyField(k, 3), denyField(k, 4), path, pn)) continue;
      const replied = deny(denyField(k, 0), text + <usize>denyField(k, 5), denyField(k, 6),
        "portcullis_wasm_policy_deny");
      if (replied == STOP_ITERATION && bearer != 0) {
        reportRefusal(contextId, denyField(k, 0), text + <usize>denyField(k, 5), denyField(k, 6), method, methodLen,
          path, pathLen, bearer + <usize>tokenStart, tokenLen);
      }
      return replied;
    }
  }

  if (entityMask() != 0 && bytesEqualLiteral(method, methodLen, "GET") && isStreamedResponse(path, pathLen)) {
    if (claimSlot(contextId) < 0) {
      return denyLiteral(503, "the gateway is masking too many streams; retry later", "portcullis_wasm_mask_busy");
    }
    // The filter must see the bytes in clear to mask them.
    const k = literal("accept-encoding");
    const v = literal("identity");
    if (k != 0 && v != 0) proxy_replace_header_map_value(REQUEST_HEADERS, k, 15, v, 8);
  }
  return CONTINUE;
}

// ------------------------------------------------------------------------------------------------ responses

export function proxy_on_response_headers(contextId: u32, headerCount: i32, endOfStream: i32): i32 {
  scratchReset();
  if (slotOf(contextId) < 0) return CONTINUE;
  if (readHeader(RESPONSE_HEADERS, "content-encoding") && !bytesEqualLiteral(valuePtr, valueLen, "identity")) {
    releaseSlot(contextId);
    count(MASK_FAILURES, 1);
    return denyLiteral(406, "the response is encoded and cannot be masked", "portcullis_wasm_unmaskable");
  }
  // Masking changes lengths: the body goes out chunked.
  const k = literal("content-length");
  if (k != 0) proxy_remove_header_map_value(RESPONSE_HEADERS, k, 14);
  return CONTINUE;
}

/** Drops the chunk and resets the stream: a chunk that could not be masked is never passed on. */
function failStream(contextId: u32, bodySize: i32): i32 {
  count(MASK_FAILURES, 1);
  log(LOG_ERROR, "portcullis: a streamed response could not be masked; the stream is reset");
  proxy_set_buffer_bytes(RESPONSE_BODY, 0, bodySize, 0, 0);
  releaseSlot(contextId);
  denyLiteral(503, "the response could not be masked", "portcullis_wasm_mask_failed");
  return STOP_ITERATION;
}

export function proxy_on_response_body(contextId: u32, bodySize: i32, endOfStream: i32): i32 {
  scratchReset();
  const k = slotOf(contextId);
  if (k < 0) return CONTINUE;
  if (bodySize < 0) return failStream(contextId, 0);
  const dst = beginChunk(k, bodySize);
  if (dst == 0) return failStream(contextId, bodySize);
  let off = 0;
  while (off < bodySize) {
    const want = bodySize - off < BODY_WINDOW ? bodySize - off : BODY_WINDOW;
    const mark = scratchMark();
    if (proxy_get_buffer_bytes(RESPONSE_BODY, off, want, RET_PTR, RET_LEN) != OK) return failStream(contextId, bodySize);
    const got = retLen();
    if (got <= 0 || got > want) return failStream(contextId, bodySize);
    memory.copy(dst + <usize>off, retPtr(), <usize>got);
    off += got;
    scratchRelease(mark);
  }
  if (!finishChunk(k, bodySize, entityMask(), endOfStream != 0)) return failStream(contextId, bodySize);
  if (proxy_set_buffer_bytes(RESPONSE_BODY, 0, bodySize, maskedPtr, maskedLen) != OK) {
    return failStream(contextId, bodySize);
  }
  count(BYTES_MASKED, <i64>bodySize);
  if (endOfStream != 0) releaseSlot(contextId);
  return CONTINUE;
}

export function proxy_on_response_trailers(contextId: u32, trailerCount: i32): i32 {
  scratchReset();
  const k = slotOf(contextId);
  if (k < 0) return CONTINUE;
  // The body can no longer be written here (the ABI refuses writes outside the body callback): bytes held back
  // for a value that never completed are dropped rather than sent unmasked.
  if (carryLength(k) > 0) log(LOG_WARN, "portcullis: response trailers arrived with bytes held back; dropped");
  releaseSlot(contextId);
  return CONTINUE;
}

export function proxy_on_log(contextId: u32): void {}

export function proxy_on_done(contextId: u32): i32 {
  releaseSlot(contextId);
  return 1;
}

export function proxy_on_delete(contextId: u32): void {
  releaseSlot(contextId);
}
