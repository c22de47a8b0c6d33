// Numeric detectors: payment cards, US social security numbers, phone numbers.
// Each starts at a digit (or '+' / '(' for phones) whose previous byte is not alphanumeric.
import { byteAt, isAlnum, isDigit, MATCH, NEED, NONE, SCRATCH } from "./bytes";
import { CREDIT_CARD, PHONE_NUMBER, UK_NHS, US_ITIN, US_SSN } from "./entities";
import { found, keepFrom } from "./found";

// ---------------------------------------------------------------- CREDIT_CARD

/**
 * 13–19 digits, either contiguous or grouped (3–6 digits per group) by one kind of separator (space or dash),
 * followed by a non-alphanumeric byte, Luhn-valid, with a known issuer prefix and length. When a grouped number
 * fails, it is tried again without its last groups, one at a time (a card followed by its expiry, its CVV or any
 * other number: `4111 … 1111 12/25`, `4111 … 1111 137 42`).
 */
export function detectCard(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i >= 5 && byteAt(p, i - 1) == 0x20) keepFrom(i - 5); // continuesToken reads the group before
  let j = i;
  let n = 0;
  let sep: u32 = 0;
  let group = 0;
  let cuts = 0; // digits and end before each separator (CUT_N, CUT_END), for the retries
  let whole = true; // the last group belongs to the number (not cut short by too many digits)
  while (true) {
    if (j >= len) {
      if (!final) return NEED;
      break;
    }
    const c = byteAt(p, j);
    if (isDigit(c)) {
      if (n == 19) {
        if (sep == 0) return NONE;
        whole = false;
        break;
      }
      store<u8>(SCRATCH + <usize>n, <u8>(c - 0x30));
      n++;
      group++;
      j++;
      continue;
    }
    if ((c == 0x20 || c == 0x2d) && (sep == 0 || sep == c) && group >= 3 && group <= 6) {
      if (j + 1 >= len) {
        if (!final) return NEED;
        break;
      }
      if (!isDigit(byteAt(p, j + 1))) break;
      sep = c;
      if (cuts < MAX_CUTS) {
        store<u8>(CUT_N + <usize>cuts, <u8>n);
        store<i32>(CUT_END + (<usize>cuts << 2), j);
        cuts++;
      }
      group = 0;
      j++;
      continue;
    }
    break;
  }
  if (sep == 0x20 && continuesToken(p, i)) return NONE;
  if (whole && (sep == 0 || (group >= 3 && group <= 6)) && cardOk(p, len, n, j)) {
    found(i, j, CREDIT_CARD);
    return MATCH;
  }
  for (let k = cuts - 1; k >= 0; k--) {
    const n2 = <i32>load<u8>(CUT_N + <usize>k);
    if (n2 < 13) break;
    const end = load<i32>(CUT_END + (<usize>k << 2));
    if (cardOk(p, len, n2, end)) {
      found(i, end, CREDIT_CARD);
      return MATCH;
    }
  }
  return NONE;
}

const MAX_CUTS: i32 = 8;
const CUT_N: usize = SCRATCH + 64;
const CUT_END: usize = SCRATCH + 72;

/**
 * Digits grouped by spaces right after a four-character group mixing letters and digits ("DE89 3704 0044 …") are the
 * tail of a longer code (an IBAN whose check failed, an account number), not a card of their own.
 */
export function continuesToken(p: usize, i: i32): bool {
  if (byteAt(p, i - 1) != 0x20 || i < 5) return false;
  if (isAlnum(byteAt(p, i - 6))) return false;
  let letters = 0;
  for (let k = i - 5; k < i - 1; k++) {
    const c = byteAt(p, k);
    if (!isAlnum(c)) return false;
    if (!isDigit(c)) letters++;
  }
  return letters > 0 && letters < 4;
}

function cardOk(p: usize, len: i32, n: i32, end: i32): bool {
  if (n < 13) return false;
  if (end < len && isAlnum(byteAt(p, end))) return false;
  return issuerOk(n) && luhn(n);
}

function d(k: i32): i32 {
  return <i32>load<u8>(SCRATCH + <usize>k);
}

function luhn(n: i32): bool {
  let sum = 0;
  let dbl = false;
  for (let k = n - 1; k >= 0; k--) {
    let v = d(k);
    if (dbl) {
      v <<= 1;
      if (v > 9) v -= 9;
    }
    sum += v;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

function issuerOk(n: i32): bool {
  const p1 = d(0);
  const p2 = p1 * 10 + d(1);
  const p3 = p2 * 10 + d(2);
  const p4 = p3 * 10 + d(3);
  const p6 = p4 * 100 + d(4) * 10 + d(5);
  if (p1 == 1) return n == 15; // UATP (ISO/IEC 7812 major industry identifier 1: airlines)
  if (p1 == 4) return n == 13 || n == 16 || n == 19; // Visa
  if (p4 >= 2200 && p4 <= 2204) return n >= 16; // Mir
  if (p2 == 81 || p2 == 82) return n == 16; // RuPay
  if (p4 == 9792) return n == 16; // Troy
  if (p2 >= 51 && p2 <= 55) return n == 16; // Mastercard
  if (p4 >= 2221 && p4 <= 2720) return n == 16; // Mastercard 2-series
  if (p2 == 34 || p2 == 37) return n == 15; // American Express
  if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65) return n >= 16; // Discover
  if (p6 >= 622126 && p6 <= 622925) return n >= 16; // Discover co-branded UnionPay
  if (p2 == 62) return n >= 16; // UnionPay
  if (p4 >= 3528 && p4 <= 3589) return n >= 16; // JCB
  if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) return n >= 14; // Diners Club
  if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 63 || p2 == 67) return n >= 13; // Maestro
  return false;
}

// ---------------------------------------------------------------- US_SSN

/**
 * AAA-GG-SSSS, AAA.GG.SSSS, AAA GG SSSS (one kind of separator at both places) or AAAGGSSSS. The SSA never issues
 * area 000, 666 or 900–999, group 00 or serial 0000, so such numbers are left alone, as is any other digit run.
 * The same shape with area 9xx and group 50–65, 70–88, 90–92 or 94–99 is an IRS ITIN (US_ITIN).
 */
export function detectSsn(p: usize, len: i32, i: i32, final: bool, ssn: bool, itin: bool): i32 {
  let j = i;
  let sep: u32 = 0;
  for (let k = 0; k < 9; k++) {
    if (k == 3 || (k == 5 && sep != 0)) {
      if (j >= len) return final ? NONE : NEED;
      const c = byteAt(p, j);
      if (k == 3 && (c == 0x2d || c == 0x2e || c == 0x20)) {
        sep = c;
        j++;
      } else if (k == 5) {
        if (c != sep) return NONE;
        j++;
      }
    }
    if (j >= len) return final ? NONE : NEED;
    const c = byteAt(p, j);
    if (!isDigit(c)) return NONE;
    store<u8>(SCRATCH + <usize>k, <u8>(c - 0x30));
    j++;
  }
  if (j < len) {
    const c = byteAt(p, j);
    if (isAlnum(c)) return NONE;
    // "123-45-6789-1" or "123.45.6789.1" is a longer number, not an SSN.
    if (c == 0x2d || c == 0x2e || (sep != 0 && c == sep)) {
      if (j + 1 >= len) {
        if (!final) return NEED;
      } else if (isDigit(byteAt(p, j + 1))) return NONE;
    }
  } else if (!final) {
    return NEED;
  }
  const area = d(0) * 100 + d(1) * 10 + d(2);
  const group = d(3) * 10 + d(4);
  const serial = d(5) * 1000 + d(6) * 100 + d(7) * 10 + d(8);
  if (area >= 900) {
    const itinGroup = (group >= 50 && group <= 65) || (group >= 70 && group <= 88) || (group >= 90 && group <= 92) ||
      group >= 94;
    if (!itin || !itinGroup) return NONE;
    found(i, j, US_ITIN);
    return MATCH;
  }
  if (!ssn || area == 0 || area == 666 || group == 0 || serial == 0) return NONE;
  found(i, j, US_SSN);
  return MATCH;
}

// ---------------------------------------------------------------- UK_NHS

/**
 * An NHS number as the NHS writes it, 3-3-4 digits separated by spaces or dashes (one kind), whose tenth digit is
 * the modulus-11 check of the first nine (weights 10 to 2; a check of 10 is never issued). Ten digits in a row are
 * not reported: timestamps and other identifiers would pass one time in eleven.
 */
export function detectNhs(p: usize, len: i32, i: i32, final: bool): i32 {
  let j = i;
  let sep: u32 = 0;
  for (let k = 0; k < 10; k++) {
    if (k == 3 || k == 6) {
      if (j >= len) return final ? NONE : NEED;
      const c = byteAt(p, j);
      if ((c != 0x20 && c != 0x2d) || (sep != 0 && c != sep)) return NONE;
      sep = c;
      j++;
    }
    if (j >= len) return final ? NONE : NEED;
    const c = byteAt(p, j);
    if (!isDigit(c)) return NONE;
    store<u8>(SCRATCH + <usize>k, <u8>(c - 0x30));
    j++;
  }
  if (j < len) {
    const c = byteAt(p, j);
    if (isAlnum(c) || ((c == sep || c == 0x2e) && j + 1 < len && isDigit(byteAt(p, j + 1)))) return NONE;
  } else if (!final) return NEED;
  let sum = 0;
  for (let k = 0; k < 9; k++) sum += d(k) * (10 - k);
  let check = 11 - sum % 11;
  if (check == 11) check = 0;
  if (check == 10 || check != d(9)) return NONE;
  found(i, j, UK_NHS);
  return MATCH;
}

// ---------------------------------------------------------------- PHONE_NUMBER

const SEP_SPACE: i32 = 1;
const SEP_DASH: i32 = 2;
const SEP_DOT: i32 = 4;
const MAX_GROUPS: i32 = 8;
// Group lengths live after the 32 bytes the card detector uses.
const GROUPS: usize = SCRATCH + 32;
/** The first digits of an E.164 number (its country code), after the group lengths. */
const LEAD: usize = SCRATCH + 48;

/**
 * E.164 (`+` then 8–15 digits, first not 0, optionally grouped by single spaces, dashes or dots and one
 * parenthesised area code) and national formats: `(415) 555-0100`, `415-555-0100`, `415.555.0100`,
 * `020 7946 0958`, `1-800-555-0199`, `01 23 45 67 89` with one kind of separator (see nationalShape).
 * Ungrouped national numbers are not reported: too many identifiers look alike.
 */
export function detectPhone(p: usize, len: i32, i: i32, final: bool): i32 {
  let j = i;
  const plus = byteAt(p, i) == 0x2b;
  if (plus) j++;
  let digits = 0;
  let groups = 0;
  let group = 0;
  let seps = 0;
  let paren = 0; // 0 none yet, 1 open, 2 closed
  let end = -1;
  let firstDigit: u32 = 0;
  while (true) {
    if (j >= len) {
      if (!final) return NEED;
      break;
    }
    const c = byteAt(p, j);
    if (isDigit(c)) {
      if (digits == 0) firstDigit = c;
      if (digits < 3) store<u8>(LEAD + <usize>digits, <u8>(c - 0x30));
      digits++;
      if (digits > 15) {
        if (!plus || paren == 1) return NONE;
        // Longer than any E.164 number: it may end a group or two earlier.
        if (!closeGroup(groups, group + 1, -1)) return NONE;
        return firstDigit == 0x30 ? NONE : shorterE164(i, digits, groups + 1);
      }
      group++;
      j++;
      end = j;
      continue;
    }
    if (c == 0x28 && paren == 0 && group == 0) { // '('
      paren = 1;
      j++;
      continue;
    }
    if (c == 0x29 && paren == 1 && group > 0) { // ')'
      paren = 2;
      if (!closeGroup(groups, group, -1)) return NONE; // a number does not end at ')' 
      groups++;
      group = 0;
      j++;
      end = -1; // a number does not end at ')'
      if (j < len && byteAt(p, j) == 0x20) j++;
      continue;
    }
    let kind = 0;
    if (c == 0x20) kind = SEP_SPACE;
    else if (c == 0x2d) kind = SEP_DASH;
    else if (c == 0x2e) kind = SEP_DOT;
    if (kind != 0 && group > 0 && paren != 1) {
      // A separator counts only when a digit (or '(') follows.
      if (j + 1 >= len) {
        if (!final) return NEED;
        break;
      }
      const nx = byteAt(p, j + 1);
      if (!isDigit(nx) && !(nx == 0x28 && paren == 0)) break;
      seps |= kind;
      if (!closeGroup(groups, group, j)) return NONE;
      groups++;
      group = 0;
      j++;
      continue;
    }
    break;
  }
  if (paren == 1 || group == 0 || end < 0) return NONE;
  if (!closeGroup(groups, group, end)) return NONE;
  groups++;
  // Glued to letters: not a phone number, though an E.164 number may end a group earlier (`+1 415 555 0100 42ms`).
  const glued = end < len && isAlnum(byteAt(p, end));
  if (glued && !plus) return NONE;
  // A dash or dot right after the last group followed by a digit means a longer identifier.
  if (end + 1 < len) {
    const c = byteAt(p, end);
    if ((c == 0x2d || c == 0x2e) && isDigit(byteAt(p, end + 1))) return NONE;
  }
  if (plus) {
    if (firstDigit == 0x30) return NONE;
    if (glued || digits < 8 || !e164Length(digits)) return shorterE164(i, digits, groups);
  } else {
    if (seps != SEP_SPACE && seps != SEP_DASH && seps != SEP_DOT && !(paren == 2 && seps != SEP_DOT)) return NONE;
    if (!nationalShape(groups, seps == SEP_DOT, firstDigit, paren == 2)) return NONE;
  }
  found(i, end, PHONE_NUMBER);
  return MATCH;
}

/**
 * An E.164 number that is too long for its country's plan (or runs into letters), tried without its last groups,
 * one at a time (`+1 415 555 0100 3 items`).
 */
function shorterE164(i: i32, digits: i32, groups: i32): i32 {
  let n = digits;
  for (let k = groups - 1; k > 0; k--) {
    n -= g(k);
    const e = load<i32>(CUT_END + (<usize>(k - 1) << 2));
    if (n < 8 || e < 0) break;
    if (e164Length(n)) {
      found(i, e, PHONE_NUMBER);
      return MATCH;
    }
  }
  return NONE;
}

/**
 * The national significant number's length for the country codes whose plans fix it (ITU-T E.164 assignments and
 * the national plans): `+1 415 555 0100` has 10 digits after its code, `+44` 9–10, `+33` 9. Countries whose numbers
 * vary more widely (Germany, Austria, Sweden, Finland…) and codes not listed keep E.164's own bound (8–15 in all).
 */
function e164Length(digits: i32): bool {
  const a = <i32>load<u8>(LEAD);
  const ab = a * 10 + <i32>load<u8>(LEAD + 1);
  const abc = ab * 10 + <i32>load<u8>(LEAD + 2);
  if (a == 1 || a == 7) return digits - 1 == 10; // NANP; Russia and Kazakhstan
  let cc = 0;
  let lo = 0;
  let hi = 0;
  switch (ab) {
    case 27: case 31: case 33: case 34: case 40: case 41: case 48: case 61: cc = 2; lo = 9; hi = 9; break;
    case 30: case 52: case 90: case 91: cc = 2; lo = 10; hi = 10; break;
    case 32: case 36: cc = 2; lo = 8; hi = 9; break;
    case 39: cc = 2; lo = 6; hi = 11; break;
    case 44: cc = 2; lo = 9; hi = 10; break;
    case 45: case 47: case 65: cc = 2; lo = 8; hi = 8; break;
    case 55: cc = 2; lo = 10; hi = 11; break;
    case 64: case 82: cc = 2; lo = 8; hi = 10; break;
    case 81: cc = 2; lo = 9; hi = 10; break;
    case 86: cc = 2; lo = 10; hi = 11; break;
    default: break;
  }
  if (cc == 0) {
    if (abc == 351) { cc = 3; lo = 9; hi = 9; }
    else if (abc == 353) { cc = 3; lo = 7; hi = 9; }
    else if (abc == 971 || abc == 972) { cc = 3; lo = 8; hi = 9; }
    else return true;
  }
  const nsn = digits - cc;
  return nsn >= lo && nsn <= hi;
}

/**
 * The national groupings reported, as numbering plans and their national conventions write them: North America
 * 3-3-4 (`415 555 0100`, also with dots) and 1-3-3-4 (`1-800-555-0199`); France 2-2-2-2-2; with the trunk prefix 0:
 * UK 3-4-4 (`020 7946 0958`) and mobiles 5-6 (`07700 900123`), Germany 3-7/3-8 and 4-7 (`030 1234567`,
 * `0171 1234567`), Australia 4-3-3 (`0412 345 678`) and 2-4-4 (`02 1234 5678`, also Italy); Brazil (2)-5-4 and
 * (2)-4-4 with the area code in parentheses; India 5-5 and Spain 3-2-2-2 (first digit 6–9, mobile ranges). Other
 * groupings are too often something else (account numbers, IBAN tails, dates).
 */
function nationalShape(groups: i32, dots: bool, first: u32, paren: bool): bool {
  const trunk = first == 0x30;
  const mobile = first >= 0x36; // 6–9
  if (groups == 3) {
    if (g(0) == 3 && g(2) == 4 && (g(1) == 3 || (g(1) == 4 && !dots))) return true;
    if (dots) return false;
    if (trunk && g(0) == 4 && g(1) == 3 && g(2) == 3) return true;
    if ((trunk || paren) && g(0) == 2 && g(1) == 4 && g(2) == 4) return true;
    return paren && g(0) == 2 && g(1) == 5 && g(2) == 4;
  }
  if (dots) return false;
  if (groups == 2) {
    if (trunk) return (g(0) == 5 && g(1) == 6) || (g(0) == 4 && g(1) == 7) || (g(0) == 3 && (g(1) == 7 || g(1) == 8));
    return mobile && g(0) == 5 && g(1) == 5;
  }
  if (groups == 4) {
    if (g(0) == 1 && g(1) == 3 && g(2) == 3 && g(3) == 4) return true;
    return mobile && g(0) == 3 && g(1) == 2 && g(2) == 2 && g(3) == 2;
  }
  if (groups == 5) return g(0) == 2 && g(1) == 2 && g(2) == 2 && g(3) == 2 && g(4) == 2;
  return false;
}

function closeGroup(index: i32, length: i32, end: i32): bool {
  if (index >= MAX_GROUPS) return false;
  store<u8>(GROUPS + <usize>index, <u8>length);
  store<i32>(CUT_END + (<usize>index << 2), end);
  return true;
}
function g(k: i32): i32 {
  return <i32>load<u8>(GROUPS + <usize>k);
}
