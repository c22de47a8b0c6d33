/**
 * Admin API endpoints of the approval workflow. The server has authenticated the caller (agent tokens never get
 * here) and checked the route's roles; the service checks the finer rules (group membership, self-approval).
 */
import { AdminError } from '../admin/errors.ts';
import type { AdminRoute, JsonSchema } from '../admin/route.ts';
import {
  APPROVAL_STATES,
  type ApprovalListFilter,
  type ApprovalRequest,
  type Approvals,
  type ApprovalState,
} from './types.ts';

const vote: JsonSchema = {
  type: 'object',
  required: ['by', 'name', 'at', 'reason'],
  properties: {
    by: { type: 'string' },
    name: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    reason: { type: ['string', 'null'] },
  },
};
const nullableVote: JsonSchema = { oneOf: [vote, { type: 'null' }] };
const dateTime = { type: 'string', format: 'date-time' };
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' };

export const APPROVAL_REQUEST_SCHEMA: JsonSchema = {
  type: 'object',
  required: [
    'id',
    'state',
    'agent',
    'target',
    'protocol',
    'sessionId',
    'summary',
    'fingerprint',
    'policy',
    'rule',
    'group',
    'grant',
    'minApprovals',
    'createdAt',
    'expiresAt',
    'approvals',
  ],
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: [...APPROVAL_STATES] },
    agent: { type: 'string' },
    agentGroups: { type: 'array', items: { type: 'string' } },
    agentOwner: { type: ['string', 'null'] },
    target: { type: 'string' },
    protocol: { type: 'string', enum: ['kubernetes', 'postgres', 'ssh'] },
    sessionId: { type: 'string' },
    summary: { type: 'string' },
    effect: { type: 'array', items: { type: 'string' } },
    fingerprint: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
    policy: { type: 'string' },
    policyVersion: { type: ['integer', 'null'] },
    rule: { type: 'string' },
    group: { type: 'string' },
    grant: { type: 'string', enum: ['once', 'window'] },
    windowSeconds: { type: 'integer' },
    minApprovals: { type: 'integer', minimum: 1 },
    ttlSeconds: { type: 'integer' },
    createdAt: dateTime,
    expiresAt: dateTime,
    approvals: { type: 'array', items: vote },
    denial: nullableVote,
    revocation: nullableVote,
    decidedAt: nullableDateTime,
    grantExpiresAt: nullableDateTime,
    consumedAt: nullableDateTime,
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          from: { type: 'string' },
          to: { type: 'string' },
          at: dateTime,
          by: { type: ['string', 'null'] },
        },
      },
    },
  },
};

const REASON_BODY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 2000, description: 'Why; recorded and sent in notifications.' } },
};

function reasonOf(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body))
    throw new AdminError('invalid_request', 'the body must be an object {reason?}');
  const extra = Object.keys(body).filter((k) => k !== 'reason');
  if (extra.length) throw new AdminError('invalid_request', `unknown field(s): ${extra.join(', ')}`);
  const reason = (body as { reason?: unknown }).reason;
  if (reason === undefined) return undefined;
  if (typeof reason !== 'string' || reason.length > 2000)
    throw new AdminError('invalid_request', 'reason must be a string of at most 2000 characters');
  return reason;
}

function filterOf(q: URLSearchParams): ApprovalListFilter {
  const f: ApprovalListFilter = {};
  const state = q.get('state');
  if (state && state !== 'all') {
    if (!APPROVAL_STATES.includes(state as ApprovalState)) {
      throw new AdminError('invalid_request', `state must be one of: all, ${APPROVAL_STATES.join(', ')}`);
    }
    f.state = state as ApprovalState;
  }
  const limit = q.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000)
      throw new AdminError('invalid_request', 'limit must be an integer from 1 to 1000');
    f.limit = n;
  }
  const agent = q.get('agent');
  if (agent) f.agent = agent;
  const target = q.get('target');
  if (target) f.target = target;
  return f;
}

export function approvalRoutes(deps: { approvals: Approvals }): AdminRoute[] {
  const { approvals } = deps;
  const decision = (
    verb: 'approve' | 'deny' | 'revoke',
    roles: AdminRoute['roles'],
    summary: string,
    act: (id: string, req: Parameters<AdminRoute['handler']>[0]) => Promise<ApprovalRequest>,
  ): AdminRoute => ({
    method: 'POST',
    path: `/v1/approvals/{id}/${verb}`,
    roles,
    summary,
    tag: 'approvals',
    request: REASON_BODY,
    response: APPROVAL_REQUEST_SCHEMA,
    async handler(req) {
      return { body: await act(req.params.id, req) };
    },
  });

  return [
    {
      method: 'GET',
      path: '/v1/approvals',
      query: {
        state: {
          description: 'pending (default), approved, denied, expired, revoked, consumed or all',
          schema: { type: 'string' },
        },
        agent: { description: 'only requests of this agent', schema: { type: 'string' } },
        target: { description: 'only requests for this target', schema: { type: 'string' } },
        limit: {
          description: 'at most this many (1-1000, default 100)',
          schema: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
      roles: ['approver', 'admin', 'auditor'],
      summary:
        'List approval requests, most recent first (approvers see those of their groups). Query: state (pending, …, all), agent, target, limit.',
      tag: 'approvals',
      response: {
        type: 'object',
        required: ['items'],
        properties: { items: { type: 'array', items: APPROVAL_REQUEST_SCHEMA } },
      },
      async handler(req) {
        return { body: { items: await approvals.list(filterOf(req.query), req.principal) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/approvals/{id}',
      roles: ['approver', 'admin', 'auditor'],
      summary: 'Show one approval request with its votes and history.',
      tag: 'approvals',
      response: APPROVAL_REQUEST_SCHEMA,
      async handler(req) {
        return { body: await approvals.get(req.params.id, req.principal) };
      },
    },
    decision(
      'approve',
      ['approver'],
      "Approve a pending request (needs the approver role and membership of its group; never your own agent's request).",
      (id, req) => approvals.approve(id, req.principal, reasonOf(req.body)),
    ),
    decision('deny', ['approver'], 'Deny a pending request; one denial denies it.', (id, req) =>
      approvals.deny(id, req.principal, reasonOf(req.body)),
    ),
    decision(
      'revoke',
      ['approver', 'admin'],
      'Revoke a pending request or an approved grant (a window grant stops covering actions at once).',
      (id, req) => approvals.revoke(id, req.principal, reasonOf(req.body)),
    ),
  ];
}
