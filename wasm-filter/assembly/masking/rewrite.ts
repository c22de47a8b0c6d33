// Strategies: redact, mask, partial, hash. Each writer can run "dry" (only measure) so the output is sized exactly
// before anything is written.
import { C_ALNUM, cls } from "./bytes";
import { builtinName, BUILTIN_COUNT, MAX_ENTITIES } from "./entities";
import { hmac } from "./sha256";

export const REDACT: i32 = 0;
export const MASK: i32 = 1;
export const PARTIAL: i32 = 2;
export const HASH: i32 = 3;

const NAME_MAX: i32 = 64;
const STRATEGY: usize = memory.data(64);
const KEEP: usize = memory.data(64);
const NAME_LEN: usize = memory.data(64);
const NAMES: usize = memory.data(64 * 64);
const DIGEST: usize = memory.data(32);

for (let id = 0; id < BUILTIN_COUNT; id++) {
  const name = builtinName(id);
  for (let k = 0; k < name.length; k++) store<u8>(NAMES + <usize>(id * NAME_MAX + k), <u8>name.charCodeAt(k));
  store<u8>(NAME_LEN + <usize>id, <u8>name.length);
}

export function setStrategy(entity: i32, strategy: i32, keep: i32): bool {
  if (<u32>entity >= <u32>MAX_ENTITIES || <u32>strategy > <u32>HASH) return false;
  store<u8>(STRATEGY + <usize>entity, <u8>strategy);
  store<u8>(KEEP + <usize>entity, <u8>(keep < 0 ? 0 : keep > 255 ? 255 : keep));
  return true;
}

export function setName(entity: i32, p: usize, n: i32): bool {
  if (<u32>entity >= <u32>MAX_ENTITIES || n < 0 || n > NAME_MAX) return false;
  memory.copy(NAMES + <usize>(entity * NAME_MAX), p, <usize>n);
  store<u8>(NAME_LEN + <usize>entity, <u8>n);
  return true;
}

/**
 * Writes the replacement of p[s, e) for `entity` at out (or only measures it when dry); returns its length.
 * A continuation span (the rest of a value begun in an earlier chunk) has no redaction text or hash of its own.
 */
export function replace(p: usize, s: i32, e: i32, entity: i32, cont: bool, out: usize, dry: bool): i32 {
  const strategy = <i32>load<u8>(STRATEGY + <usize>entity);
  if (strategy == MASK) return stars(p, s, e, 0, out, dry);
  if (strategy == PARTIAL) return stars(p, s, e, cont ? 0 : <i32>load<u8>(KEEP + <usize>entity), out, dry);
  if (cont) return 0;
  if (strategy == HASH) {
    if (dry) return 71;
    writeAscii(out, "sha256:");
    hmac(p + <usize>s, e - s, DIGEST);
    for (let k = 0; k < 32; k++) {
      const b = <u32>load<u8>(DIGEST + <usize>k);
      store<u8>(out + <usize>(7 + 2 * k), hex(b >> 4));
      store<u8>(out + <usize>(8 + 2 * k), hex(b & 15));
    }
    return 71;
  }
  const n = <i32>load<u8>(NAME_LEN + <usize>entity);
  if (!dry) {
    writeAscii(out, "[REDACTED:");
    memory.copy(out + 10, NAMES + <usize>(entity * NAME_MAX), <usize>n);
    store<u8>(out + <usize>(10 + n), 0x5d);
  }
  return 11 + n;
}

function hex(v: u32): u8 {
  return <u8>(v < 10 ? 0x30 + v : 0x57 + v);
}

function writeAscii(out: usize, s: string): void {
  for (let k = 0; k < s.length; k++) store<u8>(out + <usize>k, <u8>s.charCodeAt(k));
}

/**
 * One '*' per character (UTF-8 sequences count once), line breaks kept. With keep > 0 (partial), separators —
 * ASCII bytes that are not letters or digits — are kept too, and so are the last `keep` characters, but never more
 * than half of them, so a short value is never shown whole.
 */
function stars(p: usize, s: i32, e: i32, keep: i32, out: usize, dry: bool): i32 {
  let firstVisible = 0;
  if (keep > 0) {
    let total = 0;
    for (let k = s; k < e; k++) {
      const c = <u32>load<u8>(p + <usize>k);
      if (c >= 0x80 ? (c & 0xc0) != 0x80 : (cls(c) & C_ALNUM) != 0) total++;
    }
    firstVisible = total - (keep < total >> 1 ? keep : total >> 1);
  }
  let n = 0;
  let index = 0;
  let showing = false;
  for (let k = s; k < e; k++) {
    const c = <u32>load<u8>(p + <usize>k);
    let out_c: u32 = 0x2a;
    let emit = true;
    if (c >= 0x80) {
      if ((c & 0xc0) == 0x80) {
        // Continuation byte: shown with its character, otherwise absorbed by the character's single '*'.
        emit = showing;
        out_c = c;
      } else {
        showing = keep > 0 && index >= firstVisible;
        index++;
        if (showing) out_c = c;
      }
    } else if (c == 0x0a || c == 0x0d) {
      out_c = c;
    } else if (keep > 0) {
      if ((cls(c) & C_ALNUM) == 0) out_c = c;
      else {
        if (index >= firstVisible) out_c = c;
        index++;
      }
    }
    if (emit) {
      if (!dry) store<u8>(out + <usize>n, <u8>out_c);
      n++;
    }
  }
  return n;
}
