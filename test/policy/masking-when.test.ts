/** Masking rules with a CEL `when` (issue 15): compiled at load with line and column, decided per action. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_K8S, EMPTY_SQL, EMPTY_SSH, type RequestContext } from '../../extproc/policy/context.ts';
import { loadPolicy, PolicyLoadError } from '../../extproc/policy/load.ts';
import { MaskingPlans, type MaskingScope } from '../../extproc/policy/masking-plans.ts';

const SOURCE = [
  'name: masks', // 1
  'rules: []', // 2
  'masking:', // 3
  '  - name: secret-values', // 4
  '    when: k8s.resource == "secrets"', // 5
  '    paths: ["$.data.*"]', // 6
  '  - name: emails', // 7
  '    entities: [EMAIL_ADDRESS]', // 8
].join('\n');

const scope: MaskingScope = {
  protocol: 'kubernetes',
  agent: { id: 'a', groups: [], labels: {} },
  target: { name: 't', kind: 'kubernetes', labels: {} },
  key: 'a/t',
};

function ctx(resource: string): RequestContext {
  return {
    protocol: 'kubernetes',
    agent: scope.agent,
    target: scope.target,
    session: { id: 's', plan: '' },
    time: new Date(),
    k8s: { ...EMPTY_K8S, isResourceRequest: true, verb: 'get', version: 'v1', resource },
    sql: EMPTY_SQL,
    ssh: EMPTY_SSH,
  };
}

test('a masking rule applies only where its when holds; before the action is known, it counts', () => {
  const policies = [loadPolicy(SOURCE)];
  const plans = new MaskingPlans();
  const rulesOf = (p: ReturnType<MaskingPlans['planFor']>) => JSON.stringify(p);
  const forSecrets = plans.planFor(policies, scope, ctx('secrets'));
  const forConfigMaps = plans.planFor(policies, scope, ctx('configmaps'));
  const unknown = plans.planFor(policies, scope);
  assert.match(rulesOf(forSecrets), /"label":"secret-values"/);
  assert.doesNotMatch(rulesOf(forConfigMaps), /"label":"secret-values"/);
  assert.ok(forConfigMaps && forConfigMaps.entityMask !== 0, 'the unconditioned rule (emails) still applies');
  assert.match(rulesOf(unknown), /"label":"secret-values"/);
  assert.equal(plans.planFor(policies, scope, ctx('secrets')), forSecrets, 'plans are compiled once per rule set');
});

test('a masking when that does not compile is a load error at its line and column', () => {
  const bad = SOURCE.replace('k8s.resource == "secrets"', 'k8s.resource == 3');
  assert.throws(
    () => loadPolicy(bad),
    (err: unknown) =>
      err instanceof PolicyLoadError
      && err.problems.some(
        (p) => p.line === 5 && p.col === 11 && p.path === '/masking/0/when' && /CEL/.test(p.message),
      ),
  );
});
