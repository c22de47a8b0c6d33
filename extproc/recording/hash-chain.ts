/** The per-session SHA-256 chain: how an event's hash is computed, and how a stored session is verified. */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../common/canonical-json.ts';
import type { RecordingEvent, VerifyResult } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** SHA-256 of the canonical JSON of the event without its `hash` member (prevHash included). */
export function hashEvent(event: Omit<RecordingEvent, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = event;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

/**
 * Incremental verifier: feed stored events in stream order. The first problem found is kept: a missing event
 * (a gap), a reordering, an edited event (hash mismatch) or a broken link (prevHash differs from the previous hash).
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private bad: { seq: number; reason: string } | null = null;
  count = 0;

  /** `streamSeq` is the sequence the stream entry id claims; it must agree with the event's own `seq`. */
  add(event: RecordingEvent | null, streamSeq: number): void {
    this.count++;
    if (this.bad) return;
    if (event === null) return this.fail(streamSeq, 'stored entry is not a valid event');
    if (streamSeq !== event.seq)
      return this.fail(
        Math.min(streamSeq, this.expectedSeq),
        `entry ${streamSeq} holds an event claiming seq ${event.seq}`,
      );
    if (event.seq > this.expectedSeq) return this.fail(this.expectedSeq, `event ${this.expectedSeq} is missing`);
    if (event.seq < this.expectedSeq) return this.fail(event.seq, `event ${event.seq} is out of order`);
    if (event.prevHash !== this.prevHash)
      return this.fail(event.seq, `event ${event.seq} does not link to the previous event`);
    if (hashEvent(event) !== event.hash) return this.fail(event.seq, `event ${event.seq} was modified (hash mismatch)`);
    this.prevHash = event.hash;
    this.expectedSeq++;
  }

  /**
   * Checks that the chain ends exactly at the session's recorded tip (its metadata, moved with every append), and
   * that no entry beyond it was ever stored (`generatedSeq`: the stream's last generated id, which survives XDEL).
   * `anchored` says whether the tip's keyed anchor was checked (the caller checks it: a tip moved without the key).
   */
  finish(tip: { seq: number; hash: string } | null, generatedSeq: number, anchored: boolean): VerifyResult {
    const endSeq = this.expectedSeq - 1;
    if (!this.bad) {
      if (tip === null) {
        if (endSeq > 0) this.fail(1, 'the session has events but no recorded end (its metadata was removed)');
      } else if (tip.seq > endSeq)
        this.fail(this.expectedSeq, `event ${this.expectedSeq} is missing (session recorded ${tip.seq} events)`);
      else if (tip.seq < endSeq)
        this.fail(tip.seq + 1, `event ${tip.seq + 1} is beyond the recorded end of the session (seq ${tip.seq})`);
      else if (tip.hash !== this.prevHash)
        this.fail(tip.seq, `event ${tip.seq} does not match the session's recorded last hash`);
      else if (generatedSeq > endSeq) this.fail(endSeq + 1, `event ${endSeq + 1} was stored and then removed`);
    }
    return this.bad
      ? { valid: false, events: this.count, firstBadSeq: this.bad.seq, reason: this.bad.reason, anchored }
      : { valid: true, events: this.count, anchored };
  }

  /** Fails the chain at its recorded end: the tip itself is not trustworthy (a bad or missing anchor). */
  failTip(seq: number, reason: string): void {
    if (!this.bad) this.fail(Math.max(seq, 1), reason);
  }

  private fail(seq: number, reason: string): void {
    this.bad = { seq, reason };
  }
}

/** The members of an event besides data, v and the chain links. */
export type EventHeader = Pick<
  RecordingEvent,
  'type' | 'sessionId' | 'agent' | 'target' | 'protocol' | 'requestId' | 'seq' | 'time'
>;

/**
 * The canonical JSON of an event without `hash`, built directly for the known shape (members in sorted order, `data`
 * already canonical) instead of through a generic walk, as the three pieces around `data`: the writer puts each into
 * the event's slab as it is, so the data (most of the bytes) is not copied into a joined string first. Must agree
 * with hashEvent(); the recorder tests verify every stored event with it.
 */
export function canonicalEventPieces(
  ev: EventHeader,
  prevHash: string,
  sessionIdJson = JSON.stringify(ev.sessionId),
): { before: string; after: string } {
  // time (toISOString()) and type (one of RECORDING_EVENT_TYPES) never need escaping; prevHash may come from a stored
  // event, so it is quoted like any other string.
  return {
    before: `{"agent":${quotedName(ev.agent)},"data":`,
    after:
      `,"prevHash":${JSON.stringify(prevHash)},`
      + `"protocol":${quotedName(ev.protocol)},${ev.requestId === undefined ? '' : `"requestId":${JSON.stringify(ev.requestId)},`}`
      + `"seq":${ev.seq},"sessionId":${sessionIdJson},"target":${quotedName(ev.target)},`
      + `"time":"${ev.time}","type":"${ev.type}","v":1}`,
  };
}

/** JSON of agent, target and protocol names: a few names recur in every event, so each is quoted once. */
const quotedNames = new Map<string, string>();
function quotedName(name: string): string {
  let q = quotedNames.get(name);
  if (q === undefined) {
    q = JSON.stringify(name);
    if (quotedNames.size >= 10_000) quotedNames.clear();
    quotedNames.set(name, q);
  }
  return q;
}
