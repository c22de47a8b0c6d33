/**
 * The auditor's API: sessions by filter, one session's events, chain verification, exports and a live tail.
 * Only auditors and admins may read recordings. Query parameters are checked here (the route table's schemas
 * describe bodies and replies).
 */
import type { RedisClient } from '../common/redis-client.ts';
import { AdminError } from '../admin/errors.ts';
import type { AdminRequest, AdminRoute, JsonSchema } from '../admin/route.ts';
import type { Role } from '../identity/principal.ts';
import type { Protocol } from '../policy/context.ts';
import { toAsciicast } from './asciicast.ts';
import { DECISION_ACTIONS } from './keys.ts';
import { getSession, listSessions, readEvents, tailEvents, verifySession, type SessionFilter } from './queries.ts';
import { RECORDING_EVENT_TYPES, type RecordingEvent, type SessionSummary } from './types.ts';

const ROLES: readonly Role[] = ['auditor', 'admin'];
const TAG = 'sessions';
const PROTOCOLS: readonly Protocol[] = ['kubernetes', 'postgres', 'ssh'];

const SESSION_SCHEMA: JsonSchema = {
  type: 'object',
  required: [
    'id',
    'agent',
    'target',
    'protocol',
    'status',
    'startedAt',
    'endedAt',
    'lastEventAt',
    'events',
    'decisions',
    'terminal',
    'truncated',
  ],
  properties: {
    id: { type: 'string' },
    agent: { type: 'string' },
    target: { type: 'string' },
    protocol: { type: 'string', enum: PROTOCOLS },
    status: { type: 'string', enum: ['open', 'ended'] },
    startedAt: { type: 'string', format: 'date-time' },
    endedAt: { type: ['string', 'null'], format: 'date-time' },
    lastEventAt: { type: ['string', 'null'], format: 'date-time' },
    events: { type: 'integer', minimum: 0 },
    decisions: { type: 'array', items: { type: 'string', enum: DECISION_ACTIONS } },
    terminal: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          required: ['width', 'height'],
          properties: { width: { type: 'integer' }, height: { type: 'integer' } },
        },
      ],
    },
    truncated: { type: 'boolean' },
  },
};

export const RECORDING_EVENT_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['v', 'type', 'sessionId', 'agent', 'target', 'protocol', 'seq', 'time', 'prevHash', 'hash', 'data'],
  properties: {
    v: { const: 1 },
    type: { type: 'string', enum: RECORDING_EVENT_TYPES },
    sessionId: { type: 'string' },
    agent: { type: 'string' },
    target: { type: 'string' },
    protocol: { type: 'string', enum: PROTOCOLS },
    requestId: { type: 'string' },
    seq: { type: 'integer', minimum: 1 },
    time: { type: 'string', format: 'date-time' },
    prevHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    data: { type: 'object' },
  },
};

const VERIFY_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['valid', 'events', 'anchored'],
  properties: {
    valid: { type: 'boolean' },
    events: { type: 'integer', minimum: 0 },
    firstBadSeq: { type: 'integer', minimum: 1 },
    reason: { type: 'string' },
    anchored: {
      type: 'boolean',
      description:
        "whether the session's recorded end was checked against its keyed anchor (truncation and appended events detected)",
    },
  },
};

export interface RecordingRouteDeps {
  redis: RedisClient;
  /** The recorders' anchor key: verify checks each session's recorded end against it. */
  anchorKey?: Buffer | null;
}

export function recordingRoutes(deps: RecordingRouteDeps): AdminRoute[] {
  const { redis } = deps;
  const mustExist = async (id: string): Promise<SessionSummary> => {
    const s = await getSession(redis, id);
    if (!s) throw new AdminError('not_found', `no recorded session ${JSON.stringify(id)}`);
    return s;
  };
  return [
    {
      method: 'GET',
      path: '/v1/sessions',
      roles: ROLES,
      tag: TAG,
      summary:
        'List recorded sessions, newest first. Query: agent, target, protocol, from, to (RFC 3339 or ms), decision (allow|deny|require_approval), q (text in actions), limit (1-1000), cursor.',
      query: {
        agent: { description: 'only sessions of this agent', schema: { type: 'string' } },
        target: { description: 'only sessions on this target', schema: { type: 'string' } },
        protocol: { description: 'only this protocol', schema: { type: 'string', enum: [...PROTOCOLS] } },
        from: { description: 'started at or after (RFC 3339 or epoch ms)', schema: { type: 'string' } },
        to: { description: 'started at or before (RFC 3339 or epoch ms)', schema: { type: 'string' } },
        decision: {
          description: 'with at least one such decision',
          schema: { type: 'string', enum: [...DECISION_ACTIONS] },
        },
        q: { description: 'full-text search in the recorded actions', schema: { type: 'string' } },
        limit: { description: 'page size (1-1000)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        cursor: { description: 'the next page, from nextCursor', schema: { type: 'string' } },
      },
      response: {
        type: 'object',
        required: ['sessions', 'nextCursor'],
        properties: { sessions: { type: 'array', items: SESSION_SCHEMA }, nextCursor: { type: ['string', 'null'] } },
      },
      async handler(req) {
        return { body: await listSessions(redis, filterOf(req.query)) };
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/{id}',
      roles: ROLES,
      tag: TAG,
      summary: 'One recorded session: who, where, when, how many events, which decisions.',
      response: SESSION_SCHEMA,
      async handler(req) {
        return { body: await mustExist(req.params.id) };
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/{id}/events',
      query: {
        fromSeq: { description: 'first event (default 1)', schema: { type: 'integer', minimum: 1 } },
        limit: {
          description: 'page size (1-10000, default 1000)',
          schema: { type: 'integer', minimum: 1, maximum: 10000 },
        },
      },
      roles: ROLES,
      tag: TAG,
      summary: "A session's events in order. Query: fromSeq (default 1), limit (1-10000, default 1000).",
      response: {
        type: 'object',
        required: ['events', 'nextSeq'],
        properties: {
          events: { type: 'array', items: RECORDING_EVENT_SCHEMA },
          nextSeq: { type: ['integer', 'null'] },
        },
      },
      async handler(req) {
        await mustExist(req.params.id);
        const fromSeq = intParam(req, 'fromSeq', 1, 1, Number.MAX_SAFE_INTEGER);
        const limit = intParam(req, 'limit', 1000, 1, 10_000);
        const events: RecordingEvent[] = [];
        let nextSeq: number | null = null;
        for await (const e of readEvents(redis, req.params.id, fromSeq, Math.min(limit + 1, 1000))) {
          if (events.length === limit) {
            nextSeq = e.seq;
            break;
          }
          if (e.event) events.push(e.event);
        }
        return { body: { events, nextSeq } };
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/{id}/verify',
      roles: ROLES,
      tag: TAG,
      summary:
        "Recompute a session's hash chain and check it ends at the session's anchored tip: valid, or the first bad sequence number and why.",
      response: VERIFY_SCHEMA,
      async handler(req) {
        await mustExist(req.params.id);
        return { body: await verifySession(redis, req.params.id, deps.anchorKey) };
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/{id}/export',
      query: {
        format: {
          description: 'jsonl (default) or asciicast',
          schema: { type: 'string', enum: ['jsonl', 'asciicast'] },
        },
      },
      roles: ROLES,
      tag: TAG,
      summary:
        'Export a session, streamed: format=jsonl (the stored events, one per line) or format=asciicast (terminal sessions; asciicast v2 for asciinema play).',
      async handler(req) {
        const id = req.params.id;
        const session = await mustExist(id);
        const format = req.query.get('format') ?? 'jsonl';
        if (format === 'jsonl') {
          return {
            contentType: 'application/x-ndjson',
            filename: `${safeName(id)}.jsonl`,
            stream: jsonLines(redis, id),
          };
        }
        if (format === 'asciicast') {
          if (!session.terminal)
            throw new AdminError(
              'invalid_request',
              `session ${JSON.stringify(id)} is not a terminal session; asciicast export is for terminal (ssh shell) sessions`,
            );
          return {
            contentType: 'application/x-asciicast',
            filename: `${safeName(id)}.cast`,
            stream: toAsciicast(eventsOf(redis, id)),
          };
        }
        throw new AdminError('invalid_request', 'format must be jsonl or asciicast');
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/{id}/tail',
      query: {
        fromSeq: { description: 'first event (default 1)', schema: { type: 'integer', minimum: 1 } },
      },
      roles: ROLES,
      tag: TAG,
      summary:
        'Follow a session live as JSON Lines (one event per line) from fromSeq (default 1); ends at session.end or when the client disconnects.',
      async handler(req) {
        await mustExist(req.params.id);
        const fromSeq = intParam(req, 'fromSeq', 1, 1, Number.MAX_SAFE_INTEGER);
        return { contentType: 'application/x-ndjson', stream: tailLines(redis, req.params.id, req.signal, fromSeq) };
      },
    },
  ];
}

async function* jsonLines(redis: RedisClient, id: string): AsyncGenerator<string> {
  // The stored bytes, unparsed: the export is exactly what verify checks.
  for await (const e of readEvents(redis, id)) yield `${e.raw}\n`;
}

async function* eventsOf(redis: RedisClient, id: string): AsyncGenerator<RecordingEvent> {
  for await (const e of readEvents(redis, id)) if (e.event) yield e.event;
}

async function* tailLines(
  redis: RedisClient,
  id: string,
  signal: AbortSignal,
  fromSeq: number,
): AsyncGenerator<string> {
  for await (const e of tailEvents(redis, id, signal, fromSeq)) yield `${e.raw}\n`;
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

function intParam(req: AdminRequest, name: string, dflt: number, min: number, max: number): number {
  const raw = req.query.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new AdminError('invalid_request', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

function timeParam(q: URLSearchParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n))
    throw new AdminError('invalid_request', `${name} must be an RFC 3339 time or milliseconds since the epoch`);
  return n;
}

export function filterOf(q: URLSearchParams): SessionFilter {
  const f: SessionFilter = {};
  for (const k of ['agent', 'target', 'q', 'cursor'] as const) {
    const v = q.get(k);
    if (v !== null && v !== '') f[k] = v;
  }
  const protocol = q.get('protocol');
  if (protocol) {
    if (!(PROTOCOLS as readonly string[]).includes(protocol))
      throw new AdminError('invalid_request', `protocol must be one of ${PROTOCOLS.join(', ')}`);
    f.protocol = protocol as Protocol;
  }
  const decision = q.get('decision');
  if (decision) {
    if (!(DECISION_ACTIONS as readonly string[]).includes(decision))
      throw new AdminError('invalid_request', `decision must be one of ${DECISION_ACTIONS.join(', ')}`);
    f.decision = decision as SessionFilter['decision'];
  }
  f.from = timeParam(q, 'from');
  f.to = timeParam(q, 'to');
  if (f.from !== undefined && f.to !== undefined && f.from > f.to)
    throw new AdminError('invalid_request', 'from must not be after to');
  const limit = q.get('limit');
  if (limit) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000)
      throw new AdminError('invalid_request', 'limit must be an integer from 1 to 1000');
    f.limit = n;
  }
  if (f.cursor !== undefined && !/^-?\d+(\.\d+)?:./.test(f.cursor))
    throw new AdminError('invalid_request', 'cursor is not one this API returned');
  return f;
}
