/**
 * The write side of the store: one Lua script call appends a batch's events to their sessions, each session's part
 * only if the session's chain still ends where this writer chained from. Compared with a pipeline of single commands
 * it costs the client one command instead of thousands (ioredis spends microseconds and several allocations per
 * command and per argument), and Redis applies it atomically: the AOF holds all of it or none.
 *
 * The tip of a session's chain (lastSeq, lastHash, and the keyed anchor of the two, anchor.ts) lives in its metadata
 * hash. Per session the script compares that tip with the one the events were chained from: when equal, it XADDs the
 * events and moves the tip (and applies the session's other metadata commands); when not, another writer appended
 * first, and the script appends nothing for that session and answers the current tip, from which the writer chains
 * the events again (recorder-batch.ts). An append whose first event is already stored, byte for byte (its hash), is
 * a retry whose reply was lost: answered as done. Every key a call touches belongs to the sessions in it (hash-tagged
 * by session id, keys.ts): on a Redis Cluster the writer sends one call per slot.
 *
 * Arguments: KEYS[1] is the first session's metadata key (it routes the call on a cluster). ARGV[1] packs the events
 * as lines `key \n id \n json \n …` (JSON text never holds a raw newline, and session ids are refused if they do), the
 * bytes written when each event was chained (event-slab.ts). ARGV[2] is a JSON array with one part per session:
 * metadata key, events key, expected tip (seq, hash), first entry id and hash, new tip (seq, hash), anchor ('' for
 * none), metadata fields to set with the tip, fields to set if absent, search texts, and the search text key.
 * Returns, flat, for each session not simply appended: its 1-based section number, then `dup`, or `tip` with the
 * current tip's seq, hash and anchor, or `err` with a message.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { packEvents, type SealedEvent } from './event-slab.ts';
import { GENESIS_HASH } from './hash-chain.ts';

const SCRIPT = `
local out = {}
local ok = {}
local first = {}
local sections = cjson.decode(ARGV[2])
for n, s in ipairs(sections) do
  local meta, events = s[1], s[2]
  local tip = redis.call('HMGET', meta, 'lastSeq', 'lastHash', 'anchor')
  if (tip[1] or '0') == s[3] and (tip[2] or '${GENESIS_HASH}') == s[4] then
    ok[events] = n
    first[events] = true
  else
    local stored = redis.call('XRANGE', events, s[5], s[5])[1]
    if stored and string.sub(stored[2][2], -66, -3) == s[6] then
      out[#out + 1] = n
      out[#out + 1] = 'dup'
    else
      out[#out + 1] = n
      out[#out + 1] = 'tip'
      out[#out + 1] = tip[1] or '0'
      out[#out + 1] = tip[2] or '${GENESIS_HASH}'
      out[#out + 1] = tip[3] or ''
    end
  end
end
local blob = ARGV[1]
local len = #blob
local pos = 1
while pos <= len do
  local e1 = string.find(blob, '\\n', pos, true)
  local e2 = string.find(blob, '\\n', e1 + 1, true)
  local e3 = string.find(blob, '\\n', e2 + 1, true) or (len + 1)
  local key = string.sub(blob, pos, e1 - 1)
  if ok[key] then
    if first[key] then
      -- The tip said the stream ends before this id: a stream holding more was written around the tip.
      first[key] = nil
      local r = redis.pcall('XADD', key, string.sub(blob, e1 + 1, e2 - 1), 'e', string.sub(blob, e2 + 1, e3 - 1))
      if type(r) == 'table' and r.err then
        out[#out + 1] = ok[key]
        out[#out + 1] = 'err'
        out[#out + 1] = 'the stream holds entries beyond the chain tip: ' .. r.err
        ok[key] = nil
      end
    else
      redis.call('XADD', key, string.sub(blob, e1 + 1, e2 - 1), 'e', string.sub(blob, e2 + 1, e3 - 1))
    end
  end
  pos = e3 + 1
end
for n, s in ipairs(sections) do
  if ok[s[2]] == n then
    local meta = s[1]
    redis.call('HSET', meta, 'lastSeq', s[7], 'lastHash', s[8], unpack(s[10]))
    if s[9] ~= '' then redis.call('HSET', meta, 'anchor', s[9]) end
    local setnx = s[11]
    for k = 1, #setnx, 2 do redis.call('HSETNX', meta, setnx[k], setnx[k + 1]) end
    if #s[12] > 0 then redis.call('HSET', s[13], unpack(s[12])) end
  end
end
return out
`;

const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** EVALSHA, falling back to EVAL once when Redis does not have the script cached (first use, or after a restart). */
async function runScript(redis: Redis, keyThenArgs: Array<string | Buffer>): Promise<unknown> {
  try {
    return await redis.evalsha(SCRIPT_SHA, 1, keyThenArgs);
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
    return redis.eval(SCRIPT, 1, keyThenArgs);
  }
}

/** One session's part of an append: where its chain must stand, where it will stand, and its metadata. */
export interface SessionAppend {
  metaKey: string;
  eventsKey: string;
  textKey: string;
  prevSeq: number;
  prevHash: string;
  firstSeq: number;
  firstHash: string;
  lastSeq: number;
  lastHash: string;
  /** The anchor of (lastSeq, lastHash); '' when no anchor key is configured. */
  anchor: string;
  /** Metadata fields set with the tip (field, value, …). */
  set: string[];
  /** Metadata fields set only if absent (field, value, …). */
  setIfAbsent: string[];
  /** Search text of the session's actions (seq, text, …). */
  text: string[];
}

/** What became of a session's part: appended (or found already appended), or not, and why. */
export type AppendOutcome =
  | { kind: 'appended' }
  | { kind: 'moved'; tipSeq: number; tipHash: string; tipAnchor: string }
  | { kind: 'refused'; error: string };

/**
 * Appends these sealed events (in this order) and their sessions' parts (every event belongs to one of them) in one
 * script call; returns each session's outcome, in the order given.
 */
export async function appendEvents(
  redis: Redis,
  events: ReadonlyArray<Pick<SealedEvent, 'slab' | 'start' | 'end'>>,
  sessions: SessionAppend[],
): Promise<AppendOutcome[]> {
  // The sessions' parts travel as one JSON argument (decoded by Redis' cjson): per argument, ioredis costs more
  // than the encoding does.
  const parts = JSON.stringify(
    sessions.map((a) => [
      a.metaKey,
      a.eventsKey,
      String(a.prevSeq),
      a.prevHash,
      `${a.firstSeq}-0`,
      a.firstHash,
      String(a.lastSeq),
      a.lastHash,
      a.anchor,
      a.set,
      a.setIfAbsent,
      a.text,
      a.textKey,
    ]),
  );
  const res = (await runScript(redis, [sessions[0].metaKey, packEvents(events), parts])) as Array<number | string>;
  const out: AppendOutcome[] = sessions.map(() => ({ kind: 'appended' }));
  for (let i = 0; i < res.length; ) {
    const at = Number(res[i]) - 1;
    const what = String(res[i + 1]);
    if (what === 'dup') i += 2;
    else if (what === 'tip') {
      out[at] = {
        kind: 'moved',
        tipSeq: Number(res[i + 2]),
        tipHash: String(res[i + 3]),
        tipAnchor: String(res[i + 4]),
      };
      i += 5;
    } else {
      out[at] = { kind: 'refused', error: String(res[i + 2]) };
      i += 3;
    }
  }
  return out;
}
