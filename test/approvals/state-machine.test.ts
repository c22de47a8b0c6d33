import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canTransition, IllegalTransitionError, isFinal, transition } from '../../extproc/approvals/state-machine.ts';
import { APPROVAL_STATES, type ApprovalRequest, type ApprovalState } from '../../extproc/approvals/types.ts';

function req(state: ApprovalState, grant: 'once' | 'window' = 'once'): ApprovalRequest {
  return {
    id: 'apr_1',
    state,
    agent: 'a',
    agentGroups: [],
    agentOwner: null,
    target: 't',
    protocol: 'ssh',
    sessionId: 's',
    summary: 'rm -rf /tmp/x',
    fingerprint: 'sha256:00',
    policy: 'p',
    policyVersion: 1,
    rule: 'r',
    group: 'g',
    grant,
    windowSeconds: 60,
    minApprovals: 1,
    ttlSeconds: 60,
    createdAt: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T00:01:00.000Z',
    approvals: [],
    denial: null,
    revocation: null,
    decidedAt: null,
    grantExpiresAt: null,
    consumedAt: null,
    history: [],
  };
}

const LEGAL = new Set([
  'pending->approved',
  'pending->denied',
  'pending->expired',
  'pending->revoked',
  'approved->consumed',
  'approved->expired',
  'approved->revoked',
]);

test('exactly the documented moves are legal; every other one throws', () => {
  for (const from of APPROVAL_STATES) {
    for (const to of APPROVAL_STATES) {
      const move = `${from}->${to}`;
      if (LEGAL.has(move)) {
        const next = transition(req(from), to, '2030-01-01T00:00:30.000Z', 'bob');
        assert.equal(next.state, to, move);
        assert.deepEqual(next.history, [{ from, to, at: '2030-01-01T00:00:30.000Z', by: 'bob' }]);
      } else {
        assert.throws(() => transition(req(from), to, 'x', null), IllegalTransitionError, move);
      }
    }
  }
});

test('a window grant is never consumed', () => {
  assert.equal(canTransition(req('approved', 'window'), 'consumed'), false);
  assert.throws(() => transition(req('approved', 'window'), 'consumed', 'x', null), IllegalTransitionError);
});

test('final states are final', () => {
  assert.deepEqual(APPROVAL_STATES.filter(isFinal), ['denied', 'expired', 'revoked', 'consumed']);
});

test('transition does not mutate its input', () => {
  const r = req('pending');
  transition(r, 'approved', 'x', 'bob', { decidedAt: 'x' });
  assert.equal(r.state, 'pending');
  assert.deepEqual(r.history, []);
});
