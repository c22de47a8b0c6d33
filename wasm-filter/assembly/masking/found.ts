// The last detection: where its masked span starts and ends, its entity, and how a stream continues it when the
// value is longer than the carry-over cap. Detectors write it through `found`; the scanner reads it.

/** Continuation kinds for values longer than the carry-over cap (see README, "Streaming"). */
export const CONT_NONE: i32 = 0;
/** Masking continues until the `-----END … PRIVATE KEY-----` line. */
export const CONT_PEM: i32 = 1;
/** Masking continues while bytes belong to the given byte class. */
export const CONT_RUN: i32 = 2;

/**
 * Where a stream must keep bytes from when a detector answers NEED: the scanner sets it to the candidate's first
 * byte; a detector that needs context before that byte (a card after an IBAN-like group) lowers it.
 */
export let needFrom: i32 = 0;
export function keepFrom(at: i32): void {
  if (at < needFrom) needFrom = at;
}
export function startCandidate(at: i32): void {
  needFrom = at;
}

export let mStart: i32 = 0;
export let mEnd: i32 = 0;
export let mEntity: i32 = 0;
export let mCont: i32 = CONT_NONE;
export let mContClass: u8 = 0;

export function found(start: i32, end: i32, entity: i32): void {
  mStart = start;
  mEnd = end;
  mEntity = entity;
  mCont = CONT_NONE;
}

/** Records how a value that outgrows the carry-over cap continues in the next chunks. */
export function continues(kind: i32, runClass: u8): void {
  mCont = kind;
  mContClass = runClass;
}
