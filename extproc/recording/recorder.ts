/**
 * The session recorder. record() is synchronous: it redacts, size-limits, chains (seq, prevHash, hash) and buffers
 * the event. A single background writer drains the buffer in order, in pipelined batches, and retries a batch until
 * Redis acknowledges it. Stream entry ids are the sequence numbers, so a batch retried after a lost reply cannot
 * store an event twice.
 *
 * Chain ownership: one process records a session at a time. A session whose first event seen here is its
 * `session.start` starts a new chain at seq 1. Any other unknown session id (a second process continuing it, or a
 * session evicted from memory) is "loaded" by the writer, off the data path: the last stored entry gives the seq and
 * hash to continue from; events recorded meanwhile wait in the buffer and are chained in order once it is loaded.
 */
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { Logger } from 'pino';
import { DEFAULT_MAX_EVENT_BYTES, limitEventData, truncateUtf8 } from './event-size.ts';
import { canonicalJson } from '../common/canonical-json.ts';
import { EventSlabs, sealedHash, storedJson } from './event-slab.ts';
import { canonicalEventBody, GENESIS_HASH, type EventHeader } from './hash-chain.ts';
import { DECISION_ACTIONS, entryId, keys, seqOfEntryId } from './keys.ts';
import { AppendBatch } from './redis-append.ts';
import { redact, redactToCanonical, type SecretRegistry } from './redact.ts';
import type { FailureMode, NewRecordingEvent, Recorder, RecorderStats, RecordingEvent, RecordResult } from './types.ts';
import { RECORDING_EVENT_TYPES } from './types.ts';

export interface RecorderOptions {
  redis: Redis;
  failureMode: (target: string) => FailureMode;
  /** Events held in memory awaiting Redis (default 100,000). */
  maxBuffered?: number;
  /** Events per pipelined write (default 2,000). */
  batchSize?: number;
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
  /** Session states kept in memory; idle ones beyond this are dropped and reloaded from Redis if needed. */
  maxSessions?: number;
}

export interface RecorderExtendedStats extends RecorderStats {
  refused: number;
  sessions: number;
  redisUp: boolean;
}

interface SessionState {
  id: string;
  eventsKey: string;
  /** JSON of the id, made once per session rather than per event. */
  idJson: string;
  loaded: boolean;
  seq: number;
  lastHash: string;
  /** Start time (ms) used as the index score; 0 until known. */
  startMs: number;
  indexed: boolean;
  /** Events recorded before the chain was loaded, chained in order once it is. */
  unassigned: Pending[];
  /** Events buffered, not yet acknowledged. */
  pending: number;
  /** Events accepted for this session by this process (for the per-session limit). */
  count: number;
  ended: boolean;
  truncated: boolean;
  /** best-effort drops not yet marked in the chain by an `error {code:'dropped'}` event. */
  droppedUnmarked: number;
  /** Who the session belongs to, from its last dropped event: what the `dropped` marker is recorded as. */
  droppedAs: Pick<NewRecordingEvent, 'sessionId' | 'agent' | 'target' | 'protocol'> | null;
  textBytes: number;
  /** Decisions already in the session's index entries. */
  decisions: Set<string>;
  /** When lastSeq/lastHash/lastEventAt were last written (ms). */
  progressAt: number;
}

interface Touched {
  last: Pending;
  metaExtra: Record<string, string>;
  decisions: string[];
  text: string[];
}

/** What the writer needs from an event besides its JSON, taken at record() time (the data itself is not kept). */
interface WriteNote {
  terminal?: { width: number; height: number };
  decision?: string;
  truncated?: true;
  /** Searchable text of an action (redacted). */
  text?: string;
}

/**
 * A buffered event: its header members, and once chained its stored bytes, `slab[start, end)` = `key\nid\njson\n`
 * (see event-slab.ts; the hash is read back from there when needed). One flat object per event, and no per-event
 * strings beyond the caller's: what stays alive while the buffer waits on Redis is what the GC must copy.
 */
interface Pending extends EventHeader {
  note: WriteNote | null;
  /** Canonical JSON of the event's data, kept until the event is chained. */
  canonicalData: string;
  slab: Buffer | null;
  start: number;
  jsonStart: number;
  end: number;
  state: SessionState;
  /** Position in the order of everything ever buffered (for flush()). */
  index: number;
}

const NEW_ACTION_TYPES = new Set(['session.start', 'action']);
const EVENT_TYPES = new Set<string>(RECORDING_EVENT_TYPES);
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;
const PROGRESS_EVERY_MS = 1000;
/** The first minute of year 10000 (ms): toISOString() changes form from there on. */
const MAX_ISO_MINUTE = 253402300800000;
/** `ss.` for each second of a minute and `mmmZ` for each millisecond of a second, made once. */
const SS: string[] = Array.from({ length: 60 }, (_, i) => `${String(i).padStart(2, '0')}.`);
const MMM_Z: string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export interface RecorderWithStats extends Recorder {
  stats(): RecorderExtendedStats;
}

export function createRecorder(opts: RecorderOptions): RecorderWithStats {
  return new RedisRecorder(opts);
}

class RedisRecorder implements RecorderWithStats {
  private readonly redis: Redis;
  private readonly failureMode: (target: string) => FailureMode;
  private readonly maxBuffered: number;
  private readonly batchSize: number;
  private readonly maxEventBytes: number;
  private readonly maxSessionEvents: number;
  private readonly maxSearchTextBytes: number;
  private readonly maxSessions: number;
  private readonly secrets: SecretRegistry | undefined;
  private readonly log: Logger;

  private readonly sessions = new Map<string, SessionState>();
  /** Sessions with best-effort drops not yet marked in their chain (see markDrops()). */
  private readonly unmarked = new Set<SessionState>();
  private readonly slabs = new EventSlabs();
  /** toISOString() of the current millisecond: events come many to a millisecond under load. */
  private isoMs = -1;
  private iso = '';
  /** toISOString() of the current minute up to its seconds (`2026-01-02T03:04:`), so a new millisecond formats only `ss.mmmZ`. */
  private isoMinute = -1;
  private isoMinutePrefix = '';
  /** The buffer: queue[head..] are not yet acknowledged, in record() order. */
  private queue: Pending[] = [];
  private head = 0;
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
  private lastDropLog = 0;
  private readonly onReady = (): void => { this.wake?.(); };

  constructor(opts: RecorderOptions) {
    this.redis = opts.redis;
    this.failureMode = opts.failureMode;
    this.maxBuffered = opts.maxBuffered ?? 100_000;
    this.batchSize = opts.batchSize ?? 2_000;
    this.maxEventBytes = opts.limits?.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.maxSessionEvents = opts.limits?.maxSessionEvents ?? 1_000_000;
    this.maxSearchTextBytes = opts.limits?.maxSearchTextBytes ?? 256 * 1024;
    this.maxSessions = opts.maxSessions ?? 100_000;
    this.secrets = opts.secrets;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'recorder' });
    this.redis.on('ready', this.onReady);
  }

  private get buffered(): number { return this.queue.length - this.head; }

  private redisUp(): boolean {
    return this.redis.status === 'ready' && !this.writeFailing;
  }

  canAccept(target: string): boolean {
    if (this.closed) return false;
    if (this.failureMode(target) === 'best-effort') return true;
    return this.redisUp() && this.buffered < this.maxBuffered;
  }

  record(input: NewRecordingEvent): RecordResult {
    if (!EVENT_TYPES.has(input.type)) throw new TypeError(`unknown recording event type ${JSON.stringify(input.type)}`);
    let state = this.sessions.get(input.sessionId);
    // A session id held in memory was checked when its state was made.
    if (!state && (!input.sessionId || input.sessionId.length > 256 || CONTROL_CHARS.test(input.sessionId))) {
      throw new TypeError('recording event without a valid sessionId (1-256 characters, no control characters)');
    }
    if (this.closed) return this.refuse('the recorder is closed');
    const mode = this.failureMode(input.target);
    if (mode === 'fail-closed') {
      if (this.buffered >= this.maxBuffered) return this.refuse('session recording is unavailable: the recording buffer is full');
      if (NEW_ACTION_TYPES.has(input.type) && !this.redisUp()) return this.refuse('session recording is unavailable: the recording store cannot be reached');
    }
    if (!state) {
      state = this.newState(input.sessionId, input.type === 'session.start');
      this.sessions.set(input.sessionId, state);
      if (this.sessions.size > this.maxSessions) this.evictIdle();
    }
    if (this.buffered >= this.maxBuffered) {
      // The state is kept even when every event of the session is dropped, so its chain can say so later.
      this.drop(state, input, 'buffer full');
      return { accepted: true };
    }
    if (state.truncated && input.type !== 'session.end') {
      this.dropped++;
      return { accepted: true };
    }
    if (state.droppedUnmarked > 0) this.markDropped(state, input);
    // Two places are kept back at the limit: the truncation marker and session.end.
    if (input.type !== 'session.end' && state.count >= this.maxSessionEvents - 2) {
      state.truncated = true;
      this.enqueue(state, input, 'error', { code: 'truncated', limit: this.maxSessionEvents, message: 'per-session event limit reached; later events are not recorded' }, true);
      this.dropped++;
      return { accepted: true };
    }
    this.enqueue(state, input, input.type, input.data ?? {});
    if (input.type === 'session.end') state.ended = true;
    return { accepted: true };
  }

  flush(): Promise<void> {
    this.markDrops();
    const index = this.nextIndex - 1;
    if (index <= this.ackedIndex) return Promise.resolve();
    return new Promise((resolve) => { this.waiters.push({ index, resolve }); });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.markDrops();
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    this.stopped = true;
    this.redis.off('ready', this.onReady);
    this.wake?.();
    if (this.buffered > 0) this.log.error({ lost: this.buffered }, 'recorder closed with events not acknowledged by Redis');
  }

  stats(): RecorderExtendedStats {
    return { buffered: this.buffered, written: this.written, dropped: this.dropped, refused: this.refused, sessions: this.sessions.size, redisUp: this.redisUp() };
  }

  private refuse(reason: string): RecordResult {
    this.refused++;
    return { accepted: false, reason };
  }

  private drop(state: SessionState, input: NewRecordingEvent, why: string): void {
    this.dropped++;
    state.droppedUnmarked++;
    state.droppedAs = { sessionId: input.sessionId, agent: input.agent, target: input.target, protocol: input.protocol };
    this.unmarked.add(state);
    const now = Date.now();
    if (now - this.lastDropLog > 1_000) {
      this.lastDropLog = now;
      this.log.warn({ dropped: this.dropped, buffered: this.buffered, why }, 'recording events dropped (best-effort target)');
    }
  }

  /** Records `error {code:'dropped', count}` in the session's chain for its drops so far. */
  private markDropped(state: SessionState, as: Pick<NewRecordingEvent, 'sessionId' | 'agent' | 'target' | 'protocol'>): void {
    const count = state.droppedUnmarked;
    state.droppedUnmarked = 0;
    state.droppedAs = null;
    this.unmarked.delete(state);
    const message = `${count} event(s) of this session were not recorded (best-effort target, buffer full or store unreachable)`;
    this.enqueue(state, { ...as, type: 'error', data: {} }, 'error', { code: 'dropped', count, message }, true);
  }

  /**
   * Marks the drops of sessions that recorded nothing since, as soon as the buffer has room again: without this, a
   * session whose last (or every) event was dropped would show no gap at all. A truncated session records nothing
   * more but its session.end; its truncation marker already says so.
   */
  private markDrops(): void {
    for (const s of this.unmarked) {
      if (this.buffered >= this.maxBuffered) return;
      if (s.truncated) {
        this.unmarked.delete(s);
        s.droppedUnmarked = 0;
        s.droppedAs = null;
        continue;
      }
      this.markDropped(s, s.droppedAs!);
    }
  }

  private newState(id: string, isStart: boolean): SessionState {
    return {
      id, eventsKey: keys.events(id), idJson: JSON.stringify(id), loaded: isStart, seq: 0, lastHash: GENESIS_HASH, startMs: isStart ? Date.now() : 0, indexed: false,
      unassigned: [], pending: 0, count: 0, ended: false, truncated: false, droppedUnmarked: 0, droppedAs: null, textBytes: 0,
      decisions: new Set(), progressAt: 0,
    };
  }

  private enqueue(state: SessionState, input: NewRecordingEvent, type: RecordingEvent['type'], data: Record<string, unknown>, trusted = false): void {
    const texts = type === 'action' && state.textBytes < this.maxSearchTextBytes ? [] as string[] : null;
    let canonicalData = trusted ? canonicalJson(data) : redactToCanonical(data, this.secrets, texts);
    // UTF-16 length × 3 bounds the UTF-8 size: only measure bytes when the data could be over the limit.
    if (canonicalData.length * 3 > this.maxEventBytes && Buffer.byteLength(canonicalData) > this.maxEventBytes) {
      canonicalData = canonicalJson(limitEventData(redact(data, this.secrets) as Record<string, unknown>, this.maxEventBytes));
    }
    const p: Pending = {
      type, sessionId: input.sessionId, agent: input.agent, target: input.target, protocol: input.protocol, requestId: input.requestId,
      seq: 0, time: this.now(), note: noteOf(type, data, texts, state), canonicalData, slab: null, start: 0, jsonStart: 0, end: 0,
      state, index: this.nextIndex++,
    };
    if (state.loaded && state.unassigned.length === 0) this.chain(p);
    else state.unassigned.push(p);
    state.pending++;
    state.count++;
    this.queue.push(p);
    this.kick();
  }

  private now(): string {
    const ms = Date.now();
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      if (ms >= 0 && ms < MAX_ISO_MINUTE) {
        // From 1970 to 9999 toISOString() is `YYYY-MM-DDTHH:MM:ss.mmmZ`, and a minute is 60,000 ms in UTC.
        const inMinute = ms % 60_000;
        const minute = ms - inMinute;
        if (minute !== this.isoMinute) {
          this.isoMinute = minute;
          this.isoMinutePrefix = new Date(minute).toISOString().slice(0, 17);
        }
        this.iso = this.isoMinutePrefix + SS[Math.floor(inMinute / 1000)] + MMM_Z[inMinute % 1000];
      } else {
        this.iso = new Date(ms).toISOString();
      }
    }
    return this.iso;
  }

  private chain(p: Pending): void {
    const s = p.state;
    p.seq = ++s.seq;
    s.lastHash = this.slabs.seal(p as Pending & { slab: Buffer }, `${s.eventsKey}\n${entryId(p.seq)}\n`, canonicalEventBody(p, s.lastHash, p.canonicalData, s.idJson));
    p.canonicalData = '';
  }

  private evictIdle(): void {
    const target = Math.floor(this.maxSessions * 0.9);
    for (const [id, s] of this.sessions) {
      if (this.sessions.size <= target) break;
      if (s.pending === 0 && s.droppedUnmarked === 0) this.sessions.delete(id);
    }
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    // The writer starts after the current data-path work yields, so record() never waits for it.
    setImmediate(() => { void this.writeLoop(); });
  }

  private async writeLoop(): Promise<void> {
    let delay = RETRY_MIN_MS;
    try {
      while (this.buffered > 0) {
        const end = Math.min(this.queue.length, this.head + this.batchSize);
        const batch = this.queue.slice(this.head, end);
        let ok: boolean;
        try {
          await this.loadChains(batch);
          ok = await this.writeBatch(batch);
        } catch (err) {
          ok = false;
          if (!this.writeFailing) this.log.error({ err: String(err), buffered: this.buffered }, 'recording store unreachable; events stay buffered');
        }
        if (!ok) {
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
      }
    } finally {
      this.writing = false;
    }
    if (this.buffered > 0 && !this.closed) this.kick();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }

  /** Chains the events of sessions not yet loaded, from the last event Redis holds for each. */
  private async loadChains(batch: Pending[]): Promise<void> {
    const toLoad = [...new Set(batch.filter((p) => !p.state.loaded).map((p) => p.state))];
    if (toLoad.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const s of toLoad) {
      pipe.xrevrange(keys.events(s.id), '+', '-', 'COUNT', 1);
      pipe.hget(keys.meta(s.id), 'startedAt');
    }
    const res = await pipe.exec();
    if (!res) throw new Error('pipeline aborted');
    toLoad.forEach((s, i) => {
      const [e1, last] = res[2 * i];
      const [e2, startedAt] = res[2 * i + 1];
      if (e1 || e2) throw e1 ?? e2;
      const entries = last as Array<[string, string[]]>;
      if (entries.length > 0) {
        const ev = JSON.parse(entries[0][1][1]) as RecordingEvent;
        s.seq = seqOfEntryId(entries[0][0]);
        s.lastHash = ev.hash;
      }
      s.startMs = startedAt ? Number(startedAt) : Date.parse(s.unassigned[0]?.time ?? new Date().toISOString());
      s.loaded = true;
      for (const p of s.unassigned) this.chain(p);
      s.unassigned = [];
    });
  }

  /** One write of the batch (a single script call). Returns false when it must be retried. */
  private async writeBatch(batch: Pending[]): Promise<boolean> {
    const out = new AppendBatch(batch as Array<Pending & { slab: Buffer }>);
    const now = Date.now();
    const touched = new Map<SessionState, Touched>();
    for (const p of batch) {
      const state = p.state;
      let t = touched.get(state);
      if (!t) { t = { last: p, metaExtra: {}, decisions: [], text: [] }; touched.set(state, t); }
      t.last = p;
      if (p.type === 'session.end') {
        t.metaExtra.status = 'ended';
        t.metaExtra.endedAt = String(Date.parse(p.time));
      }
      const note = p.note;
      if (note) {
        if (note.terminal) {
          t.metaExtra.termWidth = String(note.terminal.width);
          t.metaExtra.termHeight = String(note.terminal.height);
        }
        if (note.decision && !state.decisions.has(note.decision) && !t.decisions.includes(note.decision)) t.decisions.push(note.decision);
        if (note.truncated) t.metaExtra.truncated = '1';
        if (note.text) t.text.push(String(p.seq), note.text);
      }
    }
    const progressed: SessionState[] = [];
    for (const [s, t] of touched) {
      const ev = t.last;
      const meta = keys.meta(s.id);
      const start = String(s.startMs);
      if (!s.indexed) {
        out.command('HSET', meta, 'id', s.id, 'agent', ev.agent, 'target', ev.target, 'protocol', ev.protocol);
        out.command('HSETNX', meta, 'startedAt', start);
        out.command('HSETNX', meta, 'status', 'open');
        out.command('ZADD', keys.byStart, start, s.id);
        out.command('ZADD', keys.byAgent(ev.agent), start, s.id);
        out.command('ZADD', keys.byTarget(ev.target), start, s.id);
        out.command('ZADD', keys.byProtocol(ev.protocol), start, s.id);
      }
      for (const d of t.decisions) {
        out.command('HSET', meta, `decision:${d}`, '1');
        out.command('ZADD', keys.byDecision(d), start, s.id);
      }
      if (t.text.length) out.command('HSET', keys.text(s.id), ...t.text);
      const extra = Object.entries(t.metaExtra).flat();
      // Progress (last seq/hash/time) is written at most once a second per session, and with every state change:
      // it serves listings and retention; the chain itself lives in the stream.
      if (!s.indexed || extra.length || t.decisions.length || now - s.progressAt >= PROGRESS_EVERY_MS) {
        const lastMs = String(Date.parse(ev.time));
        out.command('HSET', meta, 'lastSeq', String(ev.seq), 'lastHash', sealedHash(ev as Pending & { slab: Buffer }), 'lastEventAt', lastMs, ...extra);
        out.command('ZADD', keys.byActivity, lastMs, s.id);
        progressed.push(s);
      }
    }
    const refused = await out.run(this.redis);
    const conflicts: Pending[] = [];
    for (const r of refused) {
      if (!/equal or smaller than the target stream top item/.test(r.error)) throw new Error(r.error);
      conflicts.push(batch[r.index]);
    }
    if (conflicts.length > 0) await this.checkConflicts(conflicts);
    for (const [s, t] of touched) {
      s.indexed = true;
      for (const d of t.decisions) s.decisions.add(d);
    }
    for (const s of progressed) s.progressAt = now;
    return true;
  }

  /** An XADD refused because the entry exists: the same event written by an earlier try, or another writer's. */
  private async checkConflicts(conflicts: Pending[]): Promise<void> {
    const pipe = this.redis.pipeline();
    for (const p of conflicts) pipe.xrange(keys.events(p.sessionId), entryId(p.seq), entryId(p.seq));
    const res = (await pipe.exec()) ?? [];
    conflicts.forEach((p, i) => {
      const [err, entries] = res[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const stored = (entries as Array<[string, string[]]>)[0]?.[1]?.[1];
      if (stored !== storedJson(p as Pending & { slab: Buffer })) {
        this.dropped++;
        this.log.error({ sessionId: p.sessionId, seq: p.seq }, 'recording chain conflict: another writer recorded this session; event not stored');
      }
    });
  }

  private ack(batch: Pending[]): void {
    this.head += batch.length;
    this.written += batch.length;
    for (const p of batch) {
      const s = p.state;
      s.pending--;
      if (p.type === 'session.end') this.log.info({ sessionId: s.id, lastSeq: p.seq, lastHash: sealedHash(p as Pending & { slab: Buffer }) }, 'session recorded');
      if (s.ended && s.pending === 0 && this.sessions.get(s.id) === s) this.sessions.delete(s.id);
    }
    this.ackedIndex = batch[batch.length - 1].index;
    if (this.unmarked.size > 0) this.markDrops();
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.waiters.length > 0) {
      const still: typeof this.waiters = [];
      for (const w of this.waiters) (w.index <= this.ackedIndex ? w.resolve() : still.push(w));
      this.waiters = still;
    }
  }
}

function noteOf(type: RecordingEvent['type'], data: Record<string, unknown>, texts: string[] | null, state: SessionState): WriteNote | null {
  switch (type) {
    case 'session.start': {
      const t = data.terminal as { width?: unknown; height?: unknown } | undefined;
      return t && typeof t.width === 'number' && typeof t.height === 'number' ? { terminal: { width: t.width, height: t.height } } : null;
    }
    case 'decision':
      return (DECISION_ACTIONS as readonly unknown[]).includes(data.action) ? { decision: data.action as string } : null;
    case 'error':
      return data.code === 'truncated' ? { truncated: true } : null;
    case 'action': {
      if (!texts || texts.length === 0) return null;
      const text = truncateUtf8(texts.join(' '), 2048);
      state.textBytes += text.length;
      return { text };
    }
    default:
      return null;
  }
}
