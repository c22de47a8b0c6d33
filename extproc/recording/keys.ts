/**
 * Redis key layout of recordings. Per session: a Stream of events (entry id `<seq>-0`, one field `e` holding the
 * event's JSON), a metadata hash, and a hash of action texts for free-text search. Indexes are sorted sets of
 * session ids scored by the session's start time (ms), except `active`, scored by the last event's time.
 */
const P = 'pc:rec:';

export const keys = {
  events: (sessionId: string) => `${P}s:${sessionId}:events`,
  meta: (sessionId: string) => `${P}s:${sessionId}:meta`,
  text: (sessionId: string) => `${P}s:${sessionId}:text`,
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
