/**
 * Redis key layout of recordings. Per session: a Stream of events (entry id `<seq>-0`, one field `e` holding the
 * event's JSON), a metadata hash (which also holds the chain's tip and its keyed anchor), and a hash of action texts
 * for free-text search. A session's keys carry the session id as a hash tag (`{id}`), so they share one Redis Cluster
 * slot and the append script, which touches only them, runs unchanged on a cluster. Indexes are sorted sets of
 * session ids scored by the session's start time (ms), except `active`, scored by the last event's time; they are
 * written outside the script (one key each, any slot).
 */
const P = 'pc:rec:';

export const keys = {
  events: (sessionId: string) => `${P}s:{${sessionId}}:events`,
  meta: (sessionId: string) => `${P}s:{${sessionId}}:meta`,
  text: (sessionId: string) => `${P}s:{${sessionId}}:text`,
  byStart: `${P}idx:start`,
  byActivity: `${P}idx:active`,
  byAgent: (agent: string) => `${P}idx:agent:${agent}`,
  byTarget: (target: string) => `${P}idx:target:${target}`,
  byProtocol: (protocol: string) => `${P}idx:protocol:${protocol}`,
  byDecision: (action: string) => `${P}idx:decision:${action}`,
};

export const DECISION_ACTIONS = ['allow', 'deny', 'require_approval'] as const;

/** Stream entry id of an event: the sequence number, so a retried XADD of the same event is refused, not doubled. */
export function entryId(seq: number): string {
  return `${seq}-0`;
}

export function seqOfEntryId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}
