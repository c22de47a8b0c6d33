/**
 * Approval requests in Redis. Every write is a compare-and-set in one Lua script, so the state machine stays in
 * TypeScript (state-machine.ts) and Redis only guarantees that a change applies to the revision it was computed
 * from: of two concurrent retries that both read an approved once grant, exactly one moves it to consumed.
 *
 * Keys (prefix `portcullis:{approvals}:` by default; on a Redis Cluster the scripts below touch the request, its cover and
 * the three indexes at once, so the prefix carries one hash tag and every approvals key lives in one slot):
 *   req:{id}        hash {doc: JSON, rev, state}
 *   cover:{digest}  id of the latest request for an action (once: agent+target+fingerprint; window: agent+target+rule)
 *   all             zset id → createdAt ms (listing)
 *   pending         zset id → createdAt ms (listing pending requests)
 *   deadlines       zset id → ms when the request or its grant expires (the sweeper's work list)
 *   events          pub/sub channel: {"id","state"} after every write (waitForDecision)
 */
import type { RedisClient } from '../common/redis-client.ts';
import type { ApprovalRequest } from './types.ts';
import { isFinal } from './state-machine.ts';

// KEYS: cover, req, all, pending, deadlines. ARGV: expected current id ('' = none), id, doc, state, createdAt ms,
// deadline ms, channel. Returns {1} when created, {0, current id or ''} when the cover moved on meanwhile.
const CREATE = `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return {0, cur} end
redis.call('HSET', KEYS[2], 'doc', ARGV[3], 'rev', 1, 'state', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[2])
redis.call('PUBLISH', ARGV[7], cjson.encode({id = ARGV[2], state = ARGV[4]}))
return {1, ARGV[2]}
`;

// KEYS: req, pending, deadlines. ARGV: id, expected rev, doc, state, deadline ms ('' = none), retention ms ('' = keep),
// channel. Returns 1 when written, 0 when the revision changed (or the request is gone) since it was read.
const SAVE = `
local rev = redis.call('HGET', KEYS[1], 'rev')
if rev ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'rev', tonumber(rev) + 1, 'state', ARGV[4])
if ARGV[4] ~= 'pending' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[1]) else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
if ARGV[6] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
redis.call('PUBLISH', ARGV[7], cjson.encode({id = ARGV[1], state = ARGV[4]}))
return 1
`;

export const APPROVALS_PREFIX = 'portcullis:{approvals}:';

export interface StoredRequest {
  req: ApprovalRequest;
  rev: string;
}

export interface ApprovalStore {
  readonly channel: string;
  pointer(coverKey: string): Promise<string | null>;
  get(id: string): Promise<StoredRequest | null>;
  getMany(ids: string[]): Promise<StoredRequest[]>;
  /** Creates `req` and points the cover at it, unless the cover no longer points at `expected`. */
  create(
    coverKey: string,
    expected: string | null,
    req: ApprovalRequest,
  ): Promise<{ created: true } | { created: false; current: string | null }>;
  /** Writes `next` if the request is still at revision `rev`. */
  save(next: ApprovalRequest, rev: string): Promise<boolean>;
  /** Ids whose request or grant deadline is at or before nowMs. */
  due(nowMs: number, max: number): Promise<string[]>;
  /** Ids, most recent first. */
  page(which: 'all' | 'pending', offset: number, count: number): Promise<string[]>;
  /** How many requests the pending index holds (overdue ones until the sweeper expires them). */
  pendingCount(): Promise<number>;
  /** Drops ids whose request is gone (retention) from the listing indexes. */
  forget(ids: string[]): Promise<void>;
}

/** When a request's next deadline is, by state: a pending request expires, an approved grant ends. */
export function deadlineOf(req: ApprovalRequest): number | null {
  if (req.state === 'pending') return Date.parse(req.expiresAt);
  if (req.state === 'approved' && req.grantExpiresAt) return Date.parse(req.grantExpiresAt);
  return null;
}

export function createApprovalStore(
  redis: RedisClient,
  opts: { prefix?: string; retentionSeconds?: number } = {},
): ApprovalStore {
  const p = opts.prefix ?? APPROVALS_PREFIX;
  if (!/\{[^}]+\}/.test(p)) throw new Error(`approvals key prefix ${p} must hold a hash tag ({…})`);
  const retentionMs = opts.retentionSeconds && opts.retentionSeconds > 0 ? String(opts.retentionSeconds * 1000) : '';
  const channel = `${p}events`;
  const reqKey = (id: string): string => `${p}req:${id}`;
  const parse = (h: Record<string, string>): StoredRequest | null =>
    h.doc ? { req: JSON.parse(h.doc) as ApprovalRequest, rev: h.rev } : null;

  return {
    channel,
    async pointer(coverKey) {
      return redis.get(`${p}cover:${coverKey}`);
    },
    async get(id) {
      return parse(await redis.hgetall(reqKey(id)));
    },
    async getMany(ids) {
      if (ids.length === 0) return [];
      const pipe = redis.pipeline();
      for (const id of ids) pipe.hgetall(reqKey(id));
      const res = (await pipe.exec()) ?? [];
      const out: StoredRequest[] = [];
      res.forEach(([err, h]) => {
        if (err) throw err;
        const s = parse(h as Record<string, string>);
        if (s) out.push(s);
      });
      return out;
    },
    async create(coverKey, expected, req) {
      const r = (await redis.eval(
        CREATE,
        5,
        `${p}cover:${coverKey}`,
        reqKey(req.id),
        `${p}all`,
        `${p}pending`,
        `${p}deadlines`,
        expected ?? '',
        req.id,
        JSON.stringify(req),
        req.state,
        Date.parse(req.createdAt),
        Date.parse(req.expiresAt),
        channel,
      )) as [number, string];
      return r[0] === 1 ? { created: true } : { created: false, current: r[1] || null };
    },
    async save(next, rev) {
      const deadline = deadlineOf(next);
      const r = await redis.eval(
        SAVE,
        3,
        reqKey(next.id),
        `${p}pending`,
        `${p}deadlines`,
        next.id,
        rev,
        JSON.stringify(next),
        next.state,
        deadline === null ? '' : String(deadline),
        isFinal(next.state) ? retentionMs : '',
        channel,
      );
      return r === 1;
    },
    async due(nowMs, max) {
      return redis.zrangebyscore(`${p}deadlines`, '-inf', nowMs, 'LIMIT', 0, max);
    },
    async page(which, offset, count) {
      return redis.zrevrange(`${p}${which}`, offset, offset + count - 1);
    },
    pendingCount: () => redis.zcard(`${p}pending`),
    async forget(ids) {
      if (ids.length === 0) return;
      await redis
        .multi()
        .zrem(`${p}all`, ...ids)
        .zrem(`${p}pending`, ...ids)
        .zrem(`${p}deadlines`, ...ids)
        .exec();
    },
  };
}
