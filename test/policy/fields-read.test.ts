/** Which context fields a condition reads, from its CEL AST: the Kubernetes dry run is paid only when a rule reads it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileCondition } from '../../extproc/policy/cel.ts';

const CASES: [string, string[]][] = [
  ['k8s.verb == "patch"', ['k8s.verb']],
  ['int(k8s.object.spec.replicas) > 10', ['k8s.object']],
  ['has(k8s.oldObject.spec)', ['k8s.oldObject']],
  ['k8s["object"] != null', ['k8s.object']],
  ['k8s.?object.orValue(1) == 1', ['k8s.object']],
  // The whole section, or a key computed at run time: every field may be read.
  ['[k8s].size() == 1', ['k8s.*']],
  ['k8s[agent.id] != null', ['agent.id', 'k8s.*']],
  ['agent.groups.exists(g, g == "sre") && k8s.namespace == "prod"', ['agent.groups', 'k8s.namespace']],
  // The context's other variables: a rule on the time of day reads `time`.
  ['time.getHours() < 18 && sql.readTables.size() > 0', ['sql.readTables', 'time']],
  ['protocol == "postgres"', ['protocol']],
];

for (const [source, want] of CASES) {
  test(`reads of ${source}`, () => {
    const c = compileCondition(source);
    assert.ok(c.ok, JSON.stringify(c));
    assert.deepEqual([...c.condition.reads].sort(), want);
  });
}
