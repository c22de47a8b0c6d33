/**
 * A buffered event, from record() until Redis acknowledges it: its header, what the writer will need from its data,
 * and once chained its stored bytes in a slab (event-slab.ts). One flat object per event, and no per-event strings
 * beyond the caller's: what stays alive while the buffer waits on Redis is what the GC must copy.
 */
import { truncateUtf8 } from './event-size.ts';
import type { EventSlabs } from './event-slab.ts';
import { canonicalEventPieces, type EventHeader } from './hash-chain.ts';
import { DECISION_ACTIONS, entryId } from './keys.ts';
import type { SessionState } from './recorder-session.ts';
import type { NewRecordingEvent, RecordingEvent } from './types.ts';

/** What the writer needs from an event besides its JSON, taken at record() time (the data itself is not kept). */
export interface WriteNote {
  terminal?: { width: number; height: number };
  decision?: string;
  truncated?: true;
  /** Searchable text of an action (redacted). */
  text?: string;
}

/**
 * Its stored bytes, once chained, are `slab[start, end)` = `key\nid\njson\n` (see event-slab.ts; the hash is read
 * back from there when needed).
 */
export interface Pending extends EventHeader {
  note: WriteNote | null;
  /**
   * The data as record() was given it, until it is serialized (into canonicalData and note); null after. A decision
   * is serialized after the turn of the event loop that recorded it (Recorder.serializeDeferred), or, when its output
   * follows, after the turn its output came in (with it) or when the writer chains it; every other event at once.
   */
  data: Record<string, unknown> | null;
  /** Data built by the recorder itself (markers): serialized without redaction. */
  trusted: boolean;
  /** An output to fold into this decision once the turn's serialization runs (Recorder.foldIntoDecision). */
  foldingOutput: NewRecordingEvent | null;
  /** Canonical JSON of the event's data, kept until the event is chained. */
  canonicalData: string;
  /** The hash the event links to, once chained. */
  prevHash: string;
  slab: Buffer | null;
  start: number;
  jsonStart: number;
  end: number;
  state: SessionState;
  /** Position in the order of everything ever buffered (for flush()). */
  index: number;
}

/** A chained event: its bytes are in a slab. Everything the writer sends has been chained. */
export type ChainedPending = Pending & { slab: Buffer };

/**
 * Gives the event the session's next seq and links it to the previous hash, writing its stored bytes into the slabs.
 * The canonical data is dropped once it is in the slab (buffered events hold no large strings).
 */
export function chainEvent(p: Pending, slabs: EventSlabs): void {
  const s = p.state;
  p.seq = ++s.seq;
  p.prevHash = s.lastHash;
  const body = canonicalEventPieces(p, p.prevHash, s.idJson);
  s.lastHash = slabs.seal(
    p as ChainedPending,
    `${s.eventsKey}\n${entryId(p.seq)}\n`,
    body.before,
    p.canonicalData,
    body.after,
  );
  p.canonicalData = '';
  s.chained.push(p);
}

/** `,"hash":"` + 64 hex digits + `"}` + `\n`: what follows the body (less its closing brace) in the stored bytes. */
const SEALED_SUFFIX_BYTES = 76;
const PREV_HASH_MEMBER = ',"prevHash":"';
const SEQ_MEMBER = ',"seq":';

/**
 * Chains an already chained event again, as the session's next (after another writer moved the session's chain on):
 * its stored body with a new seq and prevHash, sealed anew. Every member after `data` is a number or a JSON string,
 * whose quotes are escaped, so the last `,"prevHash":"` is the event's own and the next `,"seq":` after it too.
 */
export function rechainEvent(p: ChainedPending, slabs: EventSlabs): void {
  const s = p.state;
  const body = `${p.slab.toString('utf8', p.jsonStart, p.end - SEALED_SUFFIX_BYTES)}}`;
  const h = body.lastIndexOf(PREV_HASH_MEMBER) + PREV_HASH_MEMBER.length;
  const q = body.indexOf(SEQ_MEMBER, h) + SEQ_MEMBER.length;
  const qEnd = body.indexOf(',', q);
  p.seq = ++s.seq;
  p.prevHash = s.lastHash;
  const next = body.slice(0, h) + p.prevHash + body.slice(h + 64, q) + p.seq + body.slice(qEnd);
  s.lastHash = slabs.seal(p, `${s.eventsKey}\n${entryId(p.seq)}\n`, next);
}

/** The note of an event; `texts` are the action's redacted strings, null when the session's search text is full. */
export function noteOf(
  type: RecordingEvent['type'],
  data: Record<string, unknown>,
  texts: string[] | null,
  state: SessionState,
): WriteNote | null {
  switch (type) {
    case 'session.start': {
      const t = data.terminal as { width?: unknown; height?: unknown } | undefined;
      return t && typeof t.width === 'number' && typeof t.height === 'number'
        ? { terminal: { width: t.width, height: t.height } }
        : null;
    }
    case 'decision': {
      // A decision may carry its action (`request`): then its texts are the action's search text.
      const decision = (DECISION_ACTIONS as readonly unknown[]).includes(data.action) ? (data.action as string) : null;
      const text = searchText(texts, state);
      if (decision === null) return text === null ? null : { text };
      return text === null ? { decision } : { decision, text };
    }
    case 'error':
      return data.code === 'truncated' ? { truncated: true } : null;
    case 'action': {
      const text = searchText(texts, state);
      return text === null ? null : { text };
    }
    default:
      return null;
  }
}

/** An action's search text (≤ 2 KiB), counted against the session's; null when it has none. */
function searchText(texts: string[] | null, state: SessionState): string | null {
  if (!texts || texts.length === 0) return null;
  const text = truncateUtf8(texts.join(' '), 2048);
  state.textBytes += text.length;
  return text;
}
