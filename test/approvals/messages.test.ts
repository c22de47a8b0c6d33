import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusalMessage } from '../../extproc/approvals/index.ts';
import { sqlAction } from './fixtures.ts';

test('the agent is told approval is required, by whom, and the request id to quote', () => {
  const m = refusalMessage(
    { status: 'pending', requestId: 'apr_1', expiresAt: '2030-01-01T00:05:00.000Z' },
    sqlAction('DELETE FROM t'),
  );
  assert.equal(
    m,
    'approval required (rule prod-db/destructive-writes): request apr_1 is waiting for approver group "db-owners" '
      + 'until 2030-01-01T00:05:00.000Z; retry the same action once it is approved',
  );
  assert.equal(
    refusalMessage({ status: 'denied', requestId: 'apr_2', reason: 'not now' }, sqlAction('DELETE FROM t')),
    'denied by an approver (rule prod-db/destructive-writes, request apr_2): not now',
  );
});

test("the policy rule's own message leads the approval text when it has one", () => {
  const m = refusalMessage(
    { status: 'pending', requestId: 'apr_3', expiresAt: '2030-01-01T00:05:00.000Z' },
    sqlAction('DELETE FROM t'),
    'Deletes in prod need a DBA.',
  );
  assert.match(
    m,
    /^Deletes in prod need a DBA\. — approval required \(rule prod-db\/destructive-writes\): request apr_3 is waiting/,
  );
});
