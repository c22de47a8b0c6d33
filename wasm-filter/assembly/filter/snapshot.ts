// The policy snapshot the filter enforces without CEL, and the plugin settings, both as line-based text (parsed here
// without allocating; the service writes it, extproc/snapshot/). Two snapshot slots: an answer is parsed into the
// slot not in use and only a complete, valid one becomes active, so a failed or truncated refresh keeps the last good.
//
//   portcullis-wasm-snapshot 1
//   version <id>
//   token-required
//   revoked <jti>
//   deny <401|403> <METHOD|*> <path pattern, * = one segment> <message to end of line>
//   mask <entity id> <redact|mask|partial> <keep>
//   end
import { environ_get, environ_sizes_get } from "./abi";
import { bytesEqualLiteral, bytesStartWithLiteral, parseDecimal, scratchAlloc } from "./memory";

export const TEXT_MAX: i32 = 64 * 1024;
export const MAX_REVOKED: i32 = 1024;
export const MAX_DENY: i32 = 128;
/** Entities of the masking core the filter may mask: the ids its entity mask covers (0..31, masking/entities.ts). */
export const MAX_ENTITY: i32 = 32;

export const STRATEGY_REDACT: i32 = 0;
export const STRATEGY_MASK: i32 = 1;
export const STRATEGY_PARTIAL: i32 = 2;

// Slot layout: text, then a header of i32 fields, then the revoked and deny tables.
const H_TEXT_LEN: i32 = 0;
const H_VERSION_OFF: i32 = 4;
const H_VERSION_LEN: i32 = 8;
const H_TOKEN_REQUIRED: i32 = 12;
const H_REVOKED: i32 = 16;
const H_DENY: i32 = 20;
const H_ENTITIES: i32 = 24;
const H_STRATEGIES: i32 = 28; // MAX_ENTITY × (strategy i32, keep i32)
const HEADER_SIZE: i32 = H_STRATEGIES + MAX_ENTITY * 8;
const REVOKED_SIZE: i32 = 8; // offset, length
const DENY_SIZE: i32 = 32; // code, method off/len, pattern off/len, message off/len
const SLOT_SIZE: i32 = TEXT_MAX + HEADER_SIZE + MAX_REVOKED * REVOKED_SIZE + MAX_DENY * DENY_SIZE;

const SLOTS: usize = memory.data(SLOT_SIZE * 2, 16);
let active: i32 = -1;

function slotBase(slot: i32): usize {
  return SLOTS + <usize>(slot * SLOT_SIZE);
}
function header(slot: i32): usize {
  return slotBase(slot) + <usize>TEXT_MAX;
}
function revokedTable(slot: i32): usize {
  return header(slot) + <usize>HEADER_SIZE;
}
function denyTable(slot: i32): usize {
  return revokedTable(slot) + <usize>(MAX_REVOKED * REVOKED_SIZE);
}

/** Where a new snapshot's text must be copied before parseCandidate (TEXT_MAX bytes). */
export function candidateText(): usize {
  return slotBase(active == 0 ? 1 : 0);
}

export function hasSnapshot(): bool {
  return active >= 0;
}

let lineStart: i32 = 0;
let lineEnd: i32 = 0;
let next: i32 = 0;

/** Moves to the next line of text[0, n); false at the end. Strips a trailing CR. */
function nextLine(text: usize, n: i32): bool {
  if (next >= n) return false;
  lineStart = next;
  let i = next;
  while (i < n && load<u8>(text + <usize>i) != 10) i++;
  lineEnd = i;
  next = i + 1;
  if (lineEnd > lineStart && load<u8>(text + <usize>(lineEnd - 1)) == 13) lineEnd--;
  return true;
}

let fieldStart: i32 = 0;
let fieldEnd: i32 = 0;

/** The next space-separated field of the current line from `from`; false if none. */
function field(text: usize, from: i32): bool {
  let i = from;
  while (i < lineEnd && load<u8>(text + <usize>i) == 32) i++;
  if (i >= lineEnd) return false;
  fieldStart = i;
  while (i < lineEnd && load<u8>(text + <usize>i) != 32) i++;
  fieldEnd = i;
  return true;
}

function printable(text: usize, s: i32, e: i32): bool {
  for (let i = s; i < e; i++) {
    const c = load<u8>(text + <usize>i);
    if (c < 32 || c == 127) return false;
  }
  return true;
}

function tokenLike(text: usize, s: i32, e: i32): bool {
  if (e <= s || e - s > 128) return false;
  for (let i = s; i < e; i++) {
    const c = load<u8>(text + <usize>i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 46 || c == 95;
    if (!ok) return false;
  }
  return true;
}

/**
 * Parses the candidate slot's text[0, n) (written at candidateText()). Returns true and makes it active if it is a
 * complete snapshot (ends with `end`), false otherwise — the active snapshot is then unchanged.
 */
export function parseCandidate(n: i32): bool {
  if (n < 0 || n > TEXT_MAX) return false;
  const slot = active == 0 ? 1 : 0;
  const text = slotBase(slot);
  const h = header(slot);
  memory.fill(h, 0, <usize>HEADER_SIZE);
  store<i32>(h, n, H_TEXT_LEN);
  next = 0;
  if (!nextLine(text, n) || !bytesEqualLiteral(text + <usize>lineStart, lineEnd - lineStart, "portcullis-wasm-snapshot 1"))
    return false;
  let revoked = 0;
  let deny = 0;
  let entities: u32 = 0;
  let ended = false;
  while (nextLine(text, n)) {
    if (ended) {
      if (lineEnd > lineStart) return false; // nothing may follow `end`
      continue;
    }
    if (lineEnd == lineStart) continue;
    if (!field(text, lineStart)) continue;
    const ks = fieldStart;
    const kn = fieldEnd - fieldStart;
    const kp = text + <usize>ks;
    if (bytesEqualLiteral(kp, kn, "end")) {
      ended = true;
    } else if (bytesEqualLiteral(kp, kn, "version")) {
      if (!field(text, fieldEnd) || !tokenLike(text, fieldStart, fieldEnd)) return false;
      store<i32>(h, fieldStart, H_VERSION_OFF);
      store<i32>(h, fieldEnd - fieldStart, H_VERSION_LEN);
    } else if (bytesEqualLiteral(kp, kn, "token-required")) {
      store<i32>(h, 1, H_TOKEN_REQUIRED);
    } else if (bytesEqualLiteral(kp, kn, "revoked")) {
      if (revoked >= MAX_REVOKED || !field(text, fieldEnd) || !tokenLike(text, fieldStart, fieldEnd)) return false;
      const r = revokedTable(slot) + <usize>(revoked * REVOKED_SIZE);
      store<i32>(r, fieldStart);
      store<i32>(r, fieldEnd - fieldStart, 4);
      revoked++;
    } else if (bytesEqualLiteral(kp, kn, "deny")) {
      if (deny >= MAX_DENY || !field(text, fieldEnd)) return false;
      const code = parseDecimal(text + <usize>fieldStart, fieldEnd - fieldStart);
      if (code != 401 && code != 403) return false;
      if (!field(text, fieldEnd)) return false;
      const ms = fieldStart;
      const me = fieldEnd;
      if (!field(text, fieldEnd) || load<u8>(text + <usize>fieldStart) != 47) return false; // pattern starts with /
      const ps = fieldStart;
      const pe = fieldEnd;
      let msgStart = pe;
      while (msgStart < lineEnd && load<u8>(text + <usize>msgStart) == 32) msgStart++;
      if (msgStart >= lineEnd || lineEnd - msgStart > 1024 || !printable(text, msgStart, lineEnd)) return false;
      const d = denyTable(slot) + <usize>(deny * DENY_SIZE);
      store<i32>(d, code);
      store<i32>(d, ms, 4);
      store<i32>(d, me - ms, 8);
      store<i32>(d, ps, 12);
      store<i32>(d, pe - ps, 16);
      store<i32>(d, msgStart, 20);
      store<i32>(d, lineEnd - msgStart, 24);
      deny++;
    } else if (bytesEqualLiteral(kp, kn, "mask")) {
      if (!field(text, fieldEnd)) return false;
      const entity = parseDecimal(text + <usize>fieldStart, fieldEnd - fieldStart);
      if (entity < 0 || entity >= MAX_ENTITY || !field(text, fieldEnd)) return false;
      const sp = text + <usize>fieldStart;
      const sn = fieldEnd - fieldStart;
      let strategy = -1;
      if (bytesEqualLiteral(sp, sn, "redact")) strategy = STRATEGY_REDACT;
      else if (bytesEqualLiteral(sp, sn, "mask")) strategy = STRATEGY_MASK;
      else if (bytesEqualLiteral(sp, sn, "partial")) strategy = STRATEGY_PARTIAL;
      if (strategy < 0 || !field(text, fieldEnd)) return false;
      const keep = parseDecimal(text + <usize>fieldStart, fieldEnd - fieldStart);
      if (keep < 0 || keep > 64) return false;
      entities |= (<u32>1) << <u32>entity;
      store<i32>(h + <usize>(H_STRATEGIES + entity * 8), strategy);
      store<i32>(h + <usize>(H_STRATEGIES + entity * 8), keep, 4);
    } else {
      return false; // an unknown directive: this filter is older than the service, keep what we understand
    }
  }
  if (!ended) return false;
  store<i32>(h, revoked, H_REVOKED);
  store<i32>(h, deny, H_DENY);
  store<u32>(h, entities, H_ENTITIES);
  active = slot;
  return true;
}

// Readers of the active snapshot (callers check hasSnapshot() first).

export function tokenRequired(): bool {
  return active >= 0 && load<i32>(header(active), H_TOKEN_REQUIRED) != 0;
}

export function entityMask(): u32 {
  return active >= 0 ? load<u32>(header(active), H_ENTITIES) : 0;
}

export function strategyOf(entity: i32): i32 {
  return load<i32>(header(active) + <usize>(H_STRATEGIES + entity * 8));
}

export function keepOf(entity: i32): i32 {
  return load<i32>(header(active) + <usize>(H_STRATEGIES + entity * 8), 4);
}

export function activeText(): usize {
  return slotBase(active);
}

export function versionOffset(): i32 {
  return load<i32>(header(active), H_VERSION_OFF);
}

export function versionLength(): i32 {
  return load<i32>(header(active), H_VERSION_LEN);
}

export function revokedCount(): i32 {
  return active >= 0 ? load<i32>(header(active), H_REVOKED) : 0;
}

export function revokedOffset(k: i32): i32 {
  return load<i32>(revokedTable(active) + <usize>(k * REVOKED_SIZE));
}

export function revokedLength(k: i32): i32 {
  return load<i32>(revokedTable(active) + <usize>(k * REVOKED_SIZE), 4);
}

export function denyCount(): i32 {
  return active >= 0 ? load<i32>(header(active), H_DENY) : 0;
}

/** Field f (0 code, 1 method off, 2 method len, 3 pattern off, 4 pattern len, 5 message off, 6 message len). */
export function denyField(k: i32, f: i32): i32 {
  return load<i32>(denyTable(active) + <usize>(k * DENY_SIZE + f * 4));
}

// ------------------------------------------------------------------------------------------------ plugin settings

const SETTINGS_MAX: i32 = 4096;
const SETTINGS: usize = memory.data(SETTINGS_MAX, 16);
let settingsLen: i32 = 0;
export let refreshClusterOff: i32 = 0;
export let refreshClusterLen: i32 = 0;
export let refreshAuthorityOff: i32 = 0;
export let refreshAuthorityLen: i32 = 0;
export let refreshPathOff: i32 = 0;
export let refreshPathLen: i32 = 0;
/** The refresh credential: in the settings text (`refresh-token`) or copied from the VM environment. */
export let refreshTokenPtr: usize = 0;
export let refreshTokenLen: i32 = 0;
const ENV_TOKEN_MAX: i32 = 1024;
const ENV_TOKEN: usize = memory.data(ENV_TOKEN_MAX, 8);
export let refreshPeriodMs: i32 = 0;
/** Where refusals are reported (same cluster, authority and credential as the refresh), and the listener's target. */
export let reportPathOff: i32 = 0;
export let reportPathLen: i32 = 0;
export let reportTargetOff: i32 = 0;
export let reportTargetLen: i32 = 0;
export let refreshTimeoutMs: i32 = 5000;
/** `refresh-token-env` named a variable the VM's environment does not hold (or holds empty). */
export let refreshTokenUnset: bool = false;

export function settingsText(): usize {
  return SETTINGS;
}

/** Where the snapshot embedded in the configuration starts (-1 if none), set by parseSettings. */
export let embeddedSnapshotStart: i32 = -1;

/**
 * Parses the plugin configuration at p[0, n): `refresh-*` lines, then optionally an embedded snapshot from its
 * `portcullis-wasm-snapshot 1` line on. False if a line is unknown or a refresh setting is incomplete.
 */
export function parseSettings(p: usize, n: i32): bool {
  embeddedSnapshotStart = -1;
  if (n < 0) return false;
  const settingsPart = n > SETTINGS_MAX ? SETTINGS_MAX : n;
  memory.copy(SETTINGS, p, <usize>settingsPart);
  settingsLen = settingsPart;
  refreshClusterLen = 0;
  refreshAuthorityLen = 0;
  refreshPathLen = 0;
  refreshTokenLen = 0;
  refreshTokenUnset = false;
  refreshPeriodMs = 0;
  reportPathLen = 0;
  reportTargetLen = 0;
  refreshTimeoutMs = 5000;
  next = 0;
  const text = SETTINGS;
  while (nextLine(text, settingsLen)) {
    if (bytesStartWithLiteral(text + <usize>lineStart, lineEnd - lineStart, "portcullis-wasm-snapshot")) {
      embeddedSnapshotStart = lineStart;
      break;
    }
    if (!field(text, lineStart)) continue;
    const kp = text + <usize>fieldStart;
    const kn = fieldEnd - fieldStart;
    if (!field(text, fieldEnd)) return false;
    const vs = fieldStart;
    const vn = fieldEnd - fieldStart;
    if (bytesEqualLiteral(kp, kn, "refresh-cluster")) {
      refreshClusterOff = vs;
      refreshClusterLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "refresh-authority")) {
      refreshAuthorityOff = vs;
      refreshAuthorityLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "refresh-path")) {
      refreshPathOff = vs;
      refreshPathLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "refresh-token")) {
      refreshTokenPtr = text + <usize>vs;
      refreshTokenLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "refresh-token-env")) {
      if (!tokenFromEnvironment(text + <usize>vs, vn)) refreshTokenUnset = true;
    } else if (bytesEqualLiteral(kp, kn, "report-path")) {
      reportPathOff = vs;
      reportPathLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "report-target")) {
      reportTargetOff = vs;
      reportTargetLen = vn;
    } else if (bytesEqualLiteral(kp, kn, "refresh-period-ms")) {
      refreshPeriodMs = parseDecimal(text + <usize>vs, vn);
      if (refreshPeriodMs < 100) return false;
    } else if (bytesEqualLiteral(kp, kn, "refresh-timeout-ms")) {
      refreshTimeoutMs = parseDecimal(text + <usize>vs, vn);
      if (refreshTimeoutMs < 1) return false;
    } else {
      return false;
    }
  }
  if (embeddedSnapshotStart < 0 && n > SETTINGS_MAX) return false;
  // Without its credential the filter still starts (ext_proc stays the authority), says so, and never refreshes.
  if (refreshTokenUnset) {
    refreshClusterLen = 0;
    refreshPeriodMs = 0;
    reportPathLen = 0;
    return true;
  }
  // Reports go where the refresh goes, and name the target.
  if ((reportPathLen > 0) != (reportTargetLen > 0)) return false;
  if (reportPathLen > 0 && refreshClusterLen == 0) return false;
  // A refresh needs all of cluster, authority, path and token, or none of them.
  const set = (refreshClusterLen > 0 ? 1 : 0) + (refreshAuthorityLen > 0 ? 1 : 0) + (refreshPathLen > 0 ? 1 : 0)
    + (refreshTokenLen > 0 ? 1 : 0);
  if (set != 0 && (set != 4 || refreshPeriodMs <= 0)) return false;
  return true;
}

/** Copies the value of environment variable name[0, n) into ENV_TOKEN; false if it is unset, empty or too long. */
function tokenFromEnvironment(name: usize, n: i32): bool {
  const sizes = scratchAlloc(8);
  if (sizes == 0 || environ_sizes_get(sizes, sizes + 4) != 0) return false;
  const count = <i32>load<u32>(sizes);
  const size = <i32>load<u32>(sizes + 4);
  if (count < 0 || size < 0 || count > 4096 || size > 1 << 20) return false;
  const ptrs = scratchAlloc(count * 4);
  const buf = scratchAlloc(size);
  if ((ptrs == 0 && count > 0) || (buf == 0 && size > 0) || environ_get(ptrs, buf) != 0) return false;
  for (let k = 0; k < count; k++) {
    const entry = <usize>load<u32>(ptrs + <usize>(k * 4));
    if (entry < buf || entry >= buf + <usize>size) continue;
    // NAME=value\0
    let i = 0;
    const limit = <i32>(buf + <usize>size - entry);
    while (i < limit && i < n && load<u8>(entry + <usize>i) == load<u8>(name + <usize>i)) i++;
    if (i != n || i >= limit || load<u8>(entry + <usize>i) != 61) continue;
    const vs = i + 1;
    let ve = vs;
    while (ve < limit && load<u8>(entry + <usize>ve) != 0) ve++;
    const vn = ve - vs;
    if (vn <= 0 || vn > ENV_TOKEN_MAX) return false;
    memory.copy(ENV_TOKEN, entry + <usize>vs, <usize>vn);
    refreshTokenPtr = ENV_TOKEN;
    refreshTokenLen = vn;
    return true;
  }
  return false;
}

export function reportConfigured(): bool {
  return reportPathLen > 0 && refreshClusterLen > 0 && refreshTokenLen > 0;
}

export function refreshConfigured(): bool {
  return refreshClusterLen > 0 && refreshPeriodMs > 0;
}
