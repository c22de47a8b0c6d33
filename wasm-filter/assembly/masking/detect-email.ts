// EMAIL_ADDRESS: found at '@'. The local part is read backwards (1–64 atext/'.' bytes, no leading, trailing or
// doubled dot), never into bytes already masked or already sent (the scanner keeps a trailing run of local-part
// bytes in the carry so a split address is seen whole). The domain has at least two labels of letters, digits and
// inner hyphens (RFC 5321), or UTF-8 (internationalised, RFC 5890/6531) and a top-level label of at least two letters
// or an A-label (`xn--…`, punycode).
import { byteAt, C_ALNUM, C_LOCAL, C_LOWER, C_UPPER, cls, keywordAt, MATCH, NEED, NONE, prevByte } from "./bytes";
import { EMAIL_ADDRESS } from "./entities";
import { found } from "./found";

export function detectEmail(p: usize, len: i32, at: i32, floor: i32, final: bool): i32 {
  let s = at;
  while (s > floor && (cls(byteAt(p, s - 1)) & C_LOCAL) != 0) {
    s--;
    if (at - s > 64) return NONE;
  }
  if (s == at) return NONE;
  // The local part must start here, not continue from bytes before the floor.
  if ((cls(prevByte(p, s)) & C_LOCAL) != 0) return NONE;
  if (byteAt(p, s) == 0x2e || byteAt(p, at - 1) == 0x2e) return NONE;
  for (let k = s + 1; k < at; k++) if (byteAt(p, k) == 0x2e && byteAt(p, k - 1) == 0x2e) return NONE;

  // Domain: labels separated by single dots; a dot counts only when a label character follows it.
  let j = at + 1;
  let labels = 0;
  let labelStart = j;
  while (true) {
    labelStart = j;
    while (j < len) {
      const c = byteAt(p, j);
      if ((cls(c) & C_ALNUM) != 0 || c == 0x2d) j++;
      else if (c >= 0x80) {
        // An internationalised label (RFC 5890 U-label): UTF-8 bytes count when the label goes on after them.
        let k = j;
        while (k < len && byteAt(p, k) >= 0x80) k++;
        if (!final && (k >= len || (k + 1 >= len && byteAt(p, k) == 0x2e))) return needMore(s);
        if (k >= len || !labelGoesOn(p, len, k)) break;
        j = k;
      } else break;
      if (j - at > 254) return NONE;
    }
    if (j >= len && !final) return needMore(s);
    const n = j - labelStart;
    if (n == 0 || n > 63 || byteAt(p, labelStart) == 0x2d || byteAt(p, j - 1) == 0x2d) return NONE;
    labels++;
    if (j < len && byteAt(p, j) == 0x2e) {
      if (j + 1 >= len) {
        if (!final) return needMore(s);
        break;
      }
      if ((cls(byteAt(p, j + 1)) & C_ALNUM) != 0) {
        j++;
        continue;
      }
    }
    break;
  }
  if (labels < 2 || j - labelStart < 2) return NONE;
  if (!tldOk(p, len, labelStart, j)) return NONE;
  found(s, j, EMAIL_ADDRESS);
  return MATCH;
}

/** After a run of UTF-8 bytes inside a domain label: a letter, digit, hyphen, or a dot followed by one. */
function labelGoesOn(p: usize, len: i32, k: i32): bool {
  const c = byteAt(p, k);
  if ((cls(c) & C_ALNUM) != 0 || c == 0x2d) return true;
  return c == 0x2e && k + 1 < len && (cls(byteAt(p, k + 1)) & C_ALNUM) != 0;
}

/** The top-level label: ASCII letters only, or an A-label (`xn--` punycode, RFC 5890) of letters, digits, hyphens. */
function tldOk(p: usize, len: i32, s: i32, e: i32): bool {
  if (e - s > 4 && keywordAt(p, len, s, "xn--", true) == MATCH) {
    for (let k = s + 4; k < e; k++) if (byteAt(p, k) >= 0x80) return false;
    return true;
  }
  for (let k = s; k < e; k++) if ((cls(byteAt(p, k)) & (C_UPPER | C_LOWER)) == 0) return false;
  return true;
}

function needMore(start: i32): i32 {
  found(start, start, EMAIL_ADDRESS);
  return NEED;
}
