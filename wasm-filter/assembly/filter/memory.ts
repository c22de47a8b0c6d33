// The filter's memory, all of it static (memory.data), so the filter never calls the AssemblyScript allocator: the
// masking core linked beside it owns the heap above __heap_base with its own bump allocator, and one allocator per
// region keeps them apart. Everything the host hands us (header values, body windows, callout answers) lands in the
// scratch region through `malloc`, which is reset at the start of every callback: nothing allocated for one callback
// outlives it, so memory use is flat however many requests pass.

/** Per-callback scratch: host-written values, serialized header maps, replies. */
export const SCRATCH_SIZE: i32 = 256 * 1024;
export const SCRATCH: usize = memory.data(SCRATCH_SIZE, 16);
/** Two 8-byte slots the host writes a returned pointer and size into. */
export const RET_PTR: usize = memory.data(8, 8);
export const RET_LEN: usize = RET_PTR + 4;

let scratchTop: i32 = 0;

export function scratchReset(): void {
  scratchTop = 0;
}

export function scratchMark(): i32 {
  return scratchTop;
}

export function scratchRelease(mark: i32): void {
  if (mark >= 0 && mark <= scratchTop) scratchTop = mark;
}

/** n bytes of scratch, 8-aligned; 0 when n is negative or the region is full (the host then reports a failure). */
export function scratchAlloc(n: i32): usize {
  if (n < 0 || n > SCRATCH_SIZE - scratchTop) return 0;
  const p = SCRATCH + <usize>scratchTop;
  scratchTop = (scratchTop + n + 7) & ~7;
  if (scratchTop > SCRATCH_SIZE) scratchTop = SCRATCH_SIZE;
  return p;
}

/** Bytes left in scratch. */
export function scratchFree(): i32 {
  return SCRATCH_SIZE - scratchTop;
}

/** The pointer and size the last host call returned (valid only if it returned Ok). */
export function retPtr(): usize {
  return <usize>load<u32>(RET_PTR);
}

export function retLen(): i32 {
  return <i32>load<u32>(RET_LEN);
}

/** A string literal's characters as bytes at dst (literals are ASCII); returns the length. */
export function writeLiteral(s: string, dst: usize): i32 {
  const n = s.length;
  const src = changetype<usize>(s);
  for (let i = 0; i < n; i++) store<u8>(dst + <usize>i, <u8>load<u16>(src + (<usize>i << 1)));
  return n;
}

/** A literal copied into scratch; its length is literalLength(s). 0 if scratch is full. */
export function literal(s: string): usize {
  const p = scratchAlloc(s.length);
  if (p != 0) writeLiteral(s, p);
  return p;
}

/** True if the n bytes at p are exactly the literal s. */
export function bytesEqualLiteral(p: usize, n: i32, s: string): bool {
  if (n != s.length) return false;
  const src = changetype<usize>(s);
  for (let i = 0; i < n; i++) if (<u16>load<u8>(p + <usize>i) != load<u16>(src + (<usize>i << 1))) return false;
  return true;
}

/** True if the n bytes at p start with the literal s. */
export function bytesStartWithLiteral(p: usize, n: i32, s: string): bool {
  const m = s.length;
  if (n < m) return false;
  const src = changetype<usize>(s);
  for (let i = 0; i < m; i++) if (<u16>load<u8>(p + <usize>i) != load<u16>(src + (<usize>i << 1))) return false;
  return true;
}

export function bytesEqual(a: usize, an: i32, b: usize, bn: i32): bool {
  if (an != bn) return false;
  for (let i = 0; i < an; i++) if (load<u8>(a + <usize>i) != load<u8>(b + <usize>i)) return false;
  return true;
}

/** Index of the first `needle` bytes in hay[0, n), or -1. Quadratic at worst, over bounded inputs only. */
export function indexOf(hay: usize, n: i32, needle: usize, m: i32): i32 {
  if (m == 0) return 0;
  for (let i = 0; i + m <= n; i++) {
    let j = 0;
    while (j < m && load<u8>(hay + <usize>(i + j)) == load<u8>(needle + <usize>j)) j++;
    if (j == m) return i;
  }
  return -1;
}

/** Appends the decimal digits of a non-negative v at dst; returns the count. */
export function writeDecimal(v: i32, dst: usize): i32 {
  if (v < 0) v = 0;
  let digits = 1;
  let t = v;
  while (t >= 10) {
    t = t / 10;
    digits++;
  }
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(dst + <usize>i, <u8>(48 + v % 10));
    v = v / 10;
  }
  return digits;
}

/** Parses decimal digits p[0, n); -1 if empty, not all digits, or over 1e9. */
export function parseDecimal(p: usize, n: i32): i32 {
  if (n <= 0 || n > 9) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}
