// Secret detectors: JWT, AWS access key ids, PEM private keys, bearer and Authorization credentials, passwords in
// key/value text. A detector that has recognised its prefix and runs out of bytes records where the value starts and
// how it continues (`continues`), so a stream can fail closed when the value outgrows the carry-over cap.
import {
  byteAt, C_ALNUM, C_B64URL, C_DIGIT, C_SPACE, C_TOKEN, C_UPPER, cls, isAlnum, keywordAt, MATCH, NEED, NONE, SCRATCH,
  SCRATCH_SIZE,
} from "./bytes";
import { AWS_ACCESS_KEY, AWS_SECRET_KEY, BEARER_TOKEN, JWT, PASSWORD, PRIVATE_KEY } from "./entities";
import { CONT_NONE, CONT_PEM, CONT_RUN, continues, found, keepFrom } from "./found";

function needValue(start: i32, len: i32, entity: i32, kind: i32, runClass: u8): i32 {
  found(start, len, entity);
  continues(kind, runClass);
  return NEED;
}

function clear(): void {
  continues(CONT_NONE, 0);
}

// ---------------------------------------------------------------- JWT

/**
 * Three base64url segments separated by dots (the signature may be empty: unsecured JWTs), not inside a longer
 * base64 run; the header must decode to a JSON object that has an "alg" member.
 */
export function detectJwt(p: usize, len: i32, i: i32, final: bool): i32 {
  clear();
  const r = keywordAt(p, len, i, "eyj", final);
  if (r != MATCH || byteAt(p, i + 1) != 0x79 || byteAt(p, i + 2) != 0x4a) return r == NEED ? NEED : NONE; // "eyJ"
  let j = i;
  let dots = 0;
  let headerEnd = -1;
  let segment = 0;
  while (true) {
    if (j >= len) {
      if (final) break;
      if (headerEnd >= 0) return needValue(i, len, JWT, CONT_RUN, C_TOKEN);
      return NEED;
    }
    const c = byteAt(p, j);
    if ((cls(c) & C_B64URL) != 0) {
      segment++;
      j++;
      continue;
    }
    if (c == 0x2e && dots < 2) {
      if (segment == 0) return NONE;
      if (dots == 0) {
        headerEnd = j;
        if (!headerIsJson(p, i, j)) return NONE;
      }
      dots++;
      segment = 0;
      j++;
      continue;
    }
    break;
  }
  if (dots < 2 || headerEnd - i < 10) return NONE;
  if (j < len && (byteAt(p, j) == 0x2e || byteAt(p, j) == 0x3d)) return NONE;
  found(i, j, JWT);
  return MATCH;
}

function b64val(c: u32): i32 {
  if (c - 0x41 < 26) return <i32>(c - 0x41);
  if (c - 0x61 < 26) return <i32>(c - 0x61) + 26;
  if (c - 0x30 < 10) return <i32>(c - 0x30) + 52;
  if (c == 0x2d || c == 0x2b) return 62;
  return 63; // '_' or '/'
}

/** Decodes (at most the first 1 KiB of) the header segment and looks for `{ … "alg" …`. */
function headerIsJson(p: usize, s: i32, e: i32): bool {
  let n = 0;
  let acc: u32 = 0;
  let bits = 0;
  const stop = e - s > SCRATCH_SIZE ? s + SCRATCH_SIZE : e;
  for (let k = s; k < stop; k++) {
    acc = (acc << 6) | <u32>b64val(byteAt(p, k));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(SCRATCH + <usize>n, <u8>(acc >> <u32>bits));
      n++;
    }
  }
  let k = 0;
  while (k < n && (cls(load<u8>(SCRATCH + <usize>k)) & C_SPACE) != 0) k++;
  if (k >= n || load<u8>(SCRATCH + <usize>k) != 0x7b) return false;
  for (; k + 5 <= n; k++) {
    if (load<u8>(SCRATCH + <usize>k) == 0x22 && keywordAt(SCRATCH, n, k + 1, "alg\"", true) == MATCH) return true;
  }
  return false;
}

// ---------------------------------------------------------------- AWS_ACCESS_KEY

/** `AKIA` (long-term) or `ASIA` (temporary) followed by 16 upper-case letters or digits, standing alone. */
export function detectAwsKey(p: usize, len: i32, i: i32, final: bool): i32 {
  for (let k = 0; k < 21; k++) {
    if (i + k >= len) {
      if (k == 20 && final) break;
      return final ? NONE : NEED;
    }
    const c = byteAt(p, i + k);
    if (k == 20) {
      if (isAlnum(c)) return NONE;
      break;
    }
    if (k == 1 && c != 0x4b && c != 0x53) return NONE; // K or S
    if (k == 2 && c != 0x49) return NONE; // I
    if (k == 3 && c != 0x41) return NONE; // A
    if ((cls(c) & (C_UPPER | C_DIGIT)) == 0) return NONE;
  }
  found(i, i + 20, AWS_ACCESS_KEY);
  return MATCH;
}

// ---------------------------------------------------------------- PRIVATE_KEY

/**
 * A PEM block whose label ends in `PRIVATE KEY` (PKCS#1, PKCS#8, SEC1, encrypted, OpenSSH), from its BEGIN line to
 * the end of its END line. A block without an END line is masked to the end of the data (fail closed).
 */
export function detectPem(p: usize, len: i32, i: i32, final: bool): i32 {
  clear();
  const r = keywordAt(p, len, i, "-----begin ", final);
  if (r != MATCH) return r;
  let j = i + 11;
  const labelStart = j;
  while (true) {
    if (j >= len) return final ? NONE : NEED;
    const c = byteAt(p, j);
    if ((cls(c) & C_UPPER) != 0 || c == 0x20) {
      j++;
      if (j - labelStart > 40) return NONE;
      continue;
    }
    break;
  }
  if (j - labelStart < 11 || keywordAt(p, len, j - 11, "private key", true) != MATCH) return NONE;
  const dashes = keywordAt(p, len, j, "-----", final);
  if (dashes != MATCH) return dashes;
  const end = pemEnd(p, len, j + 5);
  if (end >= 0) {
    found(i, end, PRIVATE_KEY);
    return MATCH;
  }
  if (final) {
    found(i, len, PRIVATE_KEY);
    return MATCH;
  }
  return needValue(i, len, PRIVATE_KEY, CONT_PEM, 0);
}

/** The end of the first complete `-----END <label>-----` at or after `from`, or -1. */
export function pemEnd(p: usize, len: i32, from: i32): i32 {
  for (let j = from; j + 9 <= len; j++) {
    if (byteAt(p, j) != 0x2d || keywordAt(p, len, j, "-----end ", true) != MATCH) continue;
    let k = j + 9;
    while (k < len && ((cls(byteAt(p, k)) & C_UPPER) != 0 || byteAt(p, k) == 0x20) && k - j < 60) k++;
    if (keywordAt(p, len, k, "-----", true) == MATCH) return k + 5;
  }
  return -1;
}

// ---------------------------------------------------------------- BEARER_TOKEN

/**
 * `Bearer <token>` (any case): the token is masked when it is at least 16 characters, or at least 8 with a digit or
 * a token symbol, so prose such as "bearer authentication" is left alone.
 */
export function detectBearer(p: usize, len: i32, i: i32, final: bool): i32 {
  clear();
  const r = keywordAt(p, len, i, "bearer", final);
  if (r != MATCH) return r;
  let j = i + 6;
  if (j >= len) return final ? NONE : NEED;
  if (byteAt(p, j) != 0x20 && byteAt(p, j) != 0x09) return NONE;
  while (j < len && (byteAt(p, j) == 0x20 || byteAt(p, j) == 0x09)) j++;
  if (j >= len) return final ? NONE : NEED;
  const s = j;
  while (j < len && (cls(byteAt(p, j)) & C_TOKEN) != 0) j++;
  if (j >= len && !final) return needValue(s, len, BEARER_TOKEN, CONT_RUN, C_TOKEN);
  if (!tokenLike(p, s, j)) return NONE;
  found(s, j, BEARER_TOKEN);
  return MATCH;
}

/**
 * `Authorization: <scheme> <credentials>` or `authorization=<credentials>` as header text, JSON or YAML: the
 * credentials after a known scheme (Bearer, Basic, token, Digest…), or a schemeless value that looks like a token.
 */
export function detectAuthorization(p: usize, len: i32, i: i32, final: bool): i32 {
  clear();
  const r = keywordAt(p, len, i, "authorization", final);
  if (r != MATCH) return r;
  let j = skipSeparator(p, len, i + 13);
  if (j < 0) return j == -2 && !final ? NEED : NONE;
  const s1 = j;
  while (j < len && (cls(byteAt(p, j)) & C_TOKEN) != 0) j++;
  if (j >= len && !final) return needValue(s1, len, BEARER_TOKEN, CONT_RUN, C_TOKEN);
  if (j == s1) return NONE;
  if (j < len && byteAt(p, j) == 0x20 && isScheme(p, len, s1, j)) {
    const s2 = j + 1;
    let k = s2;
    while (k < len && (cls(byteAt(p, k)) & C_TOKEN) != 0) k++;
    if (k >= len && !final) return needValue(s2, len, BEARER_TOKEN, CONT_RUN, C_TOKEN);
    if (k == s2) return NONE;
    found(s2, k, BEARER_TOKEN);
    return MATCH;
  }
  // No known scheme: the value itself is the credential, if it looks like one (see detectBearer) and is not code.
  if (!tokenLike(p, s1, j) || (valueQuote == 0 && codeValue(p, len, s1, j))) return NONE;
  found(s1, j, BEARER_TOKEN);
  return MATCH;
}

/** Authentication schemes (IANA registry and common API ones) followed by credentials. */
function isScheme(p: usize, len: i32, s: i32, e: i32): bool {
  const n = e - s;
  if (n == 5) return keywordAt(p, len, s, "basic", true) == MATCH || keywordAt(p, len, s, "token", true) == MATCH;
  if (n == 6) return keywordAt(p, len, s, "bearer", true) == MATCH || keywordAt(p, len, s, "digest", true) == MATCH ||
    keywordAt(p, len, s, "apikey", true) == MATCH;
  if (n == 9) return keywordAt(p, len, s, "negotiate", true) == MATCH;
  if (n == 4) return keywordAt(p, len, s, "ntlm", true) == MATCH || keywordAt(p, len, s, "dpop", true) == MATCH;
  if (n == 16) return keywordAt(p, len, s, "aws4-hmac-sha256", true) == MATCH;
  return false;
}

/**
 * At least 16 token characters, or at least 8 with a digit; a dot at the end is the sentence's ("the bearer
 * rollback.") and does not count.
 */
function tokenLike(p: usize, s: i32, e: i32): bool {
  while (e > s && byteAt(p, e - 1) == 0x2e) e--;
  const n = e - s;
  if (n >= 16) return true;
  if (n < 8) return false;
  for (let k = s; k < e; k++) if ((cls(byteAt(p, k)) & C_DIGIT) != 0) return true;
  return false;
}

/** The quote that opened the value skipSeparator found (0 if none), and whether it was escaped (`\"`). */
let valueQuote: u32 = 0;
let valueEscaped = false;

/**
 * After a key: an optional closing quote (or `\"` inside an escaped JSON string), blanks, ':' or '=', blanks and an
 * optional opening quote. Returns the position of the value, -1 if no separator, -2 if the data ended first.
 */
function skipSeparator(p: usize, len: i32, from: i32): i32 {
  let j = from;
  if (j < len && byteAt(p, j) == 0x5c) j++;
  if (j < len && (byteAt(p, j) == 0x22 || byteAt(p, j) == 0x27)) j++;
  while (j < len && (byteAt(p, j) == 0x20 || byteAt(p, j) == 0x09)) j++;
  if (j >= len) return -2;
  const sep = byteAt(p, j);
  if (sep != 0x3a && sep != 0x3d) return -1;
  j++;
  if (j < len && byteAt(p, j) == 0x3d) return -1; // "==": a comparison, not an assignment
  if (sep == 0x3a && j < len && byteAt(p, j) == 0x3a) return -1; // "::": a C++ or Rust path, not a value
  while (j < len && (byteAt(p, j) == 0x20 || byteAt(p, j) == 0x09)) j++;
  if (j >= len) return -2;
  valueQuote = 0;
  valueEscaped = false;
  if (byteAt(p, j) == 0x5c && j + 1 >= len) return -2;
  if (byteAt(p, j) == 0x5c && byteAt(p, j + 1) == 0x22) {
    valueEscaped = true;
    j++;
  }
  const q = byteAt(p, j);
  if (q == 0x22 || q == 0x27) {
    valueQuote = q;
    j++;
  }
  if (j >= len) return -2;
  return j;
}

// ---------------------------------------------------------------- PASSWORD

/**
 * A value assigned to a key that names a password: `password`, `passwd`, `passphrase` anywhere in the key
 * (`PGPASSWORD`, `db_password`, `userPassword`), or a key that is exactly `pwd` or `pass`; separated by ':' or '='
 * (YAML, JSON, env, URL query, CLI flags). The value is the quoted string, or the bytes up to a blank or a
 * delimiter; empty values and `null` are left alone.
 */
export function detectPassword(p: usize, len: i32, i: i32, final: bool): i32 {
  clear();
  let j = -1;
  let r = keywordAt(p, len, i, "password", final);
  if (r == MATCH) j = i + 8;
  if (r == NEED) return NEED;
  if (j < 0) {
    r = keywordAt(p, len, i, "passwd", final);
    if (r == MATCH) j = i + 6;
    if (r == NEED) return NEED;
  }
  if (j < 0) {
    r = keywordAt(p, len, i, "passphrase", final);
    if (r == MATCH) j = i + 10;
    if (r == NEED) return NEED;
  }
  if (j < 0) {
    // Short names only as whole words.
    const prev = <u32>load<u8>(p + <usize>i - 1);
    if ((cls(prev) & (C_ALNUM & ~C_DIGIT)) != 0) return NONE;
    r = keywordAt(p, len, i, "pwd", final);
    if (r == MATCH) j = i + 3;
    else {
      if (r == NEED) return NEED;
      r = keywordAt(p, len, i, "pass", final);
      if (r != MATCH) return r;
      j = i + 4;
    }
    if (j >= len) return final ? NONE : NEED;
    if ((cls(byteAt(p, j)) & (C_ALNUM & ~C_DIGIT)) != 0) return NONE;
  }
  // The rest of the key.
  const keyEnd = j + 64;
  while (j < len && j < keyEnd) {
    const c = byteAt(p, j);
    if ((cls(c) & C_ALNUM) == 0 && c != 0x5f && c != 0x2d && c != 0x2e) break;
    j++;
  }
  const v = skipSeparator(p, len, j);
  if (v < 0) return v == -2 && !final ? NEED : NONE;
  const q = valueQuote;
  let e = v;
  if (q != 0) {
    while (true) {
      if (e >= len) {
        if (!final) return needValue(v, len, PASSWORD, CONT_RUN, C_TOKEN);
        return NONE;
      }
      const c = byteAt(p, e);
      if (c == 0x0a || c == 0x0d) return NONE;
      if (c == 0x5c) {
        // An escaped quote closes a value that was opened by one (JSON inside a JSON string).
        if (valueEscaped && e + 1 < len && byteAt(p, e + 1) == q) break;
        e += 2;
        continue;
      }
      if (c == q) break;
      e++;
    }
    if (e > len) e = len;
  } else {
    while (e < len && !isDelimiter(byteAt(p, e))) e++;
    if (e >= len && !final) return needValue(v, len, PASSWORD, CONT_RUN, C_TOKEN);
  }
  if (e == v) return NONE;
  if (q == 0 && codeValue(p, len, v, e)) return NONE;
  found(v, e, PASSWORD);
  return MATCH;
}

/**
 * An unquoted value that is code, not a secret: a null or boolean literal, `await`/`new` (the value is an
 * expression), a type name (`password: string`), a member of self/this, or a query placeholder (`$1`, `?`, `%s`,
 * `:name`).
 */
function codeValue(p: usize, len: i32, v: i32, e: i32): bool {
  const n = e - v;
  const c = byteAt(p, v);
  if (c == 0x3f || c == 0x25 || c == 0x3a || (c == 0x24 && n > 1 && byteAt(p, v + 1) - 0x30 < 10)) return true;
  if (n > 5 && (keywordAt(p, len, v, "self.", true) == MATCH || keywordAt(p, len, v, "this.", true) == MATCH)) {
    return true;
  }
  return isWord(p, len, v, n, "null") || isWord(p, len, v, n, "none") || isWord(p, len, v, n, "nil") ||
    isWord(p, len, v, n, "true") || isWord(p, len, v, n, "false") || isWord(p, len, v, n, "undefined") ||
    isWord(p, len, v, n, "await") || isWord(p, len, v, n, "new") || isWord(p, len, v, n, "string") ||
    isWord(p, len, v, n, "str") || isWord(p, len, v, n, "number") || isWord(p, len, v, n, "int") ||
    isWord(p, len, v, n, "bool") || isWord(p, len, v, n, "boolean") || isWord(p, len, v, n, "bytes") ||
    isWord(p, len, v, n, "any") || isWord(p, len, v, n, "unknown") || isWord(p, len, v, n, "object");
}

function isWord(p: usize, len: i32, v: i32, n: i32, word: string): bool {
  return n == word.length && keywordAt(p, len, v, word, true) == MATCH;
}

function isDelimiter(c: u32): bool {
  return (cls(c) & C_SPACE) != 0 || c == 0x2c || c == 0x3b || c == 0x26 || c == 0x22 || c == 0x27 || c == 0x7d ||
    c == 0x29 || c == 0x5d || c == 0x3c || c == 0x3e || c == 0x5c;
}

// ---------------------------------------------------------------- keys read back from ':' or '='

/**
 * At a ':' or '=' (i): reads the key before it (blanks, a closing quote or `\"`, then up to 64 key characters) and
 * reports what that key names: a password whose name starts inside the key (`PGPASSWORD`, `userPassword`; keys that
 * start with it were tried at their word start), or an AWS secret access key.
 */
export function detectAfterKey(
  p: usize, len: i32, i: i32, floor: i32, password: bool, awsSecret: bool, final: bool,
): i32 {
  // Never into bytes already masked (floor): a stream may have sent them, and both must decide alike.
  let k = i;
  while (k > floor && i - k < 4 && (byteAt(p, k - 1) == 0x20 || byteAt(p, k - 1) == 0x09)) k--;
  if (k > floor && (byteAt(p, k - 1) == 0x22 || byteAt(p, k - 1) == 0x27)) k--;
  if (k > floor && byteAt(p, k - 1) == 0x5c) k--;
  const ke = k;
  // Most keys (`"id"`, `ok`, `12:30`) hold neither a 'p' nor an 's' and are dismissed as soon as they are read.
  let ps = false;
  while (k > floor && ke - k < 64) {
    const c = byteAt(p, k - 1);
    if (!isKeyByte(c)) break;
    const lower = c | 0x20;
    ps = ps || lower == 0x70 || lower == 0x73;
    k--;
  }
  const ks = k;
  if (!ps) return NONE;
  if (password) {
    // From ks: at the start of the data the key may continue a word of the previous chunk (lookbehind).
    for (let q = ks; q < ke; q++) {
      const c = byteAt(p, q) | 0x20;
      if (c != 0x70 || !isAlnum(byteAt(p, q - 1))) continue;
      const r = detectPassword(p, len, q, final);
      if (r == MATCH) return r;
      if (r == NEED) {
        keepFrom(q);
        return r;
      }
    }
  }
  if (awsSecret && keyHas(p, len, ks, ke, "secret") && (keyHas(p, len, ks, ke, "access") || keyHas(p, len, ks, ke, "aws"))) {
    keepFrom(ks);
    return awsSecretValue(p, len, ke, final);
  }
  return NONE;
}

/** Whether key bytes p[s, e) name a password or a secret (what detectAfterKey looks for). */
export function namesSecret(p: usize, len: i32, s: i32, e: i32): bool {
  return keyHas(p, len, s, e, "pass") || keyHas(p, len, s, e, "pwd") || keyHas(p, len, s, e, "secret");
}

export function isKeyByte(c: u32): bool {
  return (cls(c) & C_ALNUM) != 0 || c == 0x5f || c == 0x2d || c == 0x2e;
}

function keyHas(p: usize, len: i32, s: i32, e: i32, word: string): bool {
  for (let q = s; q + word.length <= e; q++) if (keywordAt(p, len, q, word, true) == MATCH) return true;
  return false;
}

/** AWS secret access key: exactly 40 characters of the base64 alphabet, standing alone. */
function awsSecretValue(p: usize, len: i32, keyEnd: i32, final: bool): i32 {
  clear();
  const v = skipSeparator(p, len, keyEnd);
  if (v < 0) return v == -2 && !final ? NEED : NONE;
  let e = v;
  while (e < len && e - v <= 40 && isBase64(byteAt(p, e))) e++;
  if (e >= len && !final) return NEED;
  if (e - v != 40 || (e < len && byteAt(p, e) == 0x3d)) return NONE;
  found(v, e, AWS_SECRET_KEY);
  return MATCH;
}

function isBase64(c: u32): bool {
  return (cls(c) & C_ALNUM) != 0 || c == 0x2b || c == 0x2f;
}
