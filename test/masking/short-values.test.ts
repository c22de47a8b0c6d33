/**
 * The engine's fast path for short values (engine.ts maskBytes): a value of fewer than 5 bytes without a colon is
 * passed as it is, without a call into the core. This holds only while no built-in entity fits in such a value; the
 * core itself is asked here (a plan with a custom detector that never matches takes the full path), so an entity added
 * later with a shorter shape fails this test instead of passing through unmasked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUILTIN_ENTITIES, compileMaskingRules, validateMaskingRules } from '../../extproc/masking/index.ts';
import { ALL, engine } from './engine.ts';

const FULL_PATH = compileMaskingRules(
  validateMaskingRules([
    { name: 'builtin', entities: [...BUILTIN_ENTITIES] },
    { name: 'never', detectors: [{ name: 'NEVER', kind: 'regex', pattern: 'x{64}' }] },
  ]),
);

function* shortValues(): Generator<Buffer> {
  for (let a = 0; a < 256; a++) {
    yield Buffer.from([a]);
    for (let b = 0; b < 256; b++) yield Buffer.from([a, b]);
  }
  // 3 and 4 bytes: printable ASCII without ':' (what entities are written in), drawn with a fixed seed.
  const printable = [...Array(95).keys()].map((i) => i + 32).filter((c) => c !== 0x3a);
  let seed = 17;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return printable[seed % printable.length];
  };
  for (let i = 0; i < 60_000; i++) yield Buffer.from(Array.from({ length: 3 + (i % 2) }, next));
}

test('no built-in entity fits in fewer than 5 bytes without a colon: the core finds none there', () => {
  assert.ok(FULL_PATH.custom.length > 0 && !FULL_PATH.contentEmpty);
  let checked = 0;
  for (const v of shortValues()) {
    if (v.includes(0x3a)) continue;
    const found = engine.maskBytes(v, FULL_PATH).findings;
    assert.deepEqual(found, [], `the core found ${JSON.stringify(found)} in ${JSON.stringify(v.toString('latin1'))}`);
    checked++;
  }
  assert.ok(checked > 120_000);
});

test('the shortest values that hold an entity are still masked: a colon or 5 bytes take the full path', () => {
  for (const [text, entity] of [
    ['::1', 'IP_ADDRESS'],
    ['1::', 'IP_ADDRESS'],
    ['pwd=x', 'PASSWORD'],
    ['a@b.cd', 'EMAIL_ADDRESS'],
  ] as const) {
    const r = engine.maskBytes(Buffer.from(text), ALL);
    assert.deepEqual(
      r.findings.map((f) => f.entity),
      [entity],
      text,
    );
    assert.doesNotMatch(Buffer.from(r.output).toString(), new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  }
});

test('a short value is passed as it is, and a policy pattern still sees it', () => {
  const v = Buffer.from('42');
  const r = engine.maskBytes(v, ALL);
  assert.equal(r.output, v);
  assert.deepEqual(r.findings, []);
  const digits = compileMaskingRules(
    validateMaskingRules([{ name: 'n', detectors: [{ name: 'SMALL_NUMBER', kind: 'regex', pattern: '\\d+' }] }]),
  );
  assert.deepEqual(
    engine.maskBytes(v, digits).findings.map((f) => f.entity),
    ['SMALL_NUMBER'],
  );
});
