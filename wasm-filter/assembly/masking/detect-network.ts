// Network identifiers: IPv4 and IPv6 addresses, and the password inside a URL's userinfo or a JDBC thin string.
import { byteAt, C_ALNUM, cls, isAlnum, isDigit, isHex, keywordAt, MATCH, NEED, NONE } from "./bytes";
import { IP_ADDRESS, URL_CREDENTIALS } from "./entities";
import { found, keepFrom } from "./found";

// ---------------------------------------------------------------- IP_ADDRESS

/**
 * Dotted-decimal IPv4 (RFC 791 notation as inet_pton reads it): four decimal octets 0–255 without leading zeros,
 * not part of a longer dotted number (`1.2.3.4.5`, a version such as `v1.2.3.4`).
 */
export function detectIpv4(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i >= 1 && byteAt(p, i - 1) == 0x2e && isDigit(byteAt(p, i - 2))) return NONE;
  const e = ipv4End(p, len, i, final);
  if (e == -2) return final ? NONE : NEED;
  if (e < 0) return NONE;
  if (e < len) {
    const c = byteAt(p, e);
    if (isAlnum(c)) return NONE;
    if (c == 0x2e) {
      if (e + 1 >= len) {
        if (!final) return NEED;
      } else if (isDigit(byteAt(p, e + 1))) return NONE;
    }
  } else if (!final) return NEED;
  found(i, e, IP_ADDRESS);
  return MATCH;
}

/** The end of four dotted octets at i; -1 if there are none, -2 if the data ends first. */
function ipv4End(p: usize, len: i32, i: i32, final: bool): i32 {
  let j = i;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (j >= len) return final ? -1 : -2;
      if (byteAt(p, j) != 0x2e) return -1;
      j++;
    }
    const s = j;
    let v = 0;
    while (j < len && isDigit(byteAt(p, j)) && j - s < 4) {
      v = v * 10 + <i32>(byteAt(p, j) - 0x30);
      j++;
    }
    if (j >= len && !final && (octet < 3 || j - s < 3)) return -2;
    const n = j - s;
    if (n == 0 || n > 3 || v > 255 || (n > 1 && byteAt(p, s) == 0x30)) return -1;
  }
  return j;
}

/**
 * IPv6 text form (RFC 4291 §2.2): up to eight groups of 1–4 hex digits, at most one `::`, optionally ending in a
 * dotted IPv4 address. Found at a ':' (i), starting from the group before it. Not reported without a digit in it
 * (`dead::beef`, `a::b` in C++) or as a time (`12:30:45`) or a MAC address (six groups).
 */
export function detectIpv6(p: usize, len: i32, i: i32, floor: i32, final: bool): i32 {
  let s = i;
  while (s > floor && i - s < 4 && isHex(byteAt(p, s - 1))) s--;
  if (s == i && i + 1 < len && byteAt(p, i + 1) != 0x3a) return NONE; // a lone ':' after no group
  const before = byteAt(p, s - 1);
  if (isAlnum(before) || before == 0x3a || before == 0x2e) return NONE;
  keepFrom(s);
  let j = s;
  let groups = 0;
  let gap = false;
  let digit = false;
  let end = -1;
  while (true) {
    if (j >= len) return final ? finishIpv6(s, end, groups, gap, digit) : NEED;
    const c = byteAt(p, j);
    if (c == 0x3a) {
      if (j + 1 >= len) return final ? finishIpv6(s, end, groups, gap, digit) : NEED;
      if (byteAt(p, j + 1) == 0x3a) {
        if (gap) return NONE;
        gap = true;
        j += 2;
        end = j;
        continue;
      }
      if (groups == 0 || j == s) return NONE;
      j++;
      continue;
    }
    // A group, or the dotted IPv4 tail.
    const g = j;
    while (j < len && isHex(byteAt(p, j)) && j - g < 5) {
      if (isDigit(byteAt(p, j))) digit = true;
      j++;
    }
    if (j >= len && !final) return NEED;
    if (j == g) break;
    if (j < len && byteAt(p, j) == 0x2e) {
      const e4 = ipv4End(p, len, g, final);
      if (e4 == -2) return final ? NONE : NEED;
      if (e4 < 0 || groups > 6) return NONE;
      groups += 2;
      end = e4;
      j = e4;
      break;
    }
    if (j - g > 4) return NONE;
    groups++;
    end = j;
    if (groups > 8) return NONE;
    if (j >= len || byteAt(p, j) != 0x3a) break;
  }
  if (end < len && end >= 0) {
    const c = byteAt(p, end);
    if ((cls(c) & C_ALNUM) != 0 || c == 0x3a) return NONE;
    if (c == 0x2e && end + 1 < len && isDigit(byteAt(p, end + 1))) return NONE;
  }
  return finishIpv6(s, end, groups, gap, digit);
}

function finishIpv6(s: i32, end: i32, groups: i32, gap: bool, digit: bool): i32 {
  if (end <= s || !digit) return NONE;
  if (gap ? groups > 7 : groups != 8) return NONE;
  found(s, end, IP_ADDRESS);
  return MATCH;
}

// ---------------------------------------------------------------- URL_CREDENTIALS

/** Longest authority (userinfo@host:port) read; anything longer is not a URL a person or program wrote. */
const AUTHORITY_MAX: i32 = 1024;

/**
 * At the ':' of `scheme://user:password@host` (RFC 3986 userinfo; postgres, mysql, redis, amqp, mongodb+srv, JDBC
 * URLs and any other scheme): the password, from the first ':' of the userinfo to its last '@'. Also the
 * `user/password@` of an Oracle JDBC thin string (`jdbc:oracle:thin:scott/tiger@//host/svc`).
 */
export function detectUrlCredentials(p: usize, len: i32, i: i32, floor: i32, final: bool): i32 {
  if (i + 1 < len && byteAt(p, i + 1) != 0x2f && (i < 4 || (byteAt(p, i - 1) | 0x20) != 0x6e)) return NONE; // "//", "thin"
  let s = i;
  while (s > floor && i - s < 32 && isSchemeByte(byteAt(p, s - 1))) s--;
  if (s == i) return NONE;
  const thin = i - s >= 4 && keywordAt(p, len, i - 4, "thin", true) == MATCH;
  if (!thin && i + 1 < len && byteAt(p, i + 1) != 0x2f) return NONE;
  keepFrom(s);
  if (i + 2 >= len) return final ? NONE : NEED;
  if (byteAt(p, i + 1) != 0x2f || byteAt(p, i + 2) != 0x2f) {
    if (!thin) return NONE;
    return userinfo(p, len, i + 1, 0x2f, final);
  }
  return userinfo(p, len, i + 3, 0x3a, final);
}

function isSchemeByte(c: u32): bool {
  return (cls(c) & C_ALNUM) != 0 || c == 0x2b || c == 0x2e || c == 0x2d;
}

/** The userinfo from `from` to the authority's last '@'; the password follows the first `split` byte. */
function userinfo(p: usize, len: i32, from: i32, split: u32, final: bool): i32 {
  let j = from;
  let at = -1;
  while (true) {
    if (j >= len) {
      if (!final) return NEED;
      break;
    }
    const c = byteAt(p, j);
    if (c == 0x40) at = j;
    else if (c <= 0x20 || c == 0x2f && split != 0x2f || c == 0x3f || c == 0x23 || c == 0x22 || c == 0x27 ||
      c == 0x3c || c == 0x3e || c == 0x5c || c == 0x60 || c == 0x7b || c == 0x7d) break;
    if (c == 0x2f && split == 0x2f && at >= 0) break;
    j++;
    if (j - from > AUTHORITY_MAX) return NONE;
  }
  if (at < 0) return NONE;
  let k = from;
  while (k < at && byteAt(p, k) != split) k++;
  if (k + 1 >= at) return NONE;
  found(k + 1, at, URL_CREDENTIALS);
  return MATCH;
}
