// CRYPTO: Bitcoin addresses with their checksums (base58check P2PKH/P2SH, bech32/bech32m segwit) and Ethereum
// addresses. Found at a word start: '1' or '3' (base58), "bc1" (bech32, one case throughout), "0x" + 40 hex digits.
import { byteAt, isAlnum, isHex, MATCH, NEED, NONE, SCRATCH } from "./bytes";
import { CRYPTO } from "./entities";
import { found } from "./found";
import { sha256 } from "./sha256";

/** Value of each base58 character + 1 (0 = not in the alphabet: 0, O, I and l are left out). */
const B58: usize = memory.data(128);
const B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
for (let k = 0; k < B58_ALPHABET.length; k++) store<u8>(B58 + <usize>B58_ALPHABET.charCodeAt(k), <u8>(k + 1));
/** Value of each bech32 character + 1 (lower case). */
const B32: usize = memory.data(128);
const B32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
for (let k = 0; k < B32_ALPHABET.length; k++) store<u8>(B32 + <usize>B32_ALPHABET.charCodeAt(k), <u8>(k + 1));

const DECODED: usize = SCRATCH + 512; // 25 bytes
const DIGEST: usize = SCRATCH + 576; // 32 bytes
const DIGEST2: usize = SCRATCH + 640; // 32 bytes

function b58(c: u32): i32 {
  return c < 128 ? <i32>load<u8>(B58 + <usize>c) - 1 : -1;
}
function b32(c: u32): i32 {
  const l = c - 0x41 < 26 ? c | 0x20 : c;
  return l < 128 ? <i32>load<u8>(B32 + <usize>l) - 1 : -1;
}

/** The end of the run of alphanumerics from j (at most 128); -1 when the data ends inside it. */
function wordEnd(p: usize, len: i32, j: i32, final: bool): i32 {
  let e = j;
  while (e < len && e - j < 128 && isAlnum(byteAt(p, e))) e++;
  if (e >= len && !final) return -1;
  return e;
}

/** A digit or 'b'/'B' at a word start. */
export function detectCrypto(p: usize, len: i32, i: i32, final: bool): i32 {
  const e = wordEnd(p, len, i, final);
  if (e < 0) return NEED;
  const c = byteAt(p, i);
  let ok = false;
  if (c == 0x31 || c == 0x33) ok = base58check(p, i, e, c == 0x31 ? 0 : 5);
  else if (c == 0x30) ok = e - i == 42 && (byteAt(p, i + 1) | 0x20) == 0x78 && allHex(p, i + 2, e);
  else ok = bech32(p, i, e);
  if (!ok) return NONE;
  found(i, e, CRYPTO);
  return MATCH;
}

function allHex(p: usize, s: i32, e: i32): bool {
  for (let k = s; k < e; k++) if (!isHex(byteAt(p, k))) return false;
  return true;
}

/** 25–34 base58 characters decoding to 25 bytes: version, 20-byte hash, 4 bytes of double SHA-256. */
function base58check(p: usize, s: i32, e: i32, version: u8): bool {
  if (e - s < 25 || e - s > 34) return false;
  memory.fill(DECODED, 0, 25);
  for (let k = s; k < e; k++) {
    let carry = b58(byteAt(p, k));
    if (carry < 0) return false;
    for (let b = 24; b >= 0; b--) {
      carry += <i32>load<u8>(DECODED + <usize>b) * 58;
      store<u8>(DECODED + <usize>b, <u8>(carry & 0xff));
      carry >>= 8;
    }
    if (carry != 0) return false;
  }
  if (load<u8>(DECODED) != version) return false;
  sha256(DECODED, 21, DIGEST);
  sha256(DIGEST, 32, DIGEST2);
  return load<u32>(DIGEST2) == load<u32>(DECODED + 21);
}

function polymodStep(chk: u32, v: u32): u32 {
  const top = chk >> 25;
  let c = ((chk & 0x1ffffff) << 5) ^ v;
  if ((top & 1) != 0) c ^= 0x3b6a57b2;
  if ((top & 2) != 0) c ^= 0x26508e6d;
  if ((top & 4) != 0) c ^= 0x1ea119fa;
  if ((top & 8) != 0) c ^= 0x3d4233dd;
  if ((top & 16) != 0) c ^= 0x2a1462b3;
  return c;
}

/**
 * BIP 173/350: `bc1` + data, one case throughout, 14–74 characters in all, bech32 (witness v0) or bech32m (v1+)
 * checksum over the human-readable part "bc".
 */
function bech32(p: usize, s: i32, e: i32): bool {
  const n = e - s;
  if (n < 14 || n > 74) return false;
  const h = byteAt(p, s);
  const upper = h == 0x42;
  if ((byteAt(p, s + 1) | 0x20) != 0x63 || byteAt(p, s + 2) != 0x31 || (h | 0x20) != 0x62) return false;
  let chk: u32 = 1;
  // hrp expansion of "bc": high bits, 0, low bits.
  chk = polymodStep(chk, 0x62 >> 5);
  chk = polymodStep(chk, 0x63 >> 5);
  chk = polymodStep(chk, 0);
  chk = polymodStep(chk, 0x62 & 31);
  chk = polymodStep(chk, 0x63 & 31);
  for (let k = s + 3; k < e; k++) {
    const c = byteAt(p, k);
    if ((c - 0x41 < 26) != upper && c - 0x30 >= 10) return false; // mixed case
    const v = b32(c);
    if (v < 0) return false;
    chk = polymodStep(chk, <u32>v);
  }
  const witness = b32(byteAt(p, s + 3));
  return witness == 0 ? chk == 1 : chk == 0x2bc830a3;
}
