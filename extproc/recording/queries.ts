/** Read side of recordings: sessions by filter, one session's events in order, chain verification, live tail. */
import { blockingConnection, type RedisClient } from '../common/redis-client.ts';
import type { Protocol } from '../policy/context.ts';
import { anchorMatches } from './anchor.ts';
import { runCommands } from './commands.ts';
import { parseTip, type Tip } from './tip.ts';
import { ChainVerifier } from './hash-chain.ts';
import { DECISION_ACTIONS, entryId, keys, seqOfEntryId } from './keys.ts';
import type { RecordingEvent, SessionSummary, VerifyResult } from './types.ts';

export interface SessionFilter {
  agent?: string;
  target?: string;
  protocol?: Protocol;
  /** Sessions started at or after / at or before (ms since epoch). */
  from?: number;
  to?: number;
  decision?: 'allow' | 'deny' | 'require_approval';
  /** Case-insensitive substring of any action of the session. */
  q?: string;
  limit?: number;
  cursor?: string;
}

export interface SessionPage {
  sessions: SessionSummary[];
  /** Pass back as `cursor` for the next (older) page; null when there is none. */
  nextCursor: string | null;
}

const PAGE_SCAN = 200;

/**
 * `stored` is the length of the session's event stream (XLEN): the exact count of stored events (the tip's seq is
 * the count only while nothing was removed).
 */
export function summaryFromMeta(meta: Record<string, string>, stored?: number): SessionSummary | null {
  if (!meta.id) return null;
  const ms = (k: string): string | null => (meta[k] ? new Date(Number(meta[k])).toISOString() : null);
  return {
    id: meta.id,
    agent: meta.agent,
    target: meta.target,
    protocol: meta.protocol as Protocol,
    status: meta.status === 'ended' ? 'ended' : 'open',
    startedAt: ms('startedAt') ?? '',
    endedAt: ms('endedAt'),
    lastEventAt: ms('lastEventAt'),
    events: stored ?? parseTip(meta.tip)?.seq ?? 0,
    decisions: DECISION_ACTIONS.filter((d) => meta[`decision:${d}`] === '1'),
    terminal: meta.termWidth ? { width: Number(meta.termWidth), height: Number(meta.termHeight) } : null,
    truncated: meta.truncated === '1',
  };
}

export async function getSession(redis: RedisClient, id: string): Promise<SessionSummary | null> {
  const res = (await redis.pipeline().hgetall(keys.meta(id)).xlen(keys.events(id)).exec()) ?? [];
  for (const [err] of res) if (err) throw err;
  return summaryFromMeta((res[0]?.[1] ?? {}) as Record<string, string>, res[1]?.[1] as number);
}

/**
 * Newest first. The most selective index among agent / target / decision / protocol is walked by start time; the
 * other filters are checked against each session's metadata (and its action texts for `q`).
 * Cursor: `<startMs>:<sessionId>` of the last session returned.
 */
export async function listSessions(redis: RedisClient, f: SessionFilter): Promise<SessionPage> {
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 1000);
  const index =
    f.agent !== undefined
      ? keys.byAgent(f.agent)
      : f.target !== undefined
        ? keys.byTarget(f.target)
        : f.decision !== undefined
          ? keys.byDecision(f.decision)
          : f.protocol !== undefined
            ? keys.byProtocol(f.protocol)
            : keys.byStart;
  let max = f.to !== undefined ? String(f.to) : '+inf';
  const min = f.from !== undefined ? String(f.from) : '-inf';
  let after: { score: number; id: string } | null = null;
  if (f.cursor) {
    const i = f.cursor.indexOf(':');
    after = { score: Number(f.cursor.slice(0, i)), id: f.cursor.slice(i + 1) };
    if (f.to === undefined || after.score < f.to) max = String(after.score);
  }
  const q = f.q?.toLowerCase();
  const out: Array<{ s: SessionSummary; score: number }> = [];
  let offset = 0;
  for (;;) {
    const page = await redis.zrange(index, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, PAGE_SCAN, 'WITHSCORES');
    if (page.length === 0) break;
    offset += page.length / 2;
    const ids: Array<{ id: string; score: number }> = [];
    for (let i = 0; i < page.length; i += 2) {
      const id = page[i];
      const score = Number(page[i + 1]);
      // Ties on the start time are ordered by id, descending: skip what the previous page already returned.
      if (after && score === after.score && id >= after.id) continue;
      ids.push({ id, score });
    }
    const metas = await runCommands(
      redis,
      ids.flatMap(({ id }) => [
        ['hgetall', keys.meta(id)],
        ['xlen', keys.events(id)],
      ]),
    );
    const matched: Array<{ s: SessionSummary; score: number }> = [];
    ids.forEach(({ score }, i) => {
      const s = summaryFromMeta(hashReply(metas[2 * i]), metas[2 * i + 1] as number);
      if (!s) return;
      if (f.agent !== undefined && s.agent !== f.agent) return;
      if (f.target !== undefined && s.target !== f.target) return;
      if (f.protocol !== undefined && s.protocol !== f.protocol) return;
      if (f.decision !== undefined && !s.decisions.includes(f.decision)) return;
      matched.push({ s, score });
    });
    if (q) {
      const texts = await runCommands(
        redis,
        matched.map((m) => ['hvals', keys.text(m.s.id)]),
      );
      matched.forEach((m, i) => {
        const vals = (texts[i] ?? []) as string[];
        if (vals.some((t) => t.toLowerCase().includes(q))) out.push(m);
      });
    } else {
      out.push(...matched);
    }
    if (out.length > limit || page.length / 2 < PAGE_SCAN) break;
  }
  const sessions = out.slice(0, limit);
  const last = out.length > limit ? sessions[limit - 1] : null;
  return { sessions: sessions.map((m) => m.s), nextCursor: last ? `${last.score}:${last.s.id}` : null };
}

/** HGETALL's reply as a record: ioredis converts it for its own method, not for a raw call (a flat array). */
function hashReply(reply: unknown): Record<string, string> {
  if (!Array.isArray(reply)) return (reply ?? {}) as Record<string, string>;
  const out: Record<string, string> = {};
  for (let i = 0; i < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

export interface StoredEvent {
  seq: number;
  event: RecordingEvent | null;
  raw: string;
}

/** A session's stored events in stream order, read in pages; from `fromSeq` (inclusive). */
export async function* readEvents(
  redis: RedisClient,
  id: string,
  fromSeq = 1,
  pageSize = 1000,
): AsyncGenerator<StoredEvent> {
  let start = fromSeq <= 1 ? '-' : entryId(fromSeq);
  for (;;) {
    const page = (await redis.xrange(keys.events(id), start, '+', 'COUNT', pageSize)) as Array<[string, string[]]>;
    for (const [eid, fields] of page) yield parseEntry(eid, fields);
    if (page.length < pageSize) return;
    start = `(${page[page.length - 1][0]}`;
  }
}

export function parseEntry(eid: string, fields: string[]): StoredEvent {
  const i = fields.indexOf('e');
  const raw = i >= 0 ? fields[i + 1] : '';
  let event: RecordingEvent | null = null;
  try {
    const parsed = JSON.parse(raw) as RecordingEvent;
    if (parsed && typeof parsed === 'object' && typeof parsed.seq === 'number') event = parsed;
  } catch {
    event = null;
  }
  return { seq: seqOfEntryId(eid), event, raw };
}

/**
 * Recomputes the chain over every stored event and checks that it ends exactly at the session's recorded tip, and,
 * given the anchor key, that the tip carries its anchor (anchor.ts). Without the key the tip is checked unkeyed: a
 * forger who also rewrites the metadata is then not detected (`anchored: false` says so).
 */
export async function verifySession(redis: RedisClient, id: string, anchorKey?: Buffer | null): Promise<VerifyResult> {
  // One consistent view of a session that may still be written: its tip and its stream's last generated id are read
  // in one transaction (an append moves both in one script), and only the events up to them are checked.
  const { tip, generatedSeq } = await endOf(redis, id);
  const upTo = Math.max(tip?.seq ?? 0, generatedSeq);
  const v = new ChainVerifier();
  for await (const e of readEvents(redis, id)) {
    if (e.seq > upTo) break;
    v.add(e.event, e.seq);
  }
  if (anchorKey && tip) {
    const anchor = tip.anchor;
    if (!anchor)
      v.failTip(tip.seq, `the session's recorded end (seq ${tip.seq}) has no anchor: it was not written with the key`);
    else if (!anchorMatches(anchorKey, id, tip.seq, tip.hash, anchor))
      v.failTip(
        tip.seq,
        `the session's recorded end (seq ${tip.seq}) does not match its anchor: it was moved without the key`,
      );
  }
  return v.finish(tip, generatedSeq, Boolean(anchorKey));
}

/**
 * The session's recorded end and the last id its stream generated (which survives XDEL), read together; both keys
 * share the session's hash slot.
 */
async function endOf(redis: RedisClient, id: string): Promise<{ tip: Tip | null; generatedSeq: number }> {
  const res = (await redis.multi().hget(keys.meta(id), 'tip').xinfo('STREAM', keys.events(id)).exec()) ?? [];
  const [tipErr, tipRaw] = res[0] ?? [null, null];
  if (tipErr) throw tipErr;
  const [infoErr, info] = res[1] ?? [null, null];
  let generatedSeq = 0; // no stream (XINFO answers an error)
  if (!infoErr && Array.isArray(info)) {
    const i = info.indexOf('last-generated-id');
    if (i >= 0) generatedSeq = seqOfEntryId(String(info[i + 1]));
  }
  return { tip: parseTip(tipRaw as string | null), generatedSeq };
}

/**
 * Follows a session live: yields stored events from `fromSeq`, then new ones as they are written, until the
 * session.end event or the signal aborts. Uses its own connection, since XREAD BLOCK holds one.
 */
export async function* tailEvents(
  redis: RedisClient,
  id: string,
  signal: AbortSignal,
  fromSeq = 1,
): AsyncGenerator<StoredEvent> {
  const conn = blockingConnection(redis);
  const onAbort = (): void => {
    conn.disconnect();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let last = fromSeq <= 1 ? '0-0' : `${fromSeq - 1}-0`;
    while (!signal.aborted) {
      let res: Array<[string, Array<[string, string[]]>]> | null;
      try {
        res = (await conn.xread('COUNT', 500, 'BLOCK', 5_000, 'STREAMS', keys.events(id), last)) as typeof res;
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      if (!res) {
        // No new event within the block time: stop if the session ended while nothing was pending.
        if (
          (await conn.hget(keys.meta(id), 'status')) === 'ended'
          && (await conn.xrevrange(keys.events(id), '+', '-', 'COUNT', 1))[0]?.[0] === last
        )
          return;
        continue;
      }
      for (const [eid, fields] of res[0][1]) {
        last = eid;
        const e = parseEntry(eid, fields);
        yield e;
        if (e.event?.type === 'session.end') return;
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    conn.disconnect();
  }
}
