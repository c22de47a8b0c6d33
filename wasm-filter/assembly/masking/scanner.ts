// The single-pass scanner: a byte-class prefilter picks the few positions where a detector can start, the
// detectors confirm, and spans (start, end, entity) are appended to the span buffer. In a stream, the scanner also
// decides the cut: everything before it is final, everything from it on is carried to the next chunk.
import { byteAt, C_ALNUM, C_B64URL, C_LOCAL, C_TRIGGER, cls, isAlnum, isDigit, MATCH, NEED, prevByte } from "./bytes";
import { detectEmail } from "./detect-email";
import { detectIban } from "./detect-iban";
import { detectCard, detectPhone, detectSsn } from "./detect-numbers";
import {
  detectAuthorization, detectAwsKey, detectBearer, detectJwt, detectPassword, detectPem, pemEnd,
} from "./detect-secrets";
import {
  AWS_ACCESS_KEY, BEARER_TOKEN, CREDIT_CARD, EMAIL_ADDRESS, IBAN_CODE, JWT, PASSWORD, PHONE_NUMBER, PRIVATE_KEY, US_SSN,
} from "./entities";
import { CONT_NONE, CONT_PEM, mCont, mContClass, mEnd, mEntity, mStart } from "./found";

/**
 * Most bytes a stream holds back for a value that is not complete yet. A value still incomplete at this size
 * fails closed: PEM blocks, JWTs, bearer tokens and passwords are masked from their start to the end of the data and
 * masking continues into the next chunks until the value ends; any other candidate this long cannot be a value.
 */
export const CARRY_MAX: i32 = 8192;
/** Bytes kept back while inside an over-long PEM block, enough to see its END line across a chunk boundary. */
const PEM_TAIL: i32 = 64;
/** Flag in a span's meta word: the span continues a value begun in an earlier chunk. */
export const SPAN_CONT: i32 = 0x100;

/** Stream continuation: a value longer than CARRY_MAX that is still being masked. */
let contKind: i32 = CONT_NONE;
let contClass: u8 = 0;
let contEntity: i32 = 0;

export let spanCount: i32 = 0;
let spanCap: i32 = 0;
let spanBase: usize = 0;
export let cutAt: i32 = 0;

export function resetScanner(): void {
  contKind = CONT_NONE;
  spanCount = 0;
  cutAt = 0;
}

function addSpan(s: i32, e: i32, meta: i32): void {
  if (spanCount >= spanCap || e <= s) return;
  const q = spanBase + <usize>spanCount * 12;
  store<i32>(q, s);
  store<i32>(q, e, 4);
  store<i32>(q, meta, 8);
  spanCount++;
}

/**
 * Scans p[0, len) (p[-1] is the byte before it) for the entities in `mask`; writes at most `cap` spans at `spans`.
 * Not `final`: values that may continue past `len` are left for the next call, and `cutAt` says where the carry
 * starts. Returns the number of spans.
 */
export function scan(p: usize, len: i32, mask: u32, final: bool, spans: usize, cap: i32): i32 {
  spanBase = spans;
  spanCap = cap;
  spanCount = 0;
  cutAt = len;
  let i = continueValue(p, len, final);
  if (i < 0) return spanCount;
  let lastEnd = i;
  while (i < len) {
    const c = byteAt(p, i);
    if ((cls(c) & C_TRIGGER) == 0 || !worthTrying(p, len, i, c)) {
      i++;
      continue;
    }
    const r = tryAt(p, len, i, c, mask, final, lastEnd);
    if (r == MATCH && mEnd > i) {
      addSpan(mStart, mEnd, mEntity);
      i = mEnd;
      lastEnd = i;
      continue;
    }
    if (r == NEED) {
      const needAt = c == 0x40 ? mStart : i;
      if (len - needAt < CARRY_MAX) {
        cutAt = keepLocalRun(p, needAt, lastEnd);
        return spanCount;
      }
      if (mCont != CONT_NONE && mStart >= lastEnd) {
        // Fail closed: mask the over-long value to the end of the data and keep masking it in the next chunks.
        addSpan(mStart, len, mEntity);
        contKind = mCont;
        contClass = mContClass;
        contEntity = mEntity;
        return spanCount;
      }
      i++;
      continue;
    }
    if (isDigit(c)) {
      // No detector starts inside a run of digits.
      i++;
      while (i < len && isDigit(byteAt(p, i))) i++;
      continue;
    }
    i++;
  }
  if (!final) cutAt = keepLocalRun(p, len, lastEnd);
  return spanCount;
}

/**
 * Moves a cut back to the start of the run of e-mail local-part bytes before it (if the run is short enough to be
 * one): the address's '@' may be in the next chunk, and the local part must not be sent before it is seen.
 */
function keepLocalRun(p: usize, cut: i32, floor: i32): i32 {
  let r = cut;
  while (r > floor && cut - r <= 64 && (cls(byteAt(p, r - 1)) & C_LOCAL) != 0) r--;
  return cut - r <= 64 ? r : cut;
}

/** Continues masking a value begun in an earlier chunk; returns where scanning resumes, or -1 if the data is used up. */
function continueValue(p: usize, len: i32, final: bool): i32 {
  if (contKind == CONT_NONE) return 0;
  let e: i32;
  if (contKind == CONT_PEM) {
    e = pemEnd(p, len, 0);
    if (e < 0) {
      if (final) {
        addSpan(0, len, contEntity | SPAN_CONT);
        contKind = CONT_NONE;
        return -1;
      }
      cutAt = len > PEM_TAIL ? len - PEM_TAIL : 0;
      addSpan(0, cutAt, contEntity | SPAN_CONT);
      return -1;
    }
  } else {
    e = 0;
    while (e < len && (cls(byteAt(p, e)) & contClass) != 0) e++;
    if (e == len && !final) {
      addSpan(0, len, contEntity | SPAN_CONT);
      return -1;
    }
  }
  addSpan(0, e, contEntity | SPAN_CONT);
  contKind = CONT_NONE;
  return e;
}

/**
 * The prefilter's second byte: most trigger bytes are letters inside words, rejected here by the byte before or
 * after without a call. Errs on the side of trying (a detector decides); at the end of the data it always tries.
 */
// @ts-ignore: decorator
@inline function worthTrying(p: usize, len: i32, i: i32, c: u32): bool {
  if (i + 1 >= len) return true;
  const next = byteAt(p, i + 1) | 0x20;
  if (c == 0x65) return next == 0x79; // e → "ey"
  if (c == 0x70 || c == 0x50) return next == 0x61 || next == 0x77; // p → "pa", "pw"
  if (c == 0x2d) return next == 0x2d; // "--"
  if (c == 0x40 || c == 0x2b || c == 0x28) return true;
  if (c == 0x61 && next != 0x75) return false; // a → "au"
  if (c == 0x62 && next != 0x65) return false; // b → "be"
  return !isAlnum(prevByte(p, i)); // digits, a, b and upper-case letters start only at a word start
}

// @ts-ignore: decorator
@inline function on(mask: u32, entity: i32): bool {
  return (mask & (1 << entity)) != 0;
}

/** Runs the detectors that can start at byte c (position i); MATCH, NEED or NONE. */
function tryAt(p: usize, len: i32, i: i32, c: u32, mask: u32, final: bool, lastEnd: i32): i32 {
  const prev = prevByte(p, i);
  const prevAlnum = isAlnum(prev);
  let r = 0;
  if (isDigit(c)) {
    if (prevAlnum) return 0;
    if (on(mask, CREDIT_CARD) && (r = detectCard(p, len, i, final)) != 0) return r;
    if (on(mask, US_SSN) && (r = detectSsn(p, len, i, final)) != 0) return r;
    // After '+' the number was already tried as E.164; its national reading would be a false friend.
    if (on(mask, PHONE_NUMBER) && prev != 0x2b && (r = detectPhone(p, len, i, final)) != 0) return r;
    return 0;
  }
  switch (c) {
    case 0x40: // '@'
      return on(mask, EMAIL_ADDRESS) ? detectEmail(p, len, i, lastEnd, final) : 0;
    case 0x2b: // '+'
    case 0x28: // '('
      return !prevAlnum && on(mask, PHONE_NUMBER) ? detectPhone(p, len, i, final) : 0;
    case 0x2d: // '-'
      return on(mask, PRIVATE_KEY) && prev != 0x2d ? detectPem(p, len, i, final) : 0;
    case 0x65: // 'e'
      return on(mask, JWT) && (cls(prev) & C_B64URL) == 0 && prev != 0x2e ? detectJwt(p, len, i, final) : 0;
    case 0x61: // 'a'
      return on(mask, BEARER_TOKEN) && !prevAlnum ? detectAuthorization(p, len, i, final) : 0;
    case 0x62: // 'b'
      return on(mask, BEARER_TOKEN) && !prevAlnum ? detectBearer(p, len, i, final) : 0;
    case 0x70: // 'p'
      return on(mask, PASSWORD) ? detectPassword(p, len, i, final) : 0;
    default:
      break;
  }
  // Upper-case letters.
  if (c == 0x50 && on(mask, PASSWORD) && (r = detectPassword(p, len, i, final)) != 0) return r; // 'P'
  if (prevAlnum) return 0;
  if (c == 0x41) { // 'A'
    if (on(mask, AWS_ACCESS_KEY) && (r = detectAwsKey(p, len, i, final)) != 0) return r;
    if (on(mask, BEARER_TOKEN) && (r = detectAuthorization(p, len, i, final)) != 0) return r;
  } else if (c == 0x42) { // 'B'
    if (on(mask, BEARER_TOKEN) && (r = detectBearer(p, len, i, final)) != 0) return r;
  }
  return on(mask, IBAN_CODE) && (cls(c) & C_ALNUM) != 0 ? detectIban(p, len, i, final) : 0;
}

/**
 * The continuation of a value longer than the cap, packed (kind | class << 8 | entity << 16; 0 = none), for a host
 * that interleaves several streams on one instance and keeps each stream's state between its chunks.
 */
export function continuation(): i32 {
  return contKind == CONT_NONE ? 0 : contKind | (<i32>contClass << 8) | ((contEntity & 0xff) << 16);
}

export function setContinuation(kind: i32, runClass: u8, entity: i32): void {
  contKind = kind;
  contClass = runClass;
  contEntity = entity;
}
