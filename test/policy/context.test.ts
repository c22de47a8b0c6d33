import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CEL_CONTEXT_SCHEMA, EMPTY_K8S, EMPTY_SQL, EMPTY_SSH } from '../../extproc/policy/context.ts';

// The CEL declarations and the TypeScript zero values describe the same fields: a field added to one and not the
// other would either be invisible to policies or fail every condition that names it.
test('CEL declarations match the context sections field for field', () => {
  assert.deepEqual(Object.keys(CEL_CONTEXT_SCHEMA.k8s).sort(), Object.keys(EMPTY_K8S).sort());
  assert.deepEqual(Object.keys(CEL_CONTEXT_SCHEMA.sql).sort(), Object.keys(EMPTY_SQL).sort());
  assert.deepEqual(Object.keys(CEL_CONTEXT_SCHEMA.ssh).sort(), Object.keys(EMPTY_SSH).sort());
  assert.deepEqual(Object.keys(CEL_CONTEXT_SCHEMA).sort(), [
    'agent',
    'k8s',
    'protocol',
    'session',
    'sql',
    'ssh',
    'target',
    'time',
  ]);
});
