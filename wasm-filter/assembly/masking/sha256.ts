// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over linear memory, for the `hash` strategy.
// Written out here because the core must stay free of host imports (Envoy's VM offers no crypto to the filter).

const K: usize = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const W: usize = memory.data(256);
const H: usize = memory.data(32);
const BLOCK: usize = memory.data(64);
let blockLen: i32 = 0;
let total: u64 = 0;

// HMAC state: the key padded with ipad / opad, and the inner digest.
const IPAD: usize = memory.data(64);
const OPAD: usize = memory.data(64);
const INNER: usize = memory.data(32);
let keyed = false;

function k32(i: i32): u32 {
  return load<u32>(K + (<usize>i << 2));
}
function w32(i: i32): u32 {
  return load<u32>(W + (<usize>i << 2));
}

function compress(): void {
  for (let i = 0; i < 16; i++) store<u32>(W + (<usize>i << 2), bswap<u32>(load<u32>(BLOCK + (<usize>i << 2))));
  for (let i = 16; i < 64; i++) {
    const a = w32(i - 15);
    const b = w32(i - 2);
    const s0 = rotr<u32>(a, 7) ^ rotr<u32>(a, 18) ^ (a >>> 3);
    const s1 = rotr<u32>(b, 17) ^ rotr<u32>(b, 19) ^ (b >>> 10);
    store<u32>(W + (<usize>i << 2), w32(i - 16) + s0 + w32(i - 7) + s1);
  }
  let a = load<u32>(H), b = load<u32>(H, 4), c = load<u32>(H, 8), d = load<u32>(H, 12);
  let e = load<u32>(H, 16), f = load<u32>(H, 20), g = load<u32>(H, 24), h = load<u32>(H, 28);
  for (let i = 0; i < 64; i++) {
    const t1 = h + (rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25)) + ((e & f) ^ (~e & g)) + k32(i) + w32(i);
    const t2 = (rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  store<u32>(H, load<u32>(H) + a); store<u32>(H, load<u32>(H, 4) + b, 4);
  store<u32>(H, load<u32>(H, 8) + c, 8); store<u32>(H, load<u32>(H, 12) + d, 12);
  store<u32>(H, load<u32>(H, 16) + e, 16); store<u32>(H, load<u32>(H, 20) + f, 20);
  store<u32>(H, load<u32>(H, 24) + g, 24); store<u32>(H, load<u32>(H, 28) + h, 28);
}

function init(): void {
  store<u32>(H, 0x6a09e667); store<u32>(H, 0xbb67ae85, 4); store<u32>(H, 0x3c6ef372, 8); store<u32>(H, 0xa54ff53a, 12);
  store<u32>(H, 0x510e527f, 16); store<u32>(H, 0x9b05688c, 20); store<u32>(H, 0x1f83d9ab, 24); store<u32>(H, 0x5be0cd19, 28);
  blockLen = 0;
  total = 0;
}

function update(p: usize, n: i32): void {
  total += <u64>n;
  for (let k = 0; k < n; k++) {
    store<u8>(BLOCK + <usize>blockLen, load<u8>(p + <usize>k));
    blockLen++;
    if (blockLen == 64) {
      compress();
      blockLen = 0;
    }
  }
}

/** Finishes the digest and writes its 32 bytes (big-endian words) to out. */
function finish(out: usize): void {
  const bits = total << 3;
  store<u8>(BLOCK + <usize>blockLen, 0x80);
  blockLen++;
  if (blockLen > 56) {
    while (blockLen < 64) { store<u8>(BLOCK + <usize>blockLen, 0); blockLen++; }
    compress();
    blockLen = 0;
  }
  while (blockLen < 56) { store<u8>(BLOCK + <usize>blockLen, 0); blockLen++; }
  store<u64>(BLOCK + 56, bswap<u64>(bits));
  compress();
  for (let i = 0; i < 8; i++) store<u32>(out + (<usize>i << 2), bswap<u32>(load<u32>(H + (<usize>i << 2))));
}

/** Sets the HMAC key (keys longer than a block are hashed first, as RFC 2104 says). */
export function setKey(p: usize, n: i32): void {
  memory.fill(IPAD, 0, 64);
  if (n > 64) {
    init();
    update(p, n);
    finish(IPAD);
  } else if (n > 0) {
    memory.copy(IPAD, p, <usize>n);
  }
  for (let i = 0; i < 64; i++) {
    const b = load<u8>(IPAD + <usize>i);
    store<u8>(OPAD + <usize>i, b ^ 0x5c);
    store<u8>(IPAD + <usize>i, b ^ 0x36);
  }
  keyed = true;
}

/** HMAC-SHA256(key, data) into out (32 bytes). Without a key, the key is empty (still a stable digest). */
export function hmac(p: usize, n: i32, out: usize): void {
  if (!keyed) setKey(0, 0);
  init();
  update(IPAD, 64);
  update(p, n);
  finish(INNER);
  init();
  update(OPAD, 64);
  update(INNER, 32);
  finish(out);
}

/** SHA-256(data) into out (32 bytes): Bitcoin's base58check uses it twice. */
export function sha256(p: usize, n: i32, out: usize): void {
  init();
  update(p, n);
  finish(out);
}
