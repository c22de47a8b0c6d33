// Masking of streamed response bodies (kubectl logs -f, watches) chunk by chunk with the shared masking core.
//
// The core keeps one stream's carry-over in its own globals, and one VM serves many streams at once, so a stream's
// state lives here, in a fixed slot: its carry, the byte before it and the continuation of a value longer than the
// core's cap (masked to its end, fail closed). Each chunk is masked as reset() + (carry ++ chunk) + the state
// restored + scan + apply, and what the core holds back after the cut is saved back into the slot. The carry is bounded by the core's cap
// (carryLimit()); a stream whose carry would not fit is failed closed by the caller.
import {
  apply, byteBeforeCarry, carryLimit, output, pending, pendingLength, reserve, reset, resumeStream, scan, setStrategy,
  streamState,
} from "../masking/index";

/** Streams masked at the same time per VM (per Envoy worker). */
export const MASK_SLOTS: i32 = 64;
/** Carry room per slot: the core's cap plus the look-ahead it may keep past it. */
const CARRY_ROOM: i32 = 16 * 1024;
const SLOT_HEADER: i32 = 16; // context id, carry length, core stream state, byte before the carry
const SLOT_SIZE: i32 = SLOT_HEADER + CARRY_ROOM;
const SLOTS: usize = memory.data(MASK_SLOTS * SLOT_SIZE, 16);

function slotAt(k: i32): usize {
  return SLOTS + <usize>(k * SLOT_SIZE);
}

/** The slot of a context, or -1. */
export function slotOf(contextId: u32): i32 {
  if (contextId == 0) return -1;
  for (let k = 0; k < MASK_SLOTS; k++) if (load<u32>(slotAt(k)) == contextId) return k;
  return -1;
}

/** Claims a free slot for a context; -1 when all are in use. */
export function claimSlot(contextId: u32): i32 {
  if (contextId == 0) return -1;
  const have = slotOf(contextId);
  if (have >= 0) return have;
  for (let k = 0; k < MASK_SLOTS; k++) {
    const s = slotAt(k);
    if (load<u32>(s) == 0) {
      store<u32>(s, contextId);
      store<i32>(s, 0, 4);
      store<i32>(s, 0, 8);
      store<i32>(s, 0x20, 12);
      return k;
    }
  }
  return -1;
}

export function releaseSlot(contextId: u32): void {
  const k = slotOf(contextId);
  if (k >= 0) {
    store<u32>(slotAt(k), 0);
    store<i32>(slotAt(k), 0, 4);
  }
}

export function carryLength(k: i32): i32 {
  return load<i32>(slotAt(k), 4);
}

/** Sets the core's strategy for an entity (from the snapshot); false if the core refused it. */
export function configureEntity(entity: i32, strategy: i32, keep: i32): bool {
  return setStrategy(entity, strategy, keep) == 0;
}

/** Output of the last maskChunk: pointer and length (in the core's memory, valid until the next core call). */
export let maskedPtr: usize = 0;
export let maskedLen: i32 = 0;

/**
 * Starts masking one chunk of `n` bytes for slot k: returns where the caller writes the chunk (after the carry),
 * or 0 if the core has no memory for it.
 */
export function beginChunk(k: i32, n: i32): usize {
  reset();
  const s = slotAt(k);
  const carry = load<i32>(s, 4);
  const p = reserve(carry + n);
  if (p == 0) return 0;
  if (carry > 0) memory.copy(p, s + <usize>SLOT_HEADER, <usize>carry);
  if (resumeStream(load<i32>(s, 8), load<i32>(s, 12)) < 0) return 0;
  return p + <usize>carry;
}

/**
 * Masks carry ++ the n bytes written at beginChunk's pointer. `final` flushes the carry (end of stream). Sets
 * maskedPtr/maskedLen; returns false on a core failure or a carry too large for the slot (fail closed).
 */
export function finishChunk(k: i32, n: i32, entities: u32, final: bool): bool {
  const s = slotAt(k);
  const carry = load<i32>(s, 4);
  if (scan(carry + n, entities, final ? 1 : 0) < 0) return false;
  const out = apply();
  if (out < 0) return false;
  maskedPtr = output();
  maskedLen = out;
  const kept = pendingLength();
  if (kept < 0 || kept > CARRY_ROOM) return false;
  if (kept > 0) memory.copy(s + <usize>SLOT_HEADER, pending(), <usize>kept);
  store<i32>(s, kept, 4);
  store<i32>(s, streamState(), 8);
  store<i32>(s, byteBeforeCarry(), 12);
  return true;
}

export function coreCarryLimit(): i32 {
  return carryLimit();
}
