/**
 * Where chained events wait for Redis: their stored bytes, written once into large off-heap slabs.
 *
 * Each event becomes one line group of the batch script's argument, `key \n id \n json \n`, written when the event is
 * chained. The SHA-256 is taken over the very bytes written (the canonical JSON, prevHash included); the closing `}`
 * is then replaced by `,"hash":"…"}`. So the stored form is exactly the hashed bytes plus the hash, the UTF-8 is
 * encoded once, and the buffer holds no large strings on the JavaScript heap: a buffered event's bytes are never
 * copied by the young-generation collector, which is what dominated GC time when they were strings.
 */
import { hash as oneShotHash } from 'node:crypto';

/** A slab is dropped (left to the GC) once every event in it is acknowledged and released. */
const SLAB_BYTES = 1 << 20;
/** `,"hash":"` + 64 hex digits + `"}` + `\n` replacing the body's closing `}`. */
const HASH_SUFFIX_BYTES = 9 + 64 + 3;

/** One sealed event: `slab[start, end)` is `key\nid\njson\n`, the JSON starting at jsonStart. */
export interface SealedEvent {
  slab: Buffer;
  start: number;
  jsonStart: number;
  end: number;
}

export class EventSlabs {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  /**
   * `head` is `key\nid\n`; the canonical JSON of the event without `hash` is `body`, followed by `more` pieces if
   * given (each written as it is: no string joining them is made). Fills `into` with where the bytes are (the caller's
   * own object: no allocation per event) and returns the hash.
   */
  seal(into: SealedEvent, head: string, body: string, ...more: string[]): string {
    let length = head.length + body.length;
    for (const piece of more) length += piece.length;
    // UTF-16 length × 3 bounds the UTF-8 size.
    const need = length * 3 + HASH_SUFFIX_BYTES;
    if (this.used + need > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, need));
      this.used = 0;
    }
    const slab = this.slab;
    const start = this.used;
    const jsonStart = start + slab.write(head, start);
    let bodyEnd = jsonStart + slab.write(body, jsonStart);
    for (const piece of more) bodyEnd += slab.write(piece, bodyEnd);
    const hash = oneShotHash('sha256', slab.subarray(jsonStart, bodyEnd), 'hex');
    const end = bodyEnd - 1 + slab.write(`,"hash":"${hash}"}\n`, bodyEnd - 1, 'latin1');
    this.used = end;
    into.slab = slab;
    into.start = start;
    into.jsonStart = jsonStart;
    into.end = end;
    return hash;
  }
}

/** The hash of a sealed event, read back from its stored bytes (`…"hash":"<64 hex>"}\n`). */
export function sealedHash(e: Pick<SealedEvent, 'slab' | 'end'>): string {
  return e.slab.toString('latin1', e.end - 67, e.end - 3);
}

/** The stored JSON of a sealed event, as a string (what Redis holds in the entry's `e` field). */
export function storedJson(e: Pick<SealedEvent, 'slab' | 'jsonStart' | 'end'>): string {
  return e.slab.toString('utf8', e.jsonStart, e.end - 1);
}

/** The batch argument: the events' line groups in order, without copying when they lie back to back in one slab. */
export function packEvents(events: ReadonlyArray<Pick<SealedEvent, 'slab' | 'start' | 'end'>>): Buffer {
  let contiguous = true;
  let total = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    total += e.end - e.start;
    if (i > 0 && (e.slab !== events[i - 1].slab || e.start !== events[i - 1].end)) contiguous = false;
  }
  if (events.length === 0) return Buffer.alloc(0);
  if (contiguous) return events[0].slab.subarray(events[0].start, events[events.length - 1].end);
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const e of events) pos += e.slab.copy(out, pos, e.start, e.end);
  return out;
}
