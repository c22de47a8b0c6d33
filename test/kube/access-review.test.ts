/** The answer to a SelfSubjectAccessReview (issue 15): "yes" only when policy allows outright. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessReviewAnswer, reviewedAction } from '../../extproc/kube/access-review.ts';
import type { Decision, K8sContext } from '../../extproc/spine/index.ts';

const spec = { resourceAttributes: { verb: 'patch', group: 'apps', resource: 'deployments', namespace: 'prod' } };
const asked = reviewedAction(spec) as K8sContext;
const base = { reason: 'rule' as const, policy: 'p', policyVersion: 1, rule: 'r', message: '' };

test('the review describes the action it asks about, as the classifier would', () => {
  assert.equal(asked.isResourceRequest, true);
  assert.deepEqual(
    [asked.verb, asked.group, asked.resource, asked.namespace],
    ['patch', 'apps', 'deployments', 'prod'],
  );
  assert.equal(asked.object, null, 'there is no object to dry-run in a review');
  assert.deepEqual(reviewedAction({}), { error: 'spec must give resourceAttributes or nonResourceAttributes' });
});

test('needs approval is "no", and the reason says so', () => {
  const d: Decision = {
    ...base,
    action: 'require_approval',
    message: 'big scale',
    approval: { group: 'sre', grant: 'once', windowSeconds: 0, minApprovals: 1, ttlSeconds: 60, holdSeconds: 0 },
  };
  const status = (
    accessReviewAnswer(spec, asked, d) as { status: { allowed: boolean; denied?: boolean; reason: string } }
  ).status;
  assert.equal(status.allowed, false);
  assert.equal(status.denied, undefined, 'not denied: a human may still approve');
  assert.match(status.reason, /needs a human's approval \(policy p rule r, approver group sre\): big scale/);
});

test('allowed writes say that rules on the object are decided at write time; denials are denied', () => {
  const yes = accessReviewAnswer(spec, asked, { ...base, action: 'allow' }) as {
    status: { allowed: boolean; reason: string };
  };
  assert.equal(yes.status.allowed, true);
  assert.match(yes.status.reason, /decided when the write is made/);
  const no = accessReviewAnswer(spec, asked, { ...base, action: 'deny', message: 'nope' }) as {
    status: { allowed: boolean; denied: boolean; reason: string };
  };
  assert.deepEqual([no.status.allowed, no.status.denied, no.status.reason], [false, true, 'nope']);
});
