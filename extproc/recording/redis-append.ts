/**
 * The write side of the store: one Lua script call appends a batch's events to their sessions, each session's part
 * only if the session's chain still ends where this writer chained from. Compared with a pipeline of single commands
 * it costs the client one command instead of thousands (ioredis spends microseconds and several allocations per
 * command and per argument), and Redis applies it atomically: the AOF holds all of it or none.
 *
 * The check is the stream's own: entry ids are the seqs, and Redis takes an XADD only above the stream's last
 * generated id. A part chained from tip t starts at id t+1, so its first XADD succeeds exactly when nothing was ever
 * stored above t; the writer knew entry t (it appended it, or was told it is the tip), and entries never change, so the
 * part links to the stream's real last event. Then the rest of the part is added and the session's metadata set: the
 * new tip (seq, hash) with its keyed anchor (anchor.ts, tip.ts) and the session's other fields. When the first XADD
 * is refused, nothing of the part is written: if its first event is stored already, byte for byte (its hash), the
 * same append was applied before and its reply lost (a retry by the writer, or a command resent by the client
 * library after a reconnect), answered as done; otherwise another writer appended first, and the script answers the
 * stream's last entry (seq, hash) and the stored tip (for its anchor), from which the writer chains the events again
 * (recorder-batch.ts). A stream whose last entry is not its last generated id (entries removed from its end) is
 * answered as an error: no writer continues it. Every key a call touches belongs to the sessions in it (hash-tagged
 * by session id, keys.ts): on a Redis Cluster the writer sends one call per session.
 *
 * Arguments: KEYS[1] is the first session's metadata key (it routes the call on a cluster). ARGV[1] packs the events
 * as lines `key \n id \n json \n …` (JSON text never holds a raw newline, and session ids are refused if they do), the
 * bytes written when each event was chained (event-slab.ts); each session's events are in chain order. ARGV[2] is a
 * JSON array with one part per session: metadata key, events key, first entry id and hash, the fields to set (the new
 * tip and its anchor among them), fields to set if absent, search texts, and the search text key.
 * Returns, flat, for each session not appended: its 1-based part number, then `dup`, or `tip` with the last entry's
 * seq and hash and the stored tip field, or `err` with a message.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../common/redis-client.ts';
import { packEvents, type SealedEvent } from './event-slab.ts';
import { formatTip, parseTip } from './tip.ts';

const SCRIPT = `
local out = {}
local parts = cjson.decode(ARGV[2])
local first = {}
local ok = {}
for n, s in ipairs(parts) do first[s[2]] = n end
local function refused(n, s, key)
  local stored = redis.call('XRANGE', key, s[3], s[3])[1]
  if stored and string.sub(stored[2][2], -66, -3) == s[4] then
    out[#out + 1] = n
    out[#out + 1] = 'dup'
    return
  end
  local info = redis.call('XINFO', 'STREAM', key)
  local generated, last
  for k = 1, #info, 2 do
    if info[k] == 'last-generated-id' then generated = info[k + 1] end
    if info[k] == 'last-entry' then last = info[k + 1] end
  end
  out[#out + 1] = n
  if last and last[1] == generated then
    out[#out + 1] = 'tip'
    out[#out + 1] = string.match(last[1], '^%d+')
    out[#out + 1] = string.sub(last[2][2], -66, -3)
    out[#out + 1] = redis.call('HGET', s[1], 'tip') or ''
  else
    out[#out + 1] = 'err'
    out[#out + 1] = 'the stream has entries removed from its end (last generated id ' .. tostring(generated) .. ')'
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
    redis.call('XADD', key, string.sub(blob, e1 + 1, e2 - 1), 'e', string.sub(blob, e2 + 1, e3 - 1))
  elseif first[key] then
    local n = first[key]
    first[key] = nil
    local r = redis.pcall('XADD', key, string.sub(blob, e1 + 1, e2 - 1), 'e', string.sub(blob, e2 + 1, e3 - 1))
    if type(r) == 'table' and r.err then refused(n, parts[n], key) else ok[key] = n end
  end
  pos = e3 + 1
end
for key, n in pairs(ok) do
  local s = parts[n]
  redis.call('HSET', s[1], unpack(s[5]))
  local setnx = s[6]
  for k = 1, #setnx, 2 do redis.call('HSETNX', s[1], setnx[k], setnx[k + 1]) end
  if #s[7] > 0 then redis.call('HSET', s[8], unpack(s[7])) end
end
return out
`;

const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** EVALSHA, falling back to EVAL once when Redis does not have the script cached (first use, or after a restart). */
async function runScript(redis: RedisClient, keyThenArgs: Array<string | Buffer>): Promise<unknown> {
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
  redis: RedisClient,
  events: ReadonlyArray<Pick<SealedEvent, 'slab' | 'start' | 'end'>>,
  sessions: SessionAppend[],
): Promise<AppendOutcome[]> {
  // The sessions' parts travel as one JSON argument (decoded by Redis' cjson): per argument, ioredis costs more
  // than the encoding does.
  const parts = JSON.stringify(
    sessions.map((a) => [
      a.metaKey,
      a.eventsKey,
      `${a.firstSeq}-0`,
      a.firstHash,
      // The new tip with its anchor, set with the other fields in one HSET.
      ['tip', formatTip(a.lastSeq, a.lastHash, a.anchor), ...a.set],
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
        tipAnchor: parseTip(String(res[i + 4]))?.anchor ?? '',
      };
      i += 5;
    } else {
      out[at] = { kind: 'refused', error: String(res[i + 2]) };
      i += 3;
    }
  }
  return out;
}
