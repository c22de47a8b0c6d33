// The single-pass scanner. Its hot loop looks at 16 bytes at a time (SIMD): a few vector operations tell where it may
// stop — the punctuation bytes that start detectors (@ + ( - : =) and word starts whose first two bytes may begin a
// value (digits, capitals, the first letters of keywords and token prefixes) — and blocks with none are skipped
// whole; each lane found is confirmed with the exact PAIR table (and a keyword's third byte). Digits and ':'/'=' no
// detector could take are dismissed from bit masks before they become stops (idleNumbers, idleAssignments).
// Validators run only on candidates. Spans (start, end, entity) are appended to the span buffer. In a stream, the scanner also decides the cut: everything before it
// is final, everything from it on is carried to the next chunk.
import {
  byteAt, C_ALNUM, C_B64URL, C_LOCAL, C_UPPER, cls, isAlnum, isAlnumBit, isDigit, isHex, MATCH, NEED, NONE, PAIR,
  prevByte, STOP_ALWAYS, STOP_AT_WORD_START, thirdFits,
} from "./bytes";
import { detectCrypto } from "./detect-crypto";
import { detectEmail } from "./detect-email";
import { detectIban } from "./detect-iban";
import { detectNino, detectPassport, detectRouting } from "./detect-ids";
import { detectIpv4, detectIpv6, detectUrlCredentials } from "./detect-network";
import { continuesToken, detectCard, detectNhs, detectPhone, detectSsn } from "./detect-numbers";
import {
  detectAfterKey, detectAuthorization, isKeyByte, namesSecret, detectAwsKey, detectBearer, detectJwt, detectPassword, detectPem, pemEnd,
} from "./detect-secrets";
import { detectGithub, detectGitlab, detectSkKey, detectSlack, detectStripe } from "./detect-tokens";
import {
  ABA_ROUTING_NUMBER, AWS_ACCESS_KEY, AWS_SECRET_KEY, BEARER_TOKEN, CREDIT_CARD, CRYPTO, EMAIL_ADDRESS, GITHUB_TOKEN,
  GITLAB_TOKEN, IBAN_CODE, IP_ADDRESS, JWT, OPENAI_API_KEY, PASSWORD, PHONE_NUMBER, PRIVATE_KEY, SLACK_TOKEN,
  STRIPE_KEY, UK_NHS, UK_NINO, URL_CREDENTIALS, US_ITIN, US_PASSPORT, US_SSN,
} from "./entities";
import { CONT_NONE, CONT_PEM, mCont, mContClass, mEnd, mEntity, mStart, needFrom, startCandidate } from "./found";

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

/**
 * Whether the prefilter dismisses, from bit masks, the digits and the ':'/'=' that no detector could take (see
 * idleNumbers and idleAssignments), the '-' lanes PAIR would not confirm, and word starts whose third byte no keyword
 * has (thirdFits). Off, every stop the PAIR table allows is tried: the spans found must be the same, which the tests
 * check on random texts.
 */
let dismissIdle: bool = true;

export function setDismissIdle(on: bool): void {
  dismissIdle = on;
}

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
  // Sentinel: a trigger byte after the data ends every word and stops the loop, so the hot loops need no bounds
  // check. The pending buffer always has room after the data (index.ts allocates it with slack).
  store<u8>(p + <usize>len, 0x40);
  let lastEnd = i;
  blockAt = -16;
  lanes = 0;
  while (true) {
    i = nextStop(p, len, i);
    if (i >= len) break;
    const c = byteAt(p, i);
    let r = NONE;
    const word = (cls(c) & C_ALNUM) != 0;
    if (word) {
      startCandidate(i);
      r = tryWord(p, len, i, c, mask, final);
    } else {
      startCandidate(i);
      r = tryPunct(p, len, i, c, mask, final, lastEnd);
    }
    if (r == MATCH && mEnd > i && mStart >= lastEnd) {
      addSpan(mStart, mEnd, mEntity);
      i = mEnd;
      lastEnd = i;
      continue;
    }
    if (r == NEED) {
      const needAt = c == 0x40 ? mStart : needFrom < lastEnd ? lastEnd : needFrom;
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
    }
    i++;
  }
  if (!final) {
    cutAt = keepLocalRun(p, len, lastEnd);
    // An IBAN-like group and a space at the end are kept too: digits next may not be a card (see detectCard).
    if (cutAt == len && len - 5 >= lastEnd && continuesToken(p, len)) cutAt = len - 5;
    if (cutAt == len) cutAt = keepKeyTail(p, len, lastEnd);
  }
  return spanCount;
}

// The block the prefilter looked at last (its first byte) and its lanes not yet confirmed or dismissed: a detector
// that answers NONE lets the scan go on inside the same block without computing its lanes again.
let blockAt: i32 = -16;
let lanes: i32 = 0;

/**
 * The next stop at or after i: trigger punctuation, or a word start whose first two bytes may begin a value (the PAIR
 * table). The sentinel after the data stops it at the end at the latest; the block loads read up to 32 bytes past
 * that (index.ts keeps slack after the pending bytes). i only grows within a scan, so i >= blockAt. A function of its
 * own: the block loop keeps its vectors in registers.
 */
function nextStop(p: usize, len: i32, i: i32): i32 {
  let block = blockAt;
  let found = lanes;
  if (i >= block + 16) {
    block = i;
    found = stopLanes(p + <usize>i, len - i);
  } else found &= -1 << (i - block);
  while (true) {
    while (found == 0) {
      block += 16;
      found = stopLanes(p + <usize>block, len - block);
    }
    const lane = block + ctz(found);
    found &= found - 1;
    const v = <u32>load<u8>(PAIR + <usize>load<u16>(p + <usize>lane));
    if (
      (v & STOP_ALWAYS) != 0 ||
      ((v & STOP_AT_WORD_START) != 0 && isAlnumBit(prevByte(p, lane)) == 0 &&
        (!dismissIdle || lane + 2 >= len || thirdFits(v, byteAt(p, lane + 2))))
    ) {
      blockAt = block;
      lanes = found;
      return lane;
    }
  }
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

/**
 * A key that names a secret (`PGPASSWORD`, `"aws_secret_access_key"`), then a closing quote or blanks, at the end of
 * the data: its ':' or '=' may come next, and the key must still be there when it does (see detectAfterKey).
 */
function keepKeyTail(p: usize, len: i32, floor: i32): i32 {
  let k = len;
  while (k > floor && len - k < 4 && (byteAt(p, k - 1) == 0x20 || byteAt(p, k - 1) == 0x09)) k--;
  if (k > floor && (byteAt(p, k - 1) == 0x22 || byteAt(p, k - 1) == 0x27)) k--;
  if (k > floor && byteAt(p, k - 1) == 0x5c) k--;
  const ke = k;
  while (k > floor && ke - k < 64 && isKeyByte(byteAt(p, k - 1))) k--;
  if (k == ke || ke == len) return len;
  return namesSecret(p, len, k, ke) ? k : len;
}

// The block prefilter: 16 bytes at a time, a lane is set when the scanner may stop there (see nextStop). Byte
// classes come from two 16-entry tables indexed by the low and high nibble (a lane's class is the AND of both), so
// each class below is a superset of the exact one; nextStop confirms each lane with the PAIR table.
/**
 * Trigger punctuation + ( - : = @ (exact): 2 for ':' and '=' (the assignments idleAssignments looks at), 4 for '@',
 * 1 for the others. A '-' stops only before another (a PEM line) or the sentinel: the PAIR table confirms it.
 */
const TRIGGER_LO = i8x16(4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0, 3, 0, 0);
const TRIGGER_HI = i8x16(0, 0, 1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
/**
 * The first byte of a lower-case word start a detector may begin with, one bit per group of the second bytes it
 * needs: a (u b), b (e c), p (a w), r (o t k), e or s (y k), g (h i l), x (o a), w (h).
 */
const FIRST_LO = i8x16(4, 1, 10, 16, 0, 16, 0, -96, 64, 0, 0, 0, 0, 0, 0, 0);
const FIRST_HI = i8x16(0, 0, 0, 0, 0, 0, 51, -36, 0, 0, 0, 0, 0, 0, 0, 0);
/** The second byte (with 0x20 set, so either case) of those word starts, with the same bits. */
const SECOND_LO = i8x16(0, 68, 1, 2, 8, 3, 0, 4, -96, 48, 0, 24, 32, 0, 0, 72);
const SECOND_HI = i8x16(0, 0, 0, 0, 0, 0, -1, 29, 0, 0, 0, 0, 0, 0, 0, 0);

// @ts-ignore: decorator
@inline function lanesIn(lo: v128, hi: v128, tableLo: v128, tableHi: v128): v128 {
  return v128.and(i8x16.swizzle(tableLo, lo), i8x16.swizzle(tableHi, hi));
}

/**
 * Lanes whose byte is in [from, from + count): one subtraction and one signed compare (the range is moved to the
 * bottom of the signed bytes), where an unsigned compare would cost four instructions on x64.
 */
// @ts-ignore: decorator
@inline function lanesBelow(x: v128, from: i32, count: i32): v128 {
  return i8x16.lt_s(i8x16.sub(x, i8x16.splat(<i8>(from + 0x80))), i8x16.splat(<i8>(count - 0x80)));
}

/**
 * Bit j set when the scanner may stop at p[j] (j < 16): trigger punctuation (see PAIR), or a word start (p[j - 1] not a letter
 * or digit) at a digit, a capital, or a lower-case letter whose next byte may continue a detector's prefix. `left` is
 * how many bytes of the data start at p (the rest is the sentinel and slack).
 */
// @ts-ignore: decorator
@inline function stopLanes(p: usize, left: i32): i32 {
  const nibble = i8x16.splat(0x0f);
  const a = v128.load(p);
  const next = v128.or(v128.load(p + 1), i8x16.splat(0x20));
  const aLo = v128.and(a, nibble);
  const aHi = v128.and(i16x8.shr_u(a, 4), nibble);
  const nextLo = v128.and(next, nibble);
  const nextHi = v128.and(i16x8.shr_u(next, 4), nibble);
  const zero = i8x16.splat(0);
  // The table lookups give 0 for a lane that is none of their class: their bit masks are inverted as integers, which
  // is cheaper than a vector "not equal".
  const trigger = lanesIn(aLo, aHi, TRIGGER_LO, TRIGGER_HI);
  const noTrigger = i8x16.bitmask(i8x16.eq(trigger, zero));
  const noLowerStart = i8x16.bitmask(
    i8x16.eq(v128.and(lanesIn(aLo, aHi, FIRST_LO, FIRST_HI), lanesIn(nextLo, nextHi, SECOND_LO, SECOND_HI)), zero),
  );
  const digits = i8x16.bitmask(lanesBelow(a, 0x30, 10));
  // Word starts: the byte before is no letter or digit, known from the lanes' own classes shifted by one (and the
  // byte before the block) instead of a second load and classification.
  const letters = i8x16.bitmask(lanesBelow(v128.or(a, i8x16.splat(0x20)), 0x61, 26));
  const beforeWord = ((digits | letters) << 1) | isAlnumBit(prevByte(p, 0));
  const start = digits | i8x16.bitmask(lanesBelow(a, 0x41, 26)) | (noLowerStart ^ 0xffff);
  let lanes = (noTrigger ^ 0xffff) | (start & ~beforeWord);
  if (!dismissIdle) return lanes;
  // A '-' stops only before another or the sentinel '@' (see PAIR): the dashes of dates, host and pod names are no
  // lanes. `next` has 0x20 set, so a '-' or CR next reads as '-', an '@' or '`' as '`' (kept: PAIR tells them apart).
  lanes &= ~i8x16.bitmask(
    v128.andnot(
      i8x16.eq(a, i8x16.splat(0x2d)),
      v128.or(i8x16.eq(next, i8x16.splat(0x2d)), i8x16.eq(next, i8x16.splat(0x60))),
    ),
  );
  const wanted = lanes & digits;
  if (wanted != 0) lanes &= ~idleNumbers(p, a, next, digits, letters, left, wanted);
  const two = i8x16.splat(2);
  const assigns = i8x16.bitmask(i8x16.eq(v128.and(trigger, two), two));
  if ((lanes & assigns) != 0) lanes &= ~idleAssignments(p, a, next, assigns, digits, letters, left);
  return lanes;
}

/** Bits 0–31 of the 32 bytes lo, hi: which are byte c. */
// @ts-ignore: decorator
@inline function equal32(lo: v128, hi: v128, c: i32): i32 {
  const v = i8x16.splat(<i8>c);
  return i8x16.bitmask(i8x16.eq(lo, v)) | (i8x16.bitmask(i8x16.eq(hi, v)) << 16);
}

/**
 * The lanes of `idle` that may be dismissed: those whose look-ahead (`reach` bytes from the lane) stays inside the
 * data, which starts at the block and holds `left` bytes from it. Past that a value may go on in the next chunk.
 */
// @ts-ignore: decorator
@inline function inData(idle: i32, left: i32, reach: i32): i32 {
  const room = left - reach;
  return room >= 16 ? idle : room <= 0 ? 0 : idle & ((1 << room) - 1);
}

/** Bits of the 16 bytes of x: which are a space or a '-'. */
// @ts-ignore: decorator
@inline function spacesAndDashes(x: v128): i32 {
  return i8x16.bitmask(v128.or(i8x16.eq(x, i8x16.splat(0x20)), i8x16.eq(x, i8x16.splat(0x2d))));
}

/**
 * The digits among the `wanted` lanes at p (digit word starts still stops) that start no number any detector could
 * take, told apart with bit masks over the 32 bytes from p instead of a stop each: a run of one to eight digits after
 * which no group a detector reads on follows (the rules by run length below), nor, after a 1, a 3 or "0x", a letter
 * (a crypto address). Longer runs, and lanes within nine bytes of the data's end (where the number may go on in the
 * next chunk), are left to the scanner. The classes are computed for all 32 bytes at once; the rules are read for
 * each lane from its run's end (blocks have one or two such lanes, so this is cheaper than evaluating every run
 * length for all bytes at once). `a` and `next` are the block's bytes and the bytes after each (with 0x20 set);
 * `digits` and `letters` the lanes of each class.
 */
// @ts-ignore: decorator
@inline function idleNumbers(p: usize, a: v128, next: v128, digits: i32, letters: i32, left: i32, wanted: i32): i32 {
  const b = v128.load(p + 16);
  const d = digits | (i8x16.bitmask(lanesBelow(b, 0x30, 10)) << 16);
  const letter = letters | (i8x16.bitmask(lanesBelow(v128.or(b, i8x16.splat(0x20)), 0x61, 26)) << 16);
  const open = equal32(a, b, 0x28);
  const dot = equal32(a, b, 0x2e);
  const spaceOrDash = spacesAndDashes(a) | (spacesAndDashes(b) << 16);
  // Bit k: p[k] is a separator (space, '-', '.') and p[k + 1] a digit or '(' — a number's group goes on after p[k].
  const sep = spaceOrDash | dot;
  const goesOn = sep & ((d | open) >>> 1);
  let idle = 0;
  let todo = inData(wanted, left, 9);
  while (todo != 0) {
    const s = ctz(todo);
    todo &= todo - 1;
    const n = ctz(~(d >>> s)); // the run's length: p[s + n] is its first byte that is no digit
    if (n > 8) continue;
    const t = s + n;
    if (((letter >>> t) & 1) != 0) {
      // Letters next: only a crypto address goes on, from a 1, a 3 or "0x" and a run of at least 25 letters and
      // digits (base58check: 25–34, "0x": 42); a run that ends within 24 bytes, inside the window and the data, is
      // none.
      const c = byteAt(p, s);
      if (c == 0x31 || c == 0x33 || (c == 0x30 && n == 1 && (byteAt(p, t) | 0x20) == 0x78)) {
        const e = s + <i32>ctz(~((d | letter) >>> s));
        if (e - s > 24 || e >= 32 || e >= left) continue;
      }
      idle |= 1 << s;
      continue;
    }
    if (((goesOn >>> t) & 1) == 0) {
      idle |= 1 << s;
      continue;
    }
    // A separator and a digit or '(' follow the run. Bits k of these are the bytes p[t + k].
    const dt = d >>> t;
    const st = sep >>> t;
    const dotT = dot >>> t;
    // A number of two groups only (the second of one to six digits at t + 1, nothing a group goes on with after it,
    // and the bytes read to know it, up to t + 8, inside the window and the data) is no card (two groups of 3–6 have
    // at most 12 digits), SSN, NHS number or IPv4 address, and a phone number only as one of the two-group national
    // shapes, which open with a 0 or a 6–9 (5-5, 5-6; 3-7, 3-8 and 4-7 have a longer second group).
    let last = false;
    if ((dt & 2) != 0 && t + 8 < 32 && t + 8 < left) {
      const m = <i32>ctz(~(dt >>> 1));
      last = m <= 6 && ((goesOn >>> (t + 1 + m)) & 1) == 0;
    }
    const threeNext = (dt & 14) == 14;
    const more = !last; // a group goes on after t (goesOn), and not as a two-group number's last
    let keep = false;
    if (n == 1 || n == 2) {
      // After one or two digits only a phone number (1-3-3-4; 2-4-4, 2-2-2-2-2: see nationalShape) or an IPv4
      // address goes on: a '(' next, a dot and one to three digits and another dot (`1.28.4`, a version, is no
      // address), or a next group of at least 3 digits (after 1), or of 4 or of 2 and another group (after 2).
      const octet = (dt & 2) != 0 && ((dotT & 4) != 0 || ((dt & 4) != 0 && ((dotT & 8) != 0 || ((dt & 8) != 0 && (dotT & 16) != 0))));
      keep = ((open >>> t) & 2) != 0 || ((dotT & 1) != 0 && octet) || (threeNext && more && (n == 1 || (dt & 16) != 0));
      if (n == 2 && (dt & 30) == 22 && (st & 8) != 0) keep = true; // France's 2-2-2-2-2: two digits, a separator, a digit
    } else if (n == 3) {
      keep = more; // any group: card, SSN, NHS number, IPv4 address, phone number
    } else if (n <= 6) {
      // A card's next group (3–6 digits after a space or '-'); a phone number opens with 4 digits after the trunk
      // prefix 0, with 5 after it or as a mobile (6–9).
      const c = byteAt(p, s);
      keep = ((spaceOrDash >>> t) & 1) != 0 && threeNext && more;
      if (n == 4 && c == 0x30 && more) keep = true;
      if (n == 5 && (c == 0x30 || c >= 0x36)) keep = true;
    }
    if (!keep) idle |= 1 << s;
  }
  return idle;
}

/** Bits of the 16 bytes of x: the punctuation a key may hold ('_', '-', '.'). */
// @ts-ignore: decorator
@inline function keyPunctuation(x: v128): i32 {
  return i8x16.bitmask(
    v128.or(v128.or(i8x16.eq(x, i8x16.splat(0x5f)), i8x16.eq(x, i8x16.splat(0x2d))), i8x16.eq(x, i8x16.splat(0x2e))),
  );
}

/** Bits of the 16 bytes of x: which are a '.' or a ':' (no IPv6 group stands after one). */
// @ts-ignore: decorator
@inline function stops(x: v128): i32 {
  return i8x16.bitmask(v128.or(i8x16.eq(x, i8x16.splat(0x2e)), i8x16.eq(x, i8x16.splat(0x3a))));
}

/**
 * Bits of the 16 bytes of x (with 0x20 set, `after` the bytes after each): which start "pa" or "pw" (a password's
 * name: password, passwd, passphrase, pass, pwd) or "cr" (secret).
 */
// @ts-ignore: decorator
@inline function nameStarts(x: v128, after: v128): i32 {
  const aOrW = v128.or(i8x16.eq(after, i8x16.splat(0x61)), i8x16.eq(after, i8x16.splat(0x77)));
  return i8x16.bitmask(
    v128.or(
      v128.and(i8x16.eq(x, i8x16.splat(0x70)), aOrW),
      v128.and(i8x16.eq(x, i8x16.splat(0x63)), i8x16.eq(after, i8x16.splat(0x72))),
    ),
  );
}

/**
 * The ':' and '=' among the 16 lanes at p (`assigns`) where tryPunct would call no detector or
 * one that answers NONE at once, told apart with bit masks over the 32 bytes from p - 16 instead of a stop each:
 * - the last key before it (with only bytes that are no key bytes between them, among which the four blanks, the
 *   quote and the backslash detectAfterKey skips) holds no "pa" or "pw" (a password's name) and no "cr" (`secret`):
 *   detectAfterKey reads only such keys. A key that may begin before the window counts as holding one;
 * - for a ':', no IPv6 group of one to four hex digits before it that stands alone (detectIpv6 needs one, or "::"),
 *   and no "//" or "thin" around it (detectUrlCredentials).
 * A lane just before the data's end is left to the scanner (tryPunct treats the end as '/'). `digits` and `letters`
 * are the block's lanes of each class.
 */
// @ts-ignore: decorator
@inline function idleAssignments(p: usize, a: v128, next: v128, assigns: i32, digits: i32, letters: i32, left: i32): i32 {
  const alnum = digits | letters;
  const w = v128.load(p - 16);
  const lower = i8x16.splat(0x20);
  const aLower = v128.or(a, lower);
  const wLower = v128.or(w, lower);
  const wDigit = lanesBelow(w, 0x30, 10);
  const wAlnum = i8x16.bitmask(v128.or(wDigit, lanesBelow(wLower, 0x61, 26)));
  // Bit k is byte p[k - 16].
  const key = wAlnum | keyPunctuation(w) | ((alnum | keyPunctuation(a)) << 16);
  const marked = key & (nameStarts(wLower, v128.or(v128.load(p - 15), lower)) | (nameStarts(aLower, next) << 16));
  // A carry from each marked byte runs through the rest of its key and comes out just after it: bit e is set when
  // the key ending at e - 1 holds a marked byte. A key reaching the window's start may hold one before it.
  let named = (key + marked) & ~key;
  if ((key & 1) != 0) named |= (key + 1) & ~key;
  // From there a second carry runs on through the bytes that are no key bytes, up to the next key: what
  // detectAfterKey skips back over (a backslash, a quote, up to four blanks) is among them.
  const other = ~key;
  let idle = assigns & ~((((other + named) ^ other) & other) >>> 16);
  const colons = idle & i8x16.bitmask(i8x16.eq(a, i8x16.splat(0x3a)));
  if (colons != 0) {
    // IPv6: a group of n = 1…4 hex digits before the ':', the byte before it no letter, digit, ':' or '.'.
    const hex = i8x16.bitmask(v128.or(wDigit, lanesBelow(wLower, 0x61, 6))) |
      ((digits | i8x16.bitmask(lanesBelow(aLower, 0x61, 6))) << 16);
    const alone = ~(wAlnum | stops(w) | ((alnum | stops(a)) << 16));
    let group = hex << 1;
    let v6 = group & (alone << 2);
    group &= hex << 2;
    v6 |= group & (alone << 3);
    group &= hex << 3;
    v6 |= group & (alone << 4);
    group &= hex << 4;
    v6 |= group & (alone << 5);
    // "//" after the ':' or "thin" before it (detectUrlCredentials), or "::".
    const n = i8x16.bitmask(i8x16.eq(aLower, i8x16.splat(0x6e)));
    const nearby = i8x16.bitmask(v128.or(i8x16.eq(next, i8x16.splat(0x3a)), i8x16.eq(next, i8x16.splat(0x2f)))) |
      (n << 1) | <i32>((prevByte(p, 0) | 0x20) == 0x6e);
    idle &= ~(colons & ((v6 >>> 16) | nearby));
  }
  // The byte after the ':' must be data: at the end tryPunct reads it as '/'.
  return inData(idle, left, 1);
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

// @ts-ignore: decorator
@inline function on(mask: u32, entity: i32): bool {
  return (mask & (1 << entity)) != 0;
}

// Number detectors a digit run's shape allows (numberShapes).
const N_CARD: u32 = 1;
const N_SSN: u32 = 2;
const N_NHS: u32 = 4;
const N_IPV4: u32 = 8;
const N_PHONE: u32 = 16;
const N_CRYPTO: u32 = 32;
const N_ALL: u32 = 63;

/**
 * Which number detectors can start at digit c (position i), from the length of the digit run and the two bytes after
 * it: grouped numbers continue with a separator and a digit (cards in groups of 3–6, SSN/NHS/phone groups of 1–5,
 * IPv4 octets), whole numbers have their own lengths (13–19 for a card, 9 for an SSN), and only a crypto address goes
 * on with letters. Most numbers in text (`137`, `42ms`, `12:30`, `"id":123456,`, `2024-05-03T…`) start nothing.
 */
// @ts-ignore: decorator
@inline function numberShapes(p: usize, len: i32, i: i32, c: u32): u32 {
  let j = i + 1;
  while (j < len && isDigit(byteAt(p, j))) j++;
  if (j + 1 >= len) return N_ALL; // the data ends: the detectors decide (and wait for more)
  const run = j - i;
  const next = byteAt(p, j);
  if (isAlnum(next)) {
    if (c == 0x31 || c == 0x33 || (c == 0x30 && run == 1 && (next | 0x20) == 0x78)) return N_CRYPTO;
    return 0;
  }
  let shapes: u32 = 0;
  if (run >= 13 && run <= 19) shapes |= N_CARD;
  if (run == 9) shapes |= N_SSN;
  const after = byteAt(p, j + 1);
  // A national phone number (no '+': that one starts at the '+') opens with a group of 4 digits only after the trunk
  // prefix 0, and with 5 only after it or as a mobile (6–9): see nationalShape. `2024-05-03` is a date.
  const phone = run <= 3 || c == 0x30 || (run == 5 && c >= 0x36);
  if (next == 0x20 || next == 0x2d || next == 0x2e) {
    if (isDigit(after)) {
      if (next != 0x2e && run >= 3 && run <= 6) shapes |= N_CARD;
      if (run == 3) shapes |= N_SSN | N_NHS;
      if (run <= 5 && phone) shapes |= N_PHONE;
      if (next == 0x2e && run <= 3) shapes |= N_IPV4;
    } else if (after == 0x28 && run <= 5 && phone) shapes |= N_PHONE;
  }
  return shapes;
}

/** Runs the detectors that can start a word with byte c (position i); MATCH, NEED or NONE. */
function tryWord(p: usize, len: i32, i: i32, c: u32, mask: u32, final: bool): i32 {
  let r = NONE;
  if (isDigit(c)) {
    const shapes = numberShapes(p, len, i, c);
    if (shapes == 0) return NONE;
    if ((shapes & N_CARD) != 0 && on(mask, CREDIT_CARD) && (r = detectCard(p, len, i, final)) != NONE) return r;
    const ssn = on(mask, US_SSN);
    const itin = on(mask, US_ITIN);
    if ((shapes & N_SSN) != 0 && (ssn || itin) && (r = detectSsn(p, len, i, final, ssn, itin)) != NONE) return r;
    if ((shapes & N_NHS) != 0 && on(mask, UK_NHS) && (r = detectNhs(p, len, i, final)) != NONE) return r;
    if ((shapes & N_IPV4) != 0 && on(mask, IP_ADDRESS) && (r = detectIpv4(p, len, i, final)) != NONE) return r;
    // After '+' the number was already tried as E.164; its national reading would be a false friend.
    if ((shapes & N_PHONE) != 0 && on(mask, PHONE_NUMBER) && prevByte(p, i) != 0x2b &&
      (r = detectPhone(p, len, i, final)) != NONE) return r;
    if ((shapes & N_CRYPTO) != 0 && on(mask, CRYPTO) && c <= 0x33 && c != 0x32 &&
      (r = detectCrypto(p, len, i, final)) != NONE) return r;
    return NONE;
  }
  const lower = c | 0x20;
  const upper = (cls(c) & C_UPPER) != 0;
  switch (lower) {
    case 0x61: // a
      if (on(mask, BEARER_TOKEN) && (r = detectAuthorization(p, len, i, final)) != NONE) return r;
      if (on(mask, ABA_ROUTING_NUMBER) && (r = detectRouting(p, len, i, final)) != NONE) return r;
      if (c == 0x41 && on(mask, AWS_ACCESS_KEY) && (r = detectAwsKey(p, len, i, final)) != NONE) return r;
      break;
    case 0x62: // b
      if (on(mask, BEARER_TOKEN) && (r = detectBearer(p, len, i, final)) != NONE) return r;
      if (on(mask, CRYPTO) && (r = detectCrypto(p, len, i, final)) != NONE) return r;
      break;
    case 0x65: // e
      if (c == 0x65 && on(mask, JWT) && (cls(prevByte(p, i)) & C_B64URL) == 0 && prevByte(p, i) != 0x2e)
        if ((r = detectJwt(p, len, i, final)) != NONE) return r;
      break;
    case 0x67: // g
      if (upper) break;
      if (on(mask, GITHUB_TOKEN) && (r = detectGithub(p, len, i, final)) != NONE) return r;
      if (on(mask, GITLAB_TOKEN) && (r = detectGitlab(p, len, i, final)) != NONE) return r;
      break;
    case 0x70: // p
      if (on(mask, PASSWORD) && (r = detectPassword(p, len, i, final)) != NONE) return r;
      if (on(mask, US_PASSPORT) && (r = detectPassport(p, len, i, final)) != NONE) return r;
      break;
    case 0x72: // r
      if (on(mask, ABA_ROUTING_NUMBER) && (r = detectRouting(p, len, i, final)) != NONE) return r;
      if (!upper && on(mask, STRIPE_KEY) && (r = detectStripe(p, len, i, final)) != NONE) return r;
      break;
    case 0x73: // s
      if (upper) break;
      if (on(mask, STRIPE_KEY) && (r = detectStripe(p, len, i, final)) != NONE) return r;
      if (on(mask, OPENAI_API_KEY) && (r = detectSkKey(p, len, i, final)) != NONE) return r;
      break;
    case 0x77: // w
      if (!upper && on(mask, STRIPE_KEY) && (r = detectStripe(p, len, i, final)) != NONE) return r;
      break;
    case 0x78: // x
      if (!upper && on(mask, SLACK_TOKEN) && (r = detectSlack(p, len, i, final)) != NONE) return r;
      break;
    default:
      break;
  }
  if (!upper) return NONE;
  if (on(mask, IBAN_CODE) && (r = detectIban(p, len, i, final)) != NONE) return r;
  if (on(mask, UK_NINO) && (r = detectNino(p, len, i, final)) != NONE) return r;
  return NONE;
}

/** Runs the detectors that start at punctuation byte c (position i); MATCH, NEED or NONE. */
function tryPunct(p: usize, len: i32, i: i32, c: u32, mask: u32, final: bool, lastEnd: i32): i32 {
  const prev = prevByte(p, i);
  let r = NONE;
  switch (c) {
    case 0x40: // '@'
      return on(mask, EMAIL_ADDRESS) ? detectEmail(p, len, i, lastEnd, final) : NONE;
    case 0x2b: // '+'
    case 0x28: // '('
      return !isAlnum(prev) && on(mask, PHONE_NUMBER) ? detectPhone(p, len, i, final) : NONE;
    case 0x2d: // '-'
      if (prev == 0x2d || !on(mask, PRIVATE_KEY)) return NONE;
      if (i + 1 < len && byteAt(p, i + 1) != 0x2d) return NONE;
      return detectPem(p, len, i, final);
    default:
      break;
  }
  // ':' or '='. The key before it goes first: when it waits for more data it keeps the most bytes. The first tests
  // of detectUrlCredentials ("//" or "thin" around the ':') and detectIpv6 (a hex digit before or a ':' after) are
  // made here, where most ':' (`"id":`, `key: value`) fail them without a call.
  const next = i + 1 < len ? byteAt(p, i + 1) : 0x2f;
  if (c == 0x3a && on(mask, URL_CREDENTIALS) && (next == 0x2f || (prev | 0x20) == 0x6e) &&
    (r = detectUrlCredentials(p, len, i, lastEnd, final)) != NONE) return r;
  const password = on(mask, PASSWORD);
  const aws = on(mask, AWS_SECRET_KEY);
  if ((password || aws) && (r = detectAfterKey(p, len, i, lastEnd, password, aws, final)) != NONE) return r;
  if (c == 0x3a && on(mask, IP_ADDRESS) && (isHex(prev) || next == 0x3a || i + 1 >= len)) {
    return detectIpv6(p, len, i, lastEnd, final);
  }
  return NONE;
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
