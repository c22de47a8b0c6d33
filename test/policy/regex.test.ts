/**
 * Every regular expression a policy author supplies runs on RE2 (linear time): a masking detector and CEL matches().
 * Patterns that backtrack catastrophically on JavaScript's engine are accepted and answer at once on the attack
 * string; syntax RE2 cannot run (backreferences, lookaround) is refused at load with its line and column.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchColumn, parseColumnPattern } from '../../extproc/masking/column-matcher.ts';
import { compileMaskingRules } from '../../extproc/masking/index.ts';
import { decide } from '../../extproc/policy/evaluate.ts';
import { loadPolicy, PolicyLoadError } from '../../extproc/policy/load.ts';
import { maskText } from '../masking/engine.ts';
import { kubeRequest, policies } from './fixtures.ts';

const ATTACK = `${'a'.repeat(30)}!`;

function problems(source: string): string[] {
  try {
    loadPolicy(source);
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    throw err;
  }
  return [];
}

test('a masking detector with nested quantifiers is accepted and runs in linear time on the attack string', () => {
  const plan = compileMaskingRules([
    { name: 'nested', detectors: [{ name: 'NESTED', kind: 'regex', pattern: '(a+)+$' }] },
  ]);
  assert.equal(maskText(ATTACK, plan), ATTACK, 'no match: the string does not end in a');
  assert.equal(maskText(`id ${'a'.repeat(30)}`, plan), 'id [REDACTED:NESTED]');
});

test('CEL matches() with nested quantifiers is accepted and decides on the attack string (both call forms)', () => {
  for (const when of ['k8s.name.matches("^(a+)+$")', 'matches(k8s.name, "^(a+)+$")']) {
    const set = policies(`name: names\nrules:\n  - name: r\n    when: '${when}'\n    action: allow\n`);
    const attack = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'dev', name: ATTACK });
    assert.equal(decide(set, attack.ctx, attack.defaultAction).reason, 'default', when);
    const plain = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'dev', name: 'aaaa' });
    assert.equal(decide(set, plain.ctx, plain.defaultAction).action, 'allow', when);
  }
});

test('RE2 semantics in matches(): partial match, (?i) flags, Unicode classes', () => {
  const set = policies(
    'name: names\nrules:\n  - name: r\n    when: k8s.name.matches("(?i)^web-\\\\p{L}+") && k8s.namespace.matches("pr")\n    action: allow\n',
  );
  const yes = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'prod', name: 'WEB-épée-1' });
  assert.equal(decide(set, yes.ctx, yes.defaultAction).action, 'allow');
  const no = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'prod', name: 'api-1' });
  assert.equal(decide(set, no.ctx, no.defaultAction).action, 'deny');
});

test('a constant matches() pattern RE2 cannot run is refused at load, at the pattern', () => {
  const src = [
    'name: refs',
    'rules:',
    '  - name: backref',
    '    when: k8s.name.matches("(a)\\\\1")',
    '    action: deny',
    '  - name: lookahead',
    '    when: |',
    '      k8s.verb == "get" &&',
    '        matches(k8s.name, "(?=web)")',
    '    action: deny',
  ].join('\n');
  const ps = problems(src);
  assert.equal(ps.length, 2, ps.join('\n'));
  assert.match(ps[0], /^4:28: CEL: matches\(\): invalid regular expression: .*\\1/);
  assert.match(ps[1], /^9:27: CEL: matches\(\): invalid regular expression: .*\(\?=/);
});

test('a pattern that is not a constant and that RE2 refuses fails closed when evaluated', () => {
  const set = policies(
    'name: dyn\nrules:\n  - name: r\n    when: k8s.name.matches(k8s.namespace)\n    action: deny\n  - { name: rest, action: allow }\n',
  );
  const bad = kubeRequest({ verb: 'get', resource: 'pods', namespace: '(a)\\1', name: 'aa' });
  const d = decide(set, bad.ctx, bad.defaultAction);
  assert.deepEqual([d.action, d.reason], ['deny', 'error']);
  const fine = kubeRequest({ verb: 'get', resource: 'pods', namespace: 'dev', name: 'web' });
  assert.equal(decide(set, fine.ctx, fine.defaultAction).action, 'allow');
});

test('masking detectors with backreferences or lookaround are refused at load, at the pattern', () => {
  const src = [
    'name: masks',
    'rules: []',
    'masking:',
    '  - name: ids',
    '    detectors:',
    '      - { name: REPEAT, kind: regex, pattern: "(x)\\\\1" }',
    '      - name: AHEAD',
    '        kind: regex',
    '        pattern: "id(?=[0-9])"',
  ].join('\n');
  const ps = problems(src);
  assert.equal(ps.length, 2, ps.join('\n'));
  assert.match(ps[0], /^6:47: invalid regular expression: .*no backreferences, lookahead or lookbehind/);
  assert.match(ps[1], /^9:18: invalid regular expression: /);
});

test('column patterns run on RE2: many wildcards against a long, agent-chosen column alias answer at once', () => {
  const pattern = parseColumnPattern(`${'a*'.repeat(12)}b`);
  assert.equal(matchColumn(pattern, 'a'.repeat(63)), false);
  assert.equal(matchColumn(pattern, `${'a'.repeat(62)}b`), true);
  // `*` matches any characters, a newline in a quoted identifier included; case is ignored.
  assert.equal(matchColumn(parseColumnPattern('*ssn*'), 'Customer_SSN\nx'), true);
  assert.equal(matchColumn(parseColumnPattern('users.card$*'), 'CARD$1', 'public.users'), true);
});

test('matches() on a dynamically typed value (a request body field) runs on RE2 as well', () => {
  const set = policies(
    'name: body\nrules:\n  - name: r\n    when: \'has(k8s.body.metadata) && k8s.body.metadata.name.matches("(?i)^WEB")\'\n    action: allow\n',
  );
  const req = (name: string) =>
    kubeRequest({ verb: 'create', resource: 'pods', namespace: 'dev', body: { metadata: { name } } });
  const web = req('web-1');
  assert.equal(decide(set, web.ctx, web.defaultAction).action, 'allow', '(?i) is RE2 syntax');
  const attack = req(ATTACK);
  assert.equal(decide(set, attack.ctx, attack.defaultAction).reason, 'default');
});
