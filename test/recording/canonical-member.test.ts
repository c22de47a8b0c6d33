/**
 * withMember: a member added to an object's canonical JSON without parsing it again (an output folded into its
 * decision) gives exactly the canonical JSON of the object with that member, whatever the object's keys and values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, withMember } from '../../extproc/common/canonical-json.ts';

test('the member goes to its sorted place, past strings, nested objects and arrays that look like members', () => {
  const objects: Record<string, unknown>[] = [
    {},
    { a: 1 },
    { z: 1 },
    { action: 'allow', code: null, latencyMs: 0.2, message: 'said "x\\\\", \\"', policy: 'p', request: { x: [1, {}] } },
    { 'a\\"b': 1, message: '},{"output":1}', p: [']', '}', { output: { q: '"' } }] },
    { é: 1, 'out\u0000': { b: '}' }, outpus: [[[]]] },
    { outputs: 2, output_: 3, outpuT: 4 },
  ];
  const values: unknown[] = [{ rows: 1, sample: [['a', null]] }, 'x', null, 7, []];
  for (const o of objects)
    for (const v of values)
      assert.equal(withMember(canonicalJson(o), 'output', canonicalJson(v)), canonicalJson({ ...o, output: v }));
});
