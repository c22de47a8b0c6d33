/**
 * The session recorder. record() is synchronous: it redacts, size-limits and buffers the event with its time. A single
 * background writer chains the buffered events (seq, prevHash, hash, sealed into off-heap slabs) in the order they
 * were recorded, drains the buffer in batches (recorder-batch.ts), and retries a batch until Redis acknowledges it.
 * Chaining in the writer rather than in record() keeps hashing and copying off the action's own path; the order, and
 * so the chain, is the same. Stream entry ids are the sequence numbers, so a batch retried after a lost reply
 * cannot store an event twice.
 *
 * Many writers: any number of processes may record one session (replicas serving one agent token, a restart). Each
 * chains from where it believes the session's chain ends; the store appends only on that exact tip and otherwise
 * answers the current one, and the writer chains those events again from it (recorder-batch.ts).
 */
import type { RedisClient } from '../common/redis-client.ts';
import pino from 'pino';
import type { Logger } from 'pino';
import { canonicalJson } from '../common/canonical-json.ts';
import { DEFAULT_MAX_EVENT_BYTES, limitEventData } from './event-size.ts';
import { EventSlabs, sealedHash } from './event-slab.ts';
import { EventClock } from './event-time.ts';
import { writeBatch, type BatchWriter } from './recorder-batch.ts';
import { DropMarks } from './recorder-drops.ts';
import { noteOf, type ChainedPending, type Pending } from './recorder-pending.ts';
import { evictIdleSessions, newSessionState, type SessionState } from './recorder-session.ts';
import { redact, redactToCanonical, type SecretRegistry } from './redact.ts';
import type {
  FailureMode,
  NewRecordingEvent,
  Recorder,
  RecorderStats,
  RecordedEvent,
  RecordingEvent,
  RecordResult,
} from './types.ts';
import { RECORDING_EVENT_TYPES } from './types.ts';

export interface RecorderOptions {
  redis: RedisClient;
  failureMode: (target: string) => FailureMode;
  /** Events held in memory awaiting Redis (default 100,000). */
  maxBuffered?: number;
  /** Events per pipelined write (default 2,000). */
  batchSize?: number;
  /** How long a small buffer waits for more events before the writer runs (default 2 ms; 0 = at once). */
  coalesceMs?: number;
  logger?: Logger;
  limits?: {
    /** Largest event data, JSON bytes; larger data is cut and marked `truncated` (default 64 KiB). */
    maxEventBytes?: number;
    /** Events per session; then one `error {code:'truncated'}` and later events are dropped (default 1,000,000). */
    maxSessionEvents?: number;
    /** Bytes of action text kept per session for free-text search (default 256 KiB). */
    maxSearchTextBytes?: number;
  };
  /** Exact secret values (vault values, live agent tokens) scrubbed from every recorded string. */
  secrets?: SecretRegistry;
  /** Session states kept in memory; idle ones beyond this are dropped (a later event continues from the tip in Redis). */
  maxSessions?: number;
  /**
   * Fail-closed targets refuse new actions once the oldest event not yet acknowledged by Redis has waited longer than
   * this (ms, default 2,000): a Redis that hangs (connection open, no replies) is caught in time, not only when the
   * buffer fills. They accept again as soon as the backlog older than this is acknowledged.
   */
  maxUnacknowledgedMs?: number;
  /** The clock (ms since the epoch; default Date.now): event times and the unacknowledged-age bound. For tests. */
  now?: () => number;
  /**
   * Key of the tail anchor (anchor.ts): with each append the session's tip is stored with its HMAC, so truncation and
   * appended forgeries are detected by `verify`. Every writer and verifier of a store must share it. Unset: tips are
   * stored without an anchor.
   */
  anchorKey?: Buffer;
}

export interface RecorderExtendedStats extends RecorderStats {
  refused: number;
  sessions: number;
  redisUp: boolean;
  /** How long the oldest event not yet acknowledged by Redis has waited (ms); 0 when none waits. */
  oldestUnacknowledgedMs: number;
  /** Events chained again because another writer had appended to their session first. */
  rebased: number;
}

const NEW_ACTION_TYPES = new Set(['session.start', 'action']);
const EVENT_TYPES = new Set<string>(RECORDING_EVENT_TYPES);
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: session ids are key names (braces are their hash tag) and line-framed
const BAD_ID_CHARS = /[\u0000-\u001f\u007f{}]/;

export interface RecorderWithStats extends Recorder {
  stats(): RecorderExtendedStats;
}

export function createRecorder(opts: RecorderOptions): RecorderWithStats {
  return new RedisRecorder(opts);
}

class RedisRecorder implements RecorderWithStats {
  private readonly redis: RedisClient;
  private readonly failureMode: (target: string) => FailureMode;
  private readonly maxBuffered: number;
  private readonly batchSize: number;
  private readonly coalesceMs: number;
  private writeTimer: NodeJS.Timeout | null = null;
  private readonly maxEventBytes: number;
  private readonly maxSessionEvents: number;
  private readonly maxSearchTextBytes: number;
  private readonly maxSessions: number;
  private readonly secrets: SecretRegistry | undefined;
  private readonly log: Logger;

  private readonly sessions = new Map<string, SessionState>();
  private readonly drops: DropMarks;
  private readonly slabs = new EventSlabs();
  private readonly clock: EventClock;
  private readonly nowMs: () => number;
  private readonly maxUnacknowledgedMs: number;
  /**
   * When queue[0], the oldest unacknowledged event, was recorded (ms): set when an event lands in an empty buffer,
   * and read back from the new oldest's time after each acknowledged batch (once per batch, not per event).
   */
  private oldestAt = 0;
  /** The buffer: the events not yet acknowledged, in record() order (acknowledged ones leave it at once, ack()). */
  private queue: Pending[] = [];
  /** Decisions recorded in this turn of the event loop, serialized after it (serializeDeferred), in record() order. */
  private deferred: Pending[] = [];
  private serializeScheduled = false;
  private nextIndex = 0;
  private ackedIndex = -1;
  private waiters: Array<{ index: number; resolve: () => void }> = [];

  private written = 0;
  private dropped = 0;
  private refused = 0;
  private writeFailing = false;
  private writing = false;
  private closed = false;
  /** Set when close() gave up waiting: the writer stops retrying. */
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly onReady = (): void => {
    this.wake?.();
  };
  private rebased = 0;
  /** The batch whose last write failed: the next write sends it again, unchanged. */
  private failedBatch: Pending[] | null = null;
  private readonly batchWriter: BatchWriter;

  constructor(opts: RecorderOptions) {
    this.redis = opts.redis;
    this.failureMode = opts.failureMode;
    this.maxBuffered = opts.maxBuffered ?? 100_000;
    this.batchSize = opts.batchSize ?? 2_000;
    this.coalesceMs = opts.coalesceMs ?? 2;
    this.maxEventBytes = opts.limits?.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.maxSessionEvents = opts.limits?.maxSessionEvents ?? 1_000_000;
    this.maxSearchTextBytes = opts.limits?.maxSearchTextBytes ?? 256 * 1024;
    this.maxSessions = opts.maxSessions ?? 100_000;
    this.maxUnacknowledgedMs = opts.maxUnacknowledgedMs ?? 2_000;
    this.nowMs = opts.now ?? Date.now;
    this.clock = new EventClock(this.nowMs);
    this.secrets = opts.secrets;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'recorder' });
    this.drops = new DropMarks(
      this.log,
      () => this.buffered < this.maxBuffered,
      (state, as, data) => this.enqueue(state, as, 'error', data, true),
    );
    this.batchWriter = {
      redis: this.redis,
      slabs: this.slabs,
      serialize: (p) => this.serialize(p),
      anchorKey: opts.anchorKey ?? null,
      // Only a store written around a session's tip (its stream holds entries the tip does not account for) refuses.
      lost: (p, why) => {
        this.dropped++;
        this.log.error({ sessionId: p.sessionId, err: why }, 'recording store refused an event; event not stored');
      },
      rebased: (n) => {
        this.rebased += n;
      },
      unanchoredTip: (sessionId, seq) => {
        this.log.error(
          { sessionId, seq },
          "recording: the session's recorded end does not carry a valid anchor (moved without the key); its events are appended unanchored and it fails verification",
        );
      },
    };
    this.redis.on('ready', this.onReady);
  }

  private get buffered(): number {
    return this.queue.length;
  }

  private redisUp(): boolean {
    return this.redis.status === 'ready' && !this.writeFailing;
  }

  /** Whether the oldest unacknowledged event has waited longer than the bound (Redis hung or too slow). */
  private backlogStale(): boolean {
    return this.queue.length > 0 && this.nowMs() - this.oldestAt > this.maxUnacknowledgedMs;
  }

  canAccept(target: string): boolean {
    if (this.closed) return false;
    if (this.failureMode(target) === 'best-effort') return true;
    return this.redisUp() && this.buffered < this.maxBuffered && !this.backlogStale();
  }

  record(input: NewRecordingEvent): RecordResult {
    if (!EVENT_TYPES.has(input.type)) throw new TypeError(`unknown recording event type ${JSON.stringify(input.type)}`);
    let state = this.sessions.get(input.sessionId);
    // A session id held in memory was checked when its state was made.
    if (!state && (!input.sessionId || input.sessionId.length > 256 || BAD_ID_CHARS.test(input.sessionId))) {
      throw new TypeError(
        'recording event without a valid sessionId (1-256 characters, no control characters or braces)',
      );
    }
    if (this.closed) return this.refuse('the recorder is closed');
    const mode = this.failureMode(input.target);
    if (mode === 'fail-closed') {
      if (this.buffered >= this.maxBuffered)
        return this.refuse('session recording is unavailable: the recording buffer is full');
      if (NEW_ACTION_TYPES.has(input.type)) {
        if (!this.redisUp())
          return this.refuse('session recording is unavailable: the recording store cannot be reached');
        if (this.backlogStale())
          return this.refuse(
            'session recording is unavailable: the recording store has not acknowledged events in time',
          );
      }
    }
    if (!state) {
      state = newSessionState(input.sessionId, this.nowMs());
      this.sessions.set(input.sessionId, state);
      if (this.sessions.size > this.maxSessions) evictIdleSessions(this.sessions, this.maxSessions);
    }
    if (this.buffered >= this.maxBuffered) {
      // The state is kept even when every event of the session is dropped, so its chain can say so later.
      this.dropped++;
      this.drops.add(state, input, 'buffer full', this.dropped, this.buffered);
      return { accepted: true };
    }
    if (state.truncated && input.type !== 'session.end') {
      this.dropped++;
      return { accepted: true };
    }
    if (state.droppedUnmarked > 0) this.drops.mark(state, input);
    // Two places are kept back at the limit: the truncation marker and session.end.
    if (input.type !== 'session.end' && state.count >= this.maxSessionEvents - 2) {
      state.truncated = true;
      this.enqueue(
        state,
        input,
        'error',
        {
          code: 'truncated',
          limit: this.maxSessionEvents,
          message: 'per-session event limit reached; later events are not recorded',
        },
        true,
      );
      this.dropped++;
      return { accepted: true };
    }
    if (input.into && input.type === 'output' && this.foldIntoDecision(input.into as unknown as Pending, input))
      return { accepted: true };
    const event = this.enqueue(state, input, input.type, input.data ?? {});
    if (input.type === 'session.end') state.ended = true;
    return { accepted: true, event: event as unknown as RecordedEvent };
  }

  /**
   * Stores an output inside its action's decision (`data.output`) when that decision is not serialized yet (it waits
   * for its output: NewRecordingEvent.outputFollows). The decision is written in the same batch either way, so the
   * output is neither written later nor lost sooner than as an event of its own, and the action costs one event (one
   * XADD, one hash, one envelope) instead of two. The decision keeps its place in the chain and its time: events of the
   * session's other connections recorded in between (a pool of connections shares one session) come after it.
   * Otherwise — the writer serialized the decision first (the action outlasted its batch window) or the two together
   * would pass the size limit — the output is an event of its own, as for every other adapter.
   */
  private foldIntoDecision(decision: Pending, input: NewRecordingEvent): boolean {
    if (
      decision.data === null
      || decision.type !== 'decision'
      || decision.requestId !== input.requestId
      || decision.sessionId !== input.sessionId
      || decision.foldingOutput !== null
    )
      return false;
    // Serialized with the decision, in one pass, after the answers of this turn went out (enqueue()).
    decision.foldingOutput = input;
    this.deferSerialization(decision);
    return true;
  }

  flush(): Promise<void> {
    this.drops.markAll();
    const index = this.nextIndex - 1;
    if (index <= this.ackedIndex) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      this.waiters.push({ index, resolve });
    });
    // One writer at a time: a batch waiting out its window starts now (once, however many flushes ask), an idle
    // writer with events left (after close() stopped re-arming it) starts too, and a running one takes the waiter.
    if (this.writeTimer) {
      clearTimeout(this.writeTimer);
      this.writeTimer = null;
      setImmediate(this.startWriter);
    } else if (!this.writing) {
      this.writing = true;
      setImmediate(this.startWriter);
    }
    return done;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.drops.markAll();
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    this.stopped = true;
    this.redis.off('ready', this.onReady);
    this.wake?.();
    if (this.buffered > 0)
      this.log.error({ lost: this.buffered }, 'recorder closed with events not acknowledged by Redis');
  }

  stats(): RecorderExtendedStats {
    return {
      buffered: this.buffered,
      written: this.written,
      dropped: this.dropped,
      refused: this.refused,
      sessions: this.sessions.size,
      redisUp: this.redisUp(),
      oldestUnacknowledgedMs: this.queue.length > 0 ? Math.max(0, this.nowMs() - this.oldestAt) : 0,
      rebased: this.rebased,
    };
  }

  private refuse(reason: string): RecordResult {
    this.refused++;
    return { accepted: false, reason };
  }

  /**
   * Buffers an event. A decision's data is serialized (redacted, canonical JSON, search text) after the current turn
   * of the event loop rather than here: the answer to the agent's request goes out in that turn's check phase (HTTP/2
   * writes are flushed there, ahead of JavaScript's immediates), and every request handled in the same turn waited
   * for the serialization of all of them. The event's place in the buffer, its time and the decision to accept it are
   * fixed here; its JSON is made before anything reads it (a fold, the writer). Other events are serialized at once,
   * after any deferred ones, so serialization keeps record() order.
   */
  private enqueue(
    state: SessionState,
    input: NewRecordingEvent,
    type: RecordingEvent['type'],
    data: Record<string, unknown>,
    trusted = false,
  ): Pending {
    const p: Pending = {
      type,
      sessionId: input.sessionId,
      agent: input.agent,
      target: input.target,
      protocol: input.protocol,
      requestId: input.requestId,
      seq: 0,
      time: this.clock.now(),
      note: null,
      data,
      trusted,
      foldingOutput: null,
      canonicalData: '',
      prevHash: '',
      slab: null,
      start: 0,
      jsonStart: 0,
      end: 0,
      state,
      index: this.nextIndex++,
    };
    if (type === 'decision' && !trusted) {
      // One whose output is coming is serialized with it (foldIntoDecision), or by the writer if it comes too late.
      if (input.outputFollows !== true) this.deferSerialization(p);
    } else {
      this.serializeDeferred();
      this.serialize(p);
    }
    state.unassigned.push(p);
    state.pending++;
    state.count++;
    if (this.queue.length === 0) this.oldestAt = this.clock.lastMs;
    this.queue.push(p);
    this.kick();
    return p;
  }

  /** Queues a decision to serialize, or an output to fold into it, after this turn. */
  private deferSerialization(p: Pending): void {
    this.deferred.push(p);
    if (!this.serializeScheduled) {
      this.serializeScheduled = true;
      setImmediate(this.serializeDeferred);
    }
  }

  private readonly serializeDeferred = (): void => {
    this.serializeScheduled = false;
    if (this.deferred.length === 0) return;
    const events = this.deferred;
    this.deferred = [];
    for (const p of events) this.serialize(p);
  };

  /**
   * The event's canonical data and write note, from its data (which is then let go). A decision whose output has come
   * (foldIntoDecision) is serialized with it as its `output` member, in the same pass; past the size limit together,
   * the output becomes an event of its own, recorded now: it may then follow events recorded in the same turn after it
   * (it names its request either way). Outputs are bounded samples, so this is rare.
   */
  private serialize(p: Pending): void {
    const data = p.data;
    if (data === null) return;
    p.data = null;
    const output = p.foldingOutput;
    p.foldingOutput = null;
    // An action's strings are its search text, whether it is recorded as an event of its own or inside its decision.
    const withRequest = p.type === 'decision' && data.request !== undefined;
    if (output !== null) {
      // The decision's data is the recorder's (NewRecordingEvent.data): the output is set on it, not on a copy (a
      // spread copy cost about 10 µs more a statement, measured).
      data.output = output.data ?? {};
      const texts = this.searchTexts(p, withRequest);
      const both = this.canonicalData(p, data, texts, withRequest);
      if (!this.overLimit(both)) {
        p.canonicalData = both;
        p.note = noteOf(p.type, data, texts, p.state);
        return;
      }
      data.output = undefined;
    }
    const texts = this.searchTexts(p, withRequest);
    let canonicalData = this.canonicalData(p, data, texts, withRequest);
    if (this.overLimit(canonicalData)) {
      canonicalData = canonicalJson(
        limitEventData(redact(data, this.secrets) as Record<string, unknown>, this.maxEventBytes),
      );
    }
    p.canonicalData = canonicalData;
    p.note = noteOf(p.type, data, texts, p.state);
    if (output !== null) this.enqueue(p.state, output, 'output', output.data ?? {});
  }

  /** Where an event's search text is collected (null: it has none, or its session's is full). */
  private searchTexts(p: Pending, withRequest: boolean): string[] | null {
    return (p.type === 'action' || withRequest) && p.state.textBytes < this.maxSearchTextBytes ? [] : null;
  }

  /** Redacted canonical JSON of the data (as it is for the recorder's own); the search text only from its `request`. */
  private canonicalData(
    p: Pending,
    data: Record<string, unknown>,
    texts: string[] | null,
    withRequest: boolean,
  ): string {
    if (p.trusted) return canonicalJson(data);
    return redactToCanonical(data, this.secrets, texts, withRequest ? 'request' : undefined);
  }

  /** Whether an event's canonical data passes the size limit. */
  private overLimit(canonicalData: string): boolean {
    // UTF-16 length × 3 bounds the UTF-8 size: only measure bytes when the data could be over the limit.
    return canonicalData.length * 3 > this.maxEventBytes && Buffer.byteLength(canonicalData) > this.maxEventBytes;
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    // The writer starts after the current data-path work yields, so record() never waits for it. A small buffer waits
    // up to coalesceMs for more: one script call per few requests instead of one per request (each call costs the
    // event loop tens of microseconds that the next request would wait behind). A full batch, or a flush(), goes now.
    if (this.buffered >= this.batchSize || this.coalesceMs === 0) setImmediate(this.startWriter);
    else this.writeTimer = setTimeout(this.startWriter, this.coalesceMs);
  }

  private readonly startWriter = (): void => {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    void this.writeLoop();
  };

  private async writeLoop(): Promise<void> {
    let delay = RETRY_MIN_MS;
    try {
      while (this.buffered > 0) {
        // A batch whose write failed is retried as it was, not grown by what was recorded since: the store may have
        // applied it before the failure, and recognises that only for exactly the events it was sent.
        const batch = this.failedBatch ?? this.queue.slice(0, this.batchSize);
        this.failedBatch = null;
        let ok: boolean;
        try {
          await writeBatch(this.batchWriter, batch);
          ok = true;
        } catch (err) {
          ok = false;
          if (!this.writeFailing)
            this.log.error(
              { err: String(err), buffered: this.buffered },
              'recording store unreachable; events stay buffered',
            );
        }
        if (!ok) {
          this.failedBatch = batch;
          this.writeFailing = true;
          if (this.stopped) return;
          await this.sleep(delay);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
          continue;
        }
        if (this.writeFailing) this.log.info({ buffered: this.buffered }, 'recording store reachable again');
        this.writeFailing = false;
        delay = RETRY_MIN_MS;
        this.ack(batch);
        // What arrived during the write waits for the batch window like any small buffer (kick() below), unless it
        // fills a batch or a flush() waits for it: written at once, a steady stream of requests would go one small
        // script call per round trip, each costing its hashing, anchor and call overhead for a few events.
        if (this.buffered < this.batchSize && this.coalesceMs > 0 && this.waiters.length === 0) break;
      }
    } finally {
      this.writing = false;
    }
    if (this.buffered > 0 && !this.closed) this.kick();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private ack(batch: Pending[]): void {
    this.written += batch.length;
    // Per session, how many of its events the batch holds: the head of its chained list, acknowledged now.
    const acked = new Map<SessionState, number>();
    for (const p of batch) {
      const s = p.state;
      s.pending--;
      acked.set(s, (acked.get(s) ?? 0) + 1);
      if (p.type === 'session.end')
        this.log.info(
          { sessionId: s.id, lastSeq: p.seq, lastHash: sealedHash(p as ChainedPending) },
          'session recorded',
        );
      if (s.ended && s.pending === 0 && this.sessions.get(s.id) === s) this.sessions.delete(s.id);
      // An action may still hold its decision's event (to fold its output into, which a chained event never takes):
      // without the slab, a long-running statement does not keep a whole slab of other events alive.
      p.slab = null;
    }
    // Acknowledged events are let go at once, from the buffer and from their sessions' chained lists. Held until a
    // later compaction (the buffer was compacted past 4,096 acknowledged events), they lived through young-generation
    // collections and were promoted: under load the old generation grew by about 1.4 MB per collection, and copying
    // and then collecting them was most of what the collector spent (docs/postgres.md, "Throughput").
    for (const [s, n] of acked) s.chained = n === s.chained.length ? [] : s.chained.slice(n);
    this.queue = batch.length === this.queue.length ? [] : this.queue.slice(batch.length);
    this.ackedIndex = batch[batch.length - 1].index;
    if (this.queue.length > 0) this.oldestAt = Date.parse(this.queue[0].time);
    if (this.drops.size > 0) this.drops.markAll();
    if (this.waiters.length > 0) {
      const still: typeof this.waiters = [];
      for (const w of this.waiters) w.index <= this.ackedIndex ? w.resolve() : still.push(w);
      this.waiters = still;
    }
  }
}
