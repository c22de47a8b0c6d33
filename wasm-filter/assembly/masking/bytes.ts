// Byte classes and small readers shared by the detectors.
// Everything here reads linear memory with raw loads: the callers guarantee indices are inside the pending buffer
// (or at -1, the one-byte lookbehind kept before it), so no bounds-checked (aborting) operation is ever used.

export const C_DIGIT: u8 = 1;
export const C_UPPER: u8 = 2;
export const C_LOWER: u8 = 4;
export const C_ALNUM: u8 = 7;
/** Characters of an e-mail local part (RFC 5322 atext plus '.'). */
export const C_LOCAL: u8 = 8;
/** base64url alphabet (JWT segments). */
export const C_B64URL: u8 = 16;
/** Characters of a bearer token (RFC 6750 b64token). */
export const C_TOKEN: u8 = 32;
/** Punctuation at which some detector may start (letters and digits start detectors at word starts). */
export const C_TRIGGER: u8 = 64;
export const C_SPACE: u8 = 128;

export const CLASS: usize = memory.data(256);

function setClass(from: i32, to: i32, bits: u8): void {
  for (let c = from; c <= to; c++) store<u8>(CLASS + <usize>c, load<u8>(CLASS + <usize>c) | bits);
}
function setClassOf(chars: string, bits: u8): void {
  for (let k = 0; k < chars.length; k++) {
    const c = <usize>load<u16>(changetype<usize>(chars) + (<usize>k << 1));
    store<u8>(CLASS + c, load<u8>(CLASS + c) | bits);
  }
}

// Filled once at instantiation; the start function only touches the module's own memory (no host calls).
setClass(0x30, 0x39, C_DIGIT | C_LOCAL | C_B64URL | C_TOKEN);
setClass(0x41, 0x5a, C_UPPER | C_LOCAL | C_B64URL | C_TOKEN);
setClass(0x61, 0x7a, C_LOWER | C_LOCAL | C_B64URL | C_TOKEN);
setClassOf("!#$%&'*+/=?^_`{|}~-.", C_LOCAL);
setClassOf("-_", C_B64URL);
setClassOf("-._~+/=", C_TOKEN);
setClassOf("+(@-:=", C_TRIGGER);
setClassOf(" \t\r\n", C_SPACE);

/**
 * The word-start prefilter: bit (first byte | second byte << 8) is set when a detector may start with those two
 * bytes at the start of a word. Most words of prose, logs and code miss it and are skipped whole.
 */
const START: usize = memory.data(8192);

function markStart(a: u32, b: u32): void {
  const v = (a & 0xff) | ((b & 0xff) << 8);
  store<u8>(START + <usize>(v >> 3), <u8>(<u32>load<u8>(START + <usize>(v >> 3)) | (<u32>1 << (v & 7))));
}
/** Both letters of a case-insensitive keyword's start, in every case combination. */
function markKeyword(a: u32, b: u32): void {
  markStart(a, b);
  markStart(a - 0x20, b);
  markStart(a, b - 0x20);
  markStart(a - 0x20, b - 0x20);
}
function markExact(two: string): void {
  markStart(<u32>two.charCodeAt(0), <u32>two.charCodeAt(1));
}

// Digits: a longer number, a group and its separator, or a crypto address (1…, 3…, 0x…); a lone digit before
// anything else starts nothing. Two upper-case letters: IBAN and NINO prefixes, AKIA/ASIA, keywords in capitals.
for (let a: u32 = 0x30; a <= 0x39; a++) {
  for (let b: u32 = 0; b < 256; b++) {
    const letterOrDigit = b - 0x30 < 10 || (b | 0x20) - 0x61 < 26;
    // '@' is also the scanner's sentinel: a digit at the end of the data is tried (it may wait for more).
    if (b - 0x30 < 10 || b == 0x20 || b == 0x2d || b == 0x2e || b == 0x40 || (letterOrDigit && (a == 0x31 || a == 0x33)) ||
      (a == 0x30 && (b | 0x20) == 0x78)) markStart(a, b);
  }
}
for (let a: u32 = 0x41; a <= 0x5a; a++) for (let b: u32 = 0x41; b <= 0x5a; b++) markStart(a, b);
markKeyword(0x61, 0x75); // authorization
markKeyword(0x62, 0x65); // bearer
markKeyword(0x70, 0x61); // password, passwd, passphrase, pass, passport
markKeyword(0x70, 0x77); // pwd
markKeyword(0x72, 0x6f); // routing
markKeyword(0x61, 0x62); // aba
markKeyword(0x72, 0x74); // rtn
markKeyword(0x62, 0x63); // bc1… (bech32)
markExact("ey"); // JWT
markExact("gh"); // ghp_ gho_ ghu_ ghs_ ghr_
markExact("gi"); // github_pat_
markExact("gl"); // glpat- and other GitLab tokens
markExact("xo"); // xoxb- …
markExact("xa"); // xapp-
markExact("sk"); // sk_live_, sk-…
markExact("rk"); // rk_live_
markExact("wh"); // whsec_

/** 1 when a detector may start a word with the two bytes of `pair` (first byte in the low 8 bits), else 0. */
// @ts-ignore: decorator
@inline function startBit(pair: u32): u32 {
  return (<u32>load<u8>(START + <usize>(pair >> 3)) >> (pair & 7)) & 1;
}

/**
 * The scanner's stop table, one byte per pair of bytes (a = first, b = next; index a | b << 8): STOP_ALWAYS when a is
 * trigger punctuation (a '-' only before another '-', where a PEM line may start, or before the scanner's sentinel
 * '@', where it may start in the next chunk), STOP_AT_WORD_START when a word starting with a, b may hold a value.
 */
export const PAIR: usize = memory.data(65536);
export const STOP_AT_WORD_START: u32 = 1;
export const STOP_ALWAYS: u32 = 2;
/** PAIR's bits 2–7: the set of third bytes a word start with this pair needs (0: any; see markThird). */
export const THIRD_SHIFT: u32 = 2;

// @ts-ignore: decorator
@inline export function cls(c: u32): u8 {
  return load<u8>(CLASS + <usize>(c & 0xff));
}
for (let v: u32 = 0; v < 65536; v++) {
  const a = v & 0xff;
  let bits: u32 = startBit(v);
  const b = v >> 8;
  if ((cls(a) & C_TRIGGER) != 0 && (a != 0x2d || b == 0x2d || b == 0x40)) bits |= STOP_ALWAYS;
  store<u8>(PAIR + <usize>v, <u8>bits);
}

/**
 * Third bytes, 256 bits per set: a keyword or token prefix is also told by its third byte, so that the words of prose
 * that share its first two (`rows`, `about`, `be`, `what`, `skip`) are not stops: `routing`, `aba`, `bearer`, `whsec_`
 * and `sk_live_` are.
 */
export const THIRD: usize = memory.data(32 * 64);
let thirdSets: u32 = 0;

/** Gives the pair (a, b) third-byte set `sets` in its PAIR entry, keeping the entry's stop bits. */
function setThirdSet(a: u32, b: u32, sets: u32): void {
  const q = PAIR + <usize>(a | (b << 8));
  store<u8>(q, <u8>((<u32>load<u8>(q) & 3) | (sets << THIRD_SHIFT)));
}

/**
 * The word starts with the pair (first, second) — in every case both bytes may take for a keyword, except two capitals,
 * which are starts of their own (IBAN, NINO, AKIA) — stop only before one of `thirds` (either case).
 */
function markThird(first: u32, second: u32, thirds: string, anyCase: bool): void {
  thirdSets++;
  const set = THIRD + <usize>(thirdSets << 5);
  for (let k = 0; k < thirds.length; k++) {
    const c = <u32>thirds.charCodeAt(k);
    for (let variant = 0; variant < 2; variant++) {
      const t = variant == 0 ? c : (c - 0x61 < 26 ? c - 0x20 : c);
      store<u8>(set + <usize>(t >> 3), <u8>(<u32>load<u8>(set + <usize>(t >> 3)) | (<u32>1 << (t & 7))));
    }
  }
  const variants = anyCase ? 3 : 1;
  for (let variant = 0; variant < variants; variant++) {
    setThirdSet(variant == 1 ? first - 0x20 : first, variant == 2 ? second - 0x20 : second, thirdSets);
  }
}
markThird(0x61, 0x75, "t", true); // authorization
markThird(0x61, 0x62, "a", true); // aba
markThird(0x62, 0x65, "a", true); // bearer
markThird(0x62, 0x63, "1", true); // bc1
markThird(0x70, 0x61, "s", true); // password, passwd, passphrase, pass, passport
markThird(0x70, 0x77, "d", true); // pwd
markThird(0x72, 0x6f, "u", true); // routing
markThird(0x72, 0x74, "n", true); // rtn
markThird(0x65, 0x79, "J", false); // eyJ (JWT)
markThird(0x67, 0x68, "pousr", false); // ghp_ gho_ ghu_ ghs_ ghr_
markThird(0x67, 0x69, "t", false); // github_pat_
markThird(0x67, 0x6c, "pcodrfs", false); // glpat- glptt- glcbt- gloas- gldt- glrt- glft- glsoat-
markThird(0x78, 0x6f, "x", false); // xoxb- …
markThird(0x78, 0x61, "p", false); // xapp-
markThird(0x73, 0x6b, "_-", false); // sk_live_, sk-…
markThird(0x72, 0x6b, "_", false); // rk_live_
markThird(0x77, 0x68, "s", false); // whsec_
// Two capitals: an IBAN's check digits or a NINO's digits (its first pair may follow a space) come third, or the
// third letter of a keyword written in capitals (AUTHORIZATION, ABA, BEARER, PASSWORD, PWD, ROUTING, RTN) or of
// AKIA/ASIA (bc1 in capitals: BC1 has a digit third). `GET`, `POST`, `UTC`, `INFO` are no stops.
const DIGIT_OR_SPACE = "0123456789 ";
markThird(0x41, 0x41, DIGIT_OR_SPACE, false);
const anyCapitals = thirdSets;
for (let a: u32 = 0x41; a <= 0x5a; a++) {
  for (let b: u32 = 0x41; b <= 0x5a; b++) setThirdSet(a, b, anyCapitals);
}
// Literals rather than DIGIT_OR_SPACE + "t": a concatenation at start allocates, and brings the runtime's traps in.
markThird(0x41, 0x55, "0123456789 t", false); // AUTHORIZATION
markThird(0x41, 0x42, "0123456789 a", false); // ABA
markThird(0x41, 0x4b, "0123456789 i", false); // AKIA
markThird(0x41, 0x53, "0123456789 i", false); // ASIA
markThird(0x42, 0x45, "0123456789 a", false); // BEARER
markThird(0x50, 0x41, "0123456789 s", false); // PASSWORD, PASSWD, PASSPHRASE, PASS, PASSPORT
markThird(0x50, 0x57, "0123456789 d", false); // PWD
markThird(0x52, 0x4f, "0123456789 u", false); // ROUTING
markThird(0x52, 0x54, "0123456789 n", false); // RTN

/** Whether byte c may follow a pair whose PAIR entry is v (the third byte of a keyword or token prefix). */
// @ts-ignore: decorator
@inline export function thirdFits(v: u32, c: u32): bool {
  const set = THIRD + <usize>((v >> THIRD_SHIFT) << 5);
  return (v >> THIRD_SHIFT) == 0 || ((<u32>load<u8>(set + <usize>(c >> 3)) >> (c & 7)) & 1) != 0;
}

// @ts-ignore: decorator
@inline export function byteAt(p: usize, i: i32): u32 {
  return <u32>load<u8>(p + <usize>i);
}
// @ts-ignore: decorator
@inline export function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}
/** 1 for a letter or digit, else 0 (for branch-free tests). */
// @ts-ignore: decorator
@inline export function isAlnumBit(c: u32): u32 {
  return <u32>((cls(c) & C_ALNUM) != 0);
}
// @ts-ignore: decorator
@inline export function isAlnum(c: u32): bool {
  return (cls(c) & C_ALNUM) != 0;
}
/** The byte before position i (the lookbehind byte when i == 0). */
// @ts-ignore: decorator
@inline export function prevByte(p: usize, i: i32): u32 {
  return <u32>load<u8>(p + <usize>i - 1);
}

export const NONE: i32 = 0;
export const MATCH: i32 = 1;
export const NEED: i32 = -1;

/**
 * Compares the bytes at i with an ASCII keyword, ignoring ASCII case (keyword given in lower case).
 * MATCH, NONE, or NEED when the buffer ends while the bytes read so far agree and more may come.
 */
export function keywordAt(p: usize, len: i32, i: i32, kw: string, final: bool): i32 {
  const n = kw.length;
  const kp = changetype<usize>(kw);
  for (let k = 0; k < n; k++) {
    if (i + k >= len) return final ? NONE : NEED;
    let c = byteAt(p, i + k);
    if (c - 0x41 < 26) c |= 0x20;
    if (c != <u32>load<u16>(kp + (<usize>k << 1))) return NONE;
  }
  return MATCH;
}

// @ts-ignore: decorator
@inline export function isHex(c: u32): bool {
  return c - 0x30 < 10 || (c | 0x20) - 0x61 < 6;
}

/** Scratch area for detectors (digits of a card, compacted IBAN, decoded JWT header, decoded addresses). */
export const SCRATCH: usize = memory.data(1024);
export const SCRATCH_SIZE: i32 = 1024;
