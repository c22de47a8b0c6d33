/**
 * One `session.end` per session however many replicas served it. Each replica remembers the sessions it served and
 * finds them due (token expired, or idle by its own last sight of them); before recording the end it asks the store,
 * atomically in the session's metadata: has another replica ended it already, and for idleness, has the session had
 * activity since (its last event, appended by any replica, `lastEventAt`)? Only the replica whose claim succeeds
 * records `session.end`; the others learn the session ended, or when it was last active.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../common/redis-client.ts';
import { keys } from './keys.ts';

export type SessionEndReason = 'token-expired' | 'idle';

/** What the store answers a replica that found a session due. */
export type EndClaim =
  | { kind: 'claimed' }
  | { kind: 'ended' }
  /** Not idle after all: another replica saw it active at `lastActivity` (ms). */
  | { kind: 'active'; lastActivity: number };

export interface SessionEndClaims {
  claim(sessionId: string, reason: SessionEndReason, nowMs: number, idleMs: number): Promise<EndClaim>;
}

const SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'endClaimedAt') == 1 then return {'ended'} end
if ARGV[1] == 'idle' then
  local last = tonumber(redis.call('HGET', KEYS[1], 'lastEventAt') or '0')
  if tonumber(ARGV[2]) - last < tonumber(ARGV[3]) then return {'active', tostring(last)} end
end
redis.call('HSET', KEYS[1], 'endClaimedAt', ARGV[2])
return {'claimed'}
`;
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** The claims kept in each session's metadata hash (one key: one slot). */
export function sessionEndClaims(redis: RedisClient): SessionEndClaims {
  return {
    async claim(sessionId, reason, nowMs, idleMs) {
      const args = [keys.meta(sessionId), reason, String(nowMs), String(idleMs)];
      let res: string[];
      try {
        res = (await redis.evalsha(SCRIPT_SHA, 1, ...args)) as string[];
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        res = (await redis.eval(SCRIPT, 1, ...args)) as string[];
      }
      if (res[0] === 'active') return { kind: 'active', lastActivity: Number(res[1]) };
      return res[0] === 'ended' ? { kind: 'ended' } : { kind: 'claimed' };
    },
  };
}
