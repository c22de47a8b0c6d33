import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUILTIN_ENTITIES } from '../../extproc/masking/index.ts';
import { decide } from '../../extproc/policy/evaluate.ts';
import { MaskingPlans } from '../../extproc/policy/masking-plans.ts';
import { kubeRequest, policies } from './fixtures.ts';

const readOnly = `
name: read-only
rules:
  - name: reads
    when: k8s.verb in ["get", "list", "watch"]
    action: allow
`;
const guard = `
name: guard
rules:
  - name: no-prod-delete
    when: k8s.namespace == "prod" && k8s.verb == "delete"
    action: deny
    message: no deletes in prod
  - name: allow-all
    action: allow
  - name: scale
    when: k8s.subresource == "scale" && int(k8s.body.spec.replicas) > 10
    action: require_approval
    approval: { group: sre }
`;

test('an allow rule allows; nothing matching means default deny', () => {
  const set = policies(readOnly);
  const get = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'dev' });
  assert.equal(decide(set, get.ctx, get.defaultAction).action, 'allow');
  const del = kubeRequest({ verb: 'delete', resource: 'pods', namespace: 'dev' });
  const d = decide(set, del.ctx, del.defaultAction);
  assert.equal(d.action, 'deny');
  assert.equal(d.reason, 'default');
  assert.equal(d.rule, null);
  assert.match(d.message, /default deny/);
});

test('a target whose default is allow lets unmatched requests through', () => {
  const set = policies(readOnly);
  const del = kubeRequest({ verb: 'delete' }, { target: { name: 't', kind: 'kubernetes', defaultAction: 'allow' } });
  const d = decide(set, del.ctx, del.defaultAction);
  assert.deepEqual([d.action, d.reason], ['allow', 'default']);
});

test('deny wins over allow, in the same policy and across policies', () => {
  const req = kubeRequest({ verb: 'delete', namespace: 'prod', resource: 'pods' });
  for (const set of [policies(guard), policies(guard, readOnly), policies(readOnly, guard)]) {
    const d = decide(set, req.ctx, req.defaultAction);
    assert.equal(d.action, 'deny');
    assert.equal(d.rule, 'no-prod-delete');
    assert.equal(d.policy, 'guard');
    assert.equal(d.message, 'no deletes in prod');
  }
});

test('require_approval wins over allow and carries the approval requirement', () => {
  const req = kubeRequest({
    verb: 'patch',
    resource: 'deployments',
    subresource: 'scale',
    namespace: 'prod',
    body: { spec: { replicas: 20 } },
  });
  const d = decide(policies(guard), req.ctx, req.defaultAction);
  assert.equal(d.action, 'require_approval');
  assert.equal(d.rule, 'scale');
  assert.deepEqual(d.approval, {
    group: 'sre',
    grant: 'once',
    windowSeconds: 3600,
    minApprovals: 1,
    ttlSeconds: 900,
    holdSeconds: 0,
  });
  const small = kubeRequest({
    verb: 'patch',
    resource: 'deployments',
    subresource: 'scale',
    namespace: 'prod',
    body: { spec: { replicas: 3 } },
  });
  assert.equal(decide(policies(guard), small.ctx, small.defaultAction).action, 'allow');
});

test('a deny or approval rule that fails to evaluate denies (fail closed); a failing allow rule does not allow', () => {
  // The scale rule reads k8s.body.spec.replicas: a scale request without a body makes it fail.
  const req = kubeRequest({
    verb: 'patch',
    resource: 'deployments',
    subresource: 'scale',
    namespace: 'prod',
    body: {},
  });
  const d = decide(policies(guard), req.ctx, req.defaultAction);
  assert.equal(d.action, 'deny');
  assert.equal(d.reason, 'error');
  assert.equal(d.rule, 'scale');
  assert.match(d.message, /could not be evaluated/);
  const allowOnly = policies(`
name: allow-big
rules:
  - name: big
    when: int(k8s.body.spec.replicas) > 1
    action: allow
`);
  const d2 = decide(allowOnly, req.ctx, req.defaultAction);
  assert.deepEqual([d2.action, d2.reason], ['deny', 'default']);
});

test('scope selects agents and targets; out-of-scope policies do not apply', () => {
  const scoped = `
name: sre-only
scope:
  agents: { groups: [sre] }
  targets: { labels: { env: prod } }
rules:
  - name: everything
    action: allow
`;
  const set = policies(scoped);
  const asAgent = kubeRequest({ verb: 'delete' });
  assert.equal(decide(set, asAgent.ctx, 'deny').action, 'deny');
  const asSre = kubeRequest({ verb: 'delete' }, { agent: { id: 'x', groups: ['sre'] } });
  assert.equal(decide(set, asSre.ctx, 'deny').action, 'allow');
  const devTarget = kubeRequest(
    { verb: 'delete' },
    { agent: { id: 'x', groups: ['sre'] }, target: { name: 'dev', kind: 'kubernetes', labels: { env: 'dev' } } },
  );
  assert.equal(decide(set, devTarget.ctx, 'deny').action, 'deny');
});

test('rules restricted to a protocol ignore other protocols', () => {
  const set = policies(`
name: sql-only
rules:
  - name: any-sql
    protocol: postgres
    action: allow
`);
  const k = kubeRequest({ verb: 'get' });
  assert.equal(decide(set, k.ctx, 'deny').action, 'deny');
});

test('dry-run: recorded as what would happen, never enforced', () => {
  const dry = guard.replace('name: guard', 'name: guard\nmode: dry-run');
  const req = kubeRequest({ verb: 'delete', namespace: 'prod' });
  // Only a dry-run policy in scope: the request is allowed, the dry-run verdict says deny.
  const d = decide(policies(dry), req.ctx, req.defaultAction);
  assert.equal(d.action, 'allow');
  assert.equal(d.dryRun?.action, 'deny');
  assert.equal(d.dryRun?.rule, 'no-prod-delete');
  // Beside an enforcing policy: the enforcing one decides; dryRun shows the combined verdict.
  const d2 = decide(policies(dry, readOnly), kubeRequest({ verb: 'get', namespace: 'prod' }).ctx, 'deny');
  assert.equal(d2.action, 'allow');
  assert.equal(d2.dryRun?.action, 'allow');
  const d3 = decide(policies(dry, readOnly), req.ctx, 'deny');
  assert.deepEqual(
    [d3.action, d3.reason, d3.dryRun?.action, d3.dryRun?.rule],
    ['deny', 'default', 'deny', 'no-prod-delete'],
  );
  // Without dry-run policies there is no dryRun field.
  assert.equal(decide(policies(readOnly), req.ctx, 'deny').dryRun, undefined);
});

test("masking plans: the rules of enforced policies in scope, for the action's protocol, compiled once per set and scope", () => {
  const set = policies(`
name: masks
rules: [{ name: all, action: allow }]
masking:
  - name: cards
    entities: [CREDIT_CARD]
    strategy: partial
  - name: pg-only
    protocol: postgres
    columns: ["users.ssn"]
`);
  const req = kubeRequest({ verb: 'get' });
  const plans = new MaskingPlans();
  const scope = (protocol: 'kubernetes' | 'postgres') => ({
    protocol,
    agent: req.ctx.agent,
    target: req.ctx.target,
    key: 'k',
  });
  const kube = plans.planFor(set, scope('kubernetes'));
  assert.equal(kube?.entityMask, 1 << BUILTIN_ENTITIES.indexOf('CREDIT_CARD'));
  assert.equal(kube?.columns.length, 0, 'a postgres-only rule does not apply to Kubernetes');
  assert.equal(plans.planFor(set, scope('postgres'))?.columns.length, 1);
  assert.equal(plans.planFor(set, scope('kubernetes')), kube, 'cached per policy set and scope');
  assert.equal(
    plans.planFor(policies('name: none\nrules: [{ name: all, action: allow }]\n'), scope('kubernetes')),
    null,
  );
});
