import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { loadPolicy, PolicyLoadError } from '../../extproc/policy/load.ts';

function problems(source: string): string[] {
  try {
    loadPolicy(source);
  } catch (err) {
    assert.ok(err instanceof PolicyLoadError);
    return err.problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
  }
  return [];
}

test('the bundled example policies load', () => {
  for (const f of readdirSync('examples/policies').filter((f) => f.endsWith('.yaml') && !f.endsWith('_test.yaml'))) {
    const p = loadPolicy(readFileSync(`examples/policies/${f}`, 'utf8'));
    assert.ok(p.rules.length > 0, f);
  }
});

test('a CEL type error is reported at its line and column', () => {
  const src = [
    'name: bad', // 1
    'rules:', // 2
    '  - name: r', // 3
    '    when: k8s.verb == 3', // 4: string == int
    '    action: deny',
  ].join('\n');
  assert.deepEqual(problems(src), ['4:11: CEL: no such overload: string == int']);
});

test('an unknown context field is a load error that names it, inside block scalars too', () => {
  const src = [
    'name: bad',
    'rules:',
    '  - name: r',
    '    when: |',
    '      k8s.verb == "get" &&',
    '        k8s.replicas > 3',
    '    action: allow',
  ].join('\n');
  const [p] = problems(src);
  assert.match(p, /^6:\d+: CEL: No such key: replicas$/);
  assert.ok(Number(p.split(':')[1]) >= 12, p);
});

test('CEL positions in folded (>-), plain and quoted multi-line scalars: the source line and column, not the joined value', () => {
  const at = (when: string[]): string[] =>
    problems(['name: bad', 'rules:', '  - name: r', ...when, '    action: allow'].join('\n'));
  // line 4 is the first `when` line; `replicas` is the unknown key each time
  assert.deepEqual(at(['    when: >-', '      k8s.verb == "get"', '      && k8s.replicas > 3']), [
    '6:14: CEL: No such key: replicas',
  ]);
  assert.deepEqual(at(['    when: >-', '      k8s.verb == "get"', '', '      && k8s.replicas > 3']), [
    '7:14: CEL: No such key: replicas',
  ]);
  assert.deepEqual(at(['    when: >', '      k8s.verb == "get" &&', '        k8s.replicas > 3']), [
    '6:13: CEL: No such key: replicas',
  ]);
  assert.deepEqual(at(['    when: k8s.verb == "get"', '      && k8s.replicas > 3']), [
    '5:14: CEL: No such key: replicas',
  ]);
  assert.deepEqual(at(['    when: "k8s.verb == \\"get\\"', '      && k8s.replicas > 3"']), [
    '5:14: CEL: No such key: replicas',
  ]);
});

test('schema problems point at the offending key: unknown fields, bad enums, missing approval', () => {
  const src = [
    'name: bad',
    'mode: enforcing',
    'rules:',
    '  - name: r',
    '    action: require_approval',
    '    colour: red',
  ].join('\n');
  const ps = problems(src);
  assert.ok(ps.includes('2:7: /mode must be one of: enforce, dry-run'), ps.join('\n'));
  assert.ok(ps.includes('6:5: unknown field "colour"'), ps.join('\n'));
  assert.ok(
    ps.some((p) => p.startsWith('4:') && p.includes("must have required property 'approval'")),
    ps.join('\n'),
  );
});

test('YAML syntax errors and duplicate rule names are reported with positions', () => {
  assert.match(problems('name: x\nrules: [\n')[0], /^\d+:\d+: /);
  const dup = problems('name: x\nrules:\n  - { name: a, action: allow }\n  - { name: a, action: deny }\n');
  assert.deepEqual(dup, ['4:13: duplicate rule name "a"']);
});

test('a condition must be boolean', () => {
  assert.deepEqual(problems('name: x\nrules:\n  - name: r\n    when: k8s.verb\n    action: allow\n'), [
    '4:11: CEL: condition must be a bool expression, not string',
  ]);
});

test('JSON policies load as well', () => {
  const p = loadPolicy(
    JSON.stringify({ name: 'j', rules: [{ name: 'r', when: 'k8s.verb == "get"', action: 'allow' }] }),
  );
  assert.equal(p.doc.name, 'j');
  assert.equal(p.doc.mode, 'enforce');
});

test('masking rules are validated at load: a bad regular expression or JSON path is reported at its position', () => {
  const src = [
    'name: masks',
    'rules: []',
    'masking:',
    '  - name: tickets',
    '    detectors:',
    '      - { name: TICKET, kind: regex, pattern: "TCK-(" }',
    '    paths: ["$.data[["]',
  ].join('\n');
  const ps = problems(src);
  assert.equal(ps.length, 2, ps.join('\n'));
  assert.match(ps[0], /^6:/);
  assert.match(ps[1], /^7:/);
});
