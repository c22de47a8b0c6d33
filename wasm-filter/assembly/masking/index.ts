// The masking core's exported surface: plain functions over linear memory, no imports, no runtime objects.
// One instance holds one stream's state (its carry-over); a host that masks several streams at once uses several
// instances of the module. Protocol: reserve(n) → write n bytes there → scan(n, entities, final) → (optionally
// replace the spans, see setSpans) → apply() → read output()/apply()'s length. See wasm-filter/README.md.
import { CARRY_MAX, cutAt, resetScanner, scan as scanSpans, setDismissIdle, SPAN_CONT, spanCount } from "./scanner";
import { MAX_ENTITIES } from "./entities";
import { replace, setName as setEntityName, setStrategy as setEntityStrategy } from "./rewrite";
import { setKey } from "./sha256";

const SPAN_BYTES: i32 = 12;
/** Largest single chunk accepted (keeps every size computation far from 32-bit overflow). */
const MAX_CHUNK: i32 = 1 << 28;

let top: usize = 0;
let pendBase: usize = 0; // pending bytes (carry + new chunk); pendBase - 1 holds the byte before them
let pendCap: i32 = 0;
let pendLen: i32 = 0; // carry length
let total: i32 = 0; // carry + the chunk given to the last scan
let spanBase: usize = 0;
let spanCap: i32 = 0;
let count: i32 = 0;
let cut: i32 = 0;
let outBase: usize = 0;
let outCap: i32 = 0;

/** Bump allocation from the end of the used memory; 0 when the memory cannot grow. Regions grow by doubling. */
function alloc(n: i32): usize {
  if (top == 0) top = (__heap_base + 15) & ~15;
  const p = top;
  const next = (p + <usize>n + 15) & ~15;
  const pages = <i32>((next + 0xffff) >> 16);
  const have = memory.size();
  if (pages > have && memory.grow(pages - have) < 0) return 0;
  top = next;
  return p;
}

function grownSize(have: i32, need: i32): i32 {
  let n = have < 4096 ? 4096 : have;
  while (n < need) n <<= 1;
  return n;
}

function ensurePending(need: i32): bool {
  if (need <= pendCap && pendBase != 0) return true;
  const cap = grownSize(pendCap, need);
  // Slack: 8 bytes before the data (the lookbehind byte), 32 after it (the scanner's sentinel and its 16-byte block
  // loads, which read up to 31 bytes past the data; the prefilter also reads the 16 bytes before a block, which near
  // the start are this slack and the region before it: never out of memory, and whatever they hold can only keep a
  // stop, never dismiss one).
  const p = alloc(cap + 40);
  if (p == 0) return false;
  const base = p + 8;
  store<u8>(base - 1, pendBase == 0 ? 0x20 : load<u8>(pendBase - 1));
  if (pendLen > 0) memory.copy(base, pendBase, <usize>pendLen);
  pendBase = base;
  pendCap = cap;
  return true;
}

function ensureSpans(need: i32): bool {
  if (need <= spanCap) return true;
  const cap = grownSize(spanCap, need);
  const p = alloc(cap * SPAN_BYTES);
  if (p == 0) return false;
  if (count > 0) memory.copy(p, spanBase, <usize>(count * SPAN_BYTES));
  spanBase = p;
  spanCap = cap;
  return true;
}

function ensureOut(need: i32): bool {
  if (need <= outCap) return true;
  const cap = grownSize(outCap, need);
  const p = alloc(cap);
  if (p == 0) return false;
  outBase = p;
  outCap = cap;
  return true;
}

/** Where the host writes the next n bytes (after the carry); 0 if n is out of range or memory is exhausted. */
export function reserve(n: i32): usize {
  if (n < 0 || n > MAX_CHUNK) return 0;
  if (!ensurePending(pendLen + n)) return 0;
  return pendBase + <usize>pendLen;
}

/**
 * Scans the carry plus the n bytes just written for the entities whose bits are set (bit i = entity id i).
 * `final` = 1 for the last chunk of a stream (or a whole buffer). Returns the number of spans, -1 on bad input.
 */
export function scan(n: i32, entities: u32, final: i32): i32 {
  if (pendBase == 0 || n < 0 || n > pendCap - pendLen) return -1;
  total = pendLen + n;
  if (!ensureSpans((total >> 2) + 8)) return -1;
  count = scanSpans(pendBase, total, entities, final != 0, spanBase, spanCap);
  cut = final != 0 ? total : cutAt;
  return count;
}

export function pending(): usize { return pendBase; }
export function pendingLength(): i32 { return total; }
export function spans(): usize { return spanBase; }
export function cutPosition(): i32 { return cut; }
export function carryLimit(): i32 { return CARRY_MAX; }
export function contFlag(): i32 { return SPAN_CONT; }

/** Room for n spans, keeping the current ones; the host then writes its own list (sorted, non-overlapping). */
export function reserveSpans(n: i32): usize {
  if (n < 0 || n > MAX_CHUNK || !ensureSpans(n)) return 0;
  return spanBase;
}

/** Replaces the span list (count spans at spans()) and the cut, after the host merged its own detections. */
export function setSpans(n: i32, newCut: i32): i32 {
  if (n < 0 || n > spanCap || newCut < 0 || newCut > total) return -1;
  count = n;
  cut = newCut;
  return 0;
}

/**
 * Writes pending[0, cut) with every span replaced and returns its length (-1 if memory is exhausted); the bytes
 * from the cut on become the carry. Invalid spans (out of order, overlapping, past the cut) are skipped, not trusted.
 */
export function apply(): i32 {
  let size = 0;
  for (let pass = 0; pass < 2; pass++) {
    const dry = pass == 0;
    if (!dry && !ensureOut(size)) return -1;
    let pos = 0;
    let o = 0;
    for (let k = 0; k < count; k++) {
      const q = spanBase + <usize>(k * SPAN_BYTES);
      const s = load<i32>(q);
      const e = load<i32>(q, 4);
      const meta = load<i32>(q, 8);
      const entity = meta & 0xff;
      if (s < pos || e <= s || e > cut || entity >= MAX_ENTITIES) continue;
      const gap = s - pos;
      if (!dry) memory.copy(outBase + <usize>o, pendBase + <usize>pos, <usize>gap);
      o += gap;
      o += replace(pendBase, s, e, entity, (meta & SPAN_CONT) != 0, outBase + <usize>o, dry);
      pos = e;
    }
    if (!dry) memory.copy(outBase + <usize>o, pendBase + <usize>pos, <usize>(cut - pos));
    o += cut - pos;
    size = o;
  }
  dropFinal();
  return size;
}

/** Keeps pending[cut, total) as the carry (and the byte before it as the lookbehind). */
function dropFinal(): void {
  if (cut > 0) store<u8>(pendBase - 1, load<u8>(pendBase + <usize>cut - 1));
  pendLen = total - cut;
  if (pendLen > 0) memory.copy(pendBase, pendBase + <usize>cut, <usize>pendLen);
  total = pendLen;
  count = 0;
  cut = 0;
}

export function output(): usize { return outBase; }

/**
 * For a host that still holds the scanned bytes: when there are no spans, makes pending[0, cut) final without
 * writing it to the output (no copy); the bytes from the cut on become the carry, as with apply(). Returns the
 * number of bytes made final, or -1 when there are spans (use apply()).
 */
export function passThrough(): i32 {
  if (count != 0) return -1;
  const n = cut;
  dropFinal();
  return n;
}

/** Forgets the carry and any value being continued: the next scan starts a new stream. */
export function reset(): void {
  pendLen = 0;
  total = 0;
  count = 0;
  cut = 0;
  if (pendBase != 0) store<u8>(pendBase - 1, 0x20);
  resetScanner();
}

/**
 * 0: the prefilter stops at every digit, ':', '=', '-' and keyword start the PAIR table allows, as if it knew no better
 * (for tests that prove its dismissals change no result); 1 (the default): it dismisses those no detector could take.
 */
export function prefilter(level: i32): void {
  setDismissIdle(level != 0);
}

export function setStrategy(entity: i32, strategy: i32, keep: i32): i32 {
  return setEntityStrategy(entity, strategy, keep) ? 0 : -1;
}

/** Names entity `entity` (custom detectors, field rules) with the n bytes the host wrote at reserve(n). */
export function setName(entity: i32, n: i32): i32 {
  if (n < 0 || n > pendCap - pendLen) return -1;
  return setEntityName(entity, pendBase + <usize>pendLen, n) ? 0 : -1;
}

/** Sets the HMAC-SHA256 key of the hash strategy from the n bytes the host wrote at reserve(n). */
export function setHashKey(n: i32): i32 {
  if (n < 0 || n > pendCap - pendLen) return -1;
  setKey(pendBase + <usize>pendLen, n);
  return 0;
}

import { continuation, setContinuation } from "./scanner";
import { CONT_PEM, CONT_RUN } from "./found";

// For a host that interleaves streams on one instance (the proxy-wasm filter): after apply(), the state a stream
// keeps beside its carry — the continuation of an over-long value and the byte before the carry — and, after
// reset() + reserve() for its next chunk, its restoration.

export function streamState(): i32 {
  return continuation();
}

export function byteBeforeCarry(): i32 {
  return pendBase == 0 ? 0x20 : <i32>load<u8>(pendBase - 1);
}

/** Restores what streamState()/byteBeforeCarry() returned; a state that is not one is dropped (-1). */
export function resumeStream(state: i32, before: i32): i32 {
  if (pendBase != 0) store<u8>(pendBase - 1, <u8>(before & 0xff));
  if (state == 0) return 0;
  const kind = state & 0xff;
  const entity = (state >> 16) & 0xff;
  if ((kind != CONT_PEM && kind != CONT_RUN) || entity >= MAX_ENTITIES) return -1;
  setContinuation(kind, <u8>((state >> 8) & 0xff), entity);
  return 0;
}
