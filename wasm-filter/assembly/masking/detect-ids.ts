// National identifiers that are not plain digit runs: UK National Insurance numbers, and US passport and ABA routing
// numbers, which are reported only after their keyword (nine digits alone are too common to be either).
import { byteAt, C_UPPER, cls, isAlnum, isDigit, keywordAt, MATCH, NEED, NONE, SCRATCH } from "./bytes";
import { ABA_ROUTING_NUMBER, UK_NINO, US_PASSPORT } from "./entities";
import { found } from "./found";

// ---------------------------------------------------------------- UK_NINO

/**
 * HMRC's National Insurance number: two prefix letters, six digits (optionally in pairs separated by single
 * spaces), suffix A–D. The first letter is never D, F, I, Q, U or V, the second never D, F, I, O, Q, U or V, and
 * BG, GB, KN, NK, NT, TN and ZZ are never allocated.
 */
export function detectNino(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i + 1 >= len) return final ? NONE : NEED;
  const a = byteAt(p, i);
  const b = byteAt(p, i + 1);
  if ((cls(b) & C_UPPER) == 0 || !ninoPrefix(a, b)) return NONE;
  let j = i + 2;
  let spaced = false;
  for (let k = 0; k < 6; k++) {
    if (j >= len) return final ? NONE : NEED;
    if ((k & 1) == 0 && byteAt(p, j) == 0x20 && (k == 0 || spaced)) {
      if (k == 0) spaced = true;
      j++;
      if (j >= len) return final ? NONE : NEED;
    } else if ((k & 1) == 0 && spaced) return NONE;
    if (!isDigit(byteAt(p, j))) return NONE;
    j++;
  }
  if (j >= len) return final ? NONE : NEED;
  if (spaced && byteAt(p, j) == 0x20) j++;
  if (j >= len) return final ? NONE : NEED;
  const s = byteAt(p, j);
  if (s < 0x41 || s > 0x44) return NONE;
  j++;
  if (j < len) {
    if (isAlnum(byteAt(p, j))) return NONE;
  } else if (!final) return NEED;
  found(i, j, UK_NINO);
  return MATCH;
}

function ninoPrefix(a: u32, b: u32): bool {
  if (a == 0x44 || a == 0x46 || a == 0x49 || a == 0x51 || a == 0x55 || a == 0x56) return false;
  if (b == 0x44 || b == 0x46 || b == 0x49 || b == 0x4f || b == 0x51 || b == 0x55 || b == 0x56) return false;
  const pair = (a << 8) | b;
  return pair != 0x4247 && pair != 0x4742 && pair != 0x4b4e && pair != 0x4e4b && pair != 0x4e54 && pair != 0x544e &&
    pair != 0x5a5a;
}

function d(k: i32): i32 {
  return <i32>load<u8>(SCRATCH + <usize>k);
}

// ---------------------------------------------------------------- keyword, then value

/**
 * After a keyword at i (n bytes, any case, the rest of a key such as `_number` or `Number` allowed): skips what
 * people write between a label and its value — blanks, ':', '=', '#', quotes, '.', and the words no, nr, num,
 * number, is — and returns where the value starts; -1 if something else comes first, -2 if the data ends first.
 */
function valueAfterKeyword(p: usize, len: i32, i: i32, n: i32): i32 {
  let j = i + n;
  const keyEnd = j + 16;
  while (j < len && j < keyEnd && (isAlnum(byteAt(p, j)) && !isDigit(byteAt(p, j)) || byteAt(p, j) == 0x5f)) j++;
  const stop = j + 32;
  while (j < stop) {
    if (j >= len) return -2;
    const c = byteAt(p, j);
    if (c == 0x20 || c == 0x09 || c == 0x3a || c == 0x3d || c == 0x23 || c == 0x22 || c == 0x27 || c == 0x2e ||
      c == 0x5c) {
      j++;
      continue;
    }
    if (isDigit(c) || (cls(c) & C_UPPER) != 0 && j + 1 < len && isDigit(byteAt(p, j + 1))) return j;
    // A filler word.
    let w = j;
    while (w < len && isAlnum(byteAt(p, w)) && !isDigit(byteAt(p, w))) w++;
    if (w >= len) return -2;
    const n2 = w - j;
    if (!(n2 == 2 && (keywordAt(p, len, j, "no", true) == MATCH || keywordAt(p, len, j, "nr", true) == MATCH ||
        keywordAt(p, len, j, "is", true) == MATCH) ||
      n2 == 3 && keywordAt(p, len, j, "num", true) == MATCH ||
      n2 == 6 && keywordAt(p, len, j, "number", true) == MATCH)) return -1;
    j = w;
  }
  return -1;
}

/**
 * `passport` followed by a US passport number: nine digits, or one letter and eight digits (the Next Generation
 * passport). Nine digits without the keyword are not reported.
 */
export function detectPassport(p: usize, len: i32, i: i32, final: bool): i32 {
  const r = keywordAt(p, len, i, "passport", final);
  if (r != MATCH) return r;
  const v = valueAfterKeyword(p, len, i, 8);
  if (v == -2) return final ? NONE : NEED;
  if (v < 0) return NONE;
  let j = v;
  if ((cls(byteAt(p, j)) & C_UPPER) != 0) j++;
  const digits = j;
  while (j < len && isDigit(byteAt(p, j))) j++;
  if (j >= len && !final) return NEED;
  const n = j - digits;
  if (n != (digits == v ? 9 : 8)) return NONE;
  if (j < len && isAlnum(byteAt(p, j))) return NONE;
  found(v, j, US_PASSPORT);
  return MATCH;
}

/**
 * `routing`, `aba` or `rtn` followed by an ABA routing transit number: nine digits (or 4-4-1 with dashes) whose
 * first two are 00–12, 21–32, 61–72 or 80, with the ABA check 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 mod 10.
 */
export function detectRouting(p: usize, len: i32, i: i32, final: bool): i32 {
  let n = 0;
  let r = keywordAt(p, len, i, "routing", final);
  if (r == MATCH) n = 7;
  else if (r == NEED) return NEED;
  else {
    r = keywordAt(p, len, i, "aba", final);
    if (r == NONE) r = keywordAt(p, len, i, "rtn", final);
    if (r != MATCH) return r;
    n = 3;
    // "abandon", "rtnl": only the whole word (or a key such as aba_number).
    if (i + 3 < len && isAlnum(byteAt(p, i + 3))) return NONE;
  }
  const v = valueAfterKeyword(p, len, i, n);
  if (v == -2) return final ? NONE : NEED;
  if (v < 0) return NONE;
  let j = v;
  let k = 0;
  while (k < 9) {
    if (j >= len) return final ? NONE : NEED;
    const c = byteAt(p, j);
    if (c == 0x2d && (k == 4 || k == 8)) {
      j++;
      continue;
    }
    if (!isDigit(c)) return NONE;
    store<u8>(SCRATCH + <usize>k, <u8>(c - 0x30));
    k++;
    j++;
  }
  if (j < len) {
    if (isAlnum(byteAt(p, j)) || byteAt(p, j) == 0x2d) return NONE;
  } else if (!final) return NEED;
  const head = d(0) * 10 + d(1);
  if (!(head <= 12 || (head >= 21 && head <= 32) || (head >= 61 && head <= 72) || head == 80)) return NONE;
  const sum = 3 * (d(0) + d(3) + d(6)) + 7 * (d(1) + d(4) + d(7)) + d(2) + d(5) + d(8);
  if (sum % 10 != 0) return NONE;
  found(v, j, ABA_ROUTING_NUMBER);
  return MATCH;
}
