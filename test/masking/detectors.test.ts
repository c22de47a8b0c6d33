import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUILTIN_ENTITIES, builtinPlan } from '../../extproc/masking/index.ts';
import { CASES, CLEAN } from './corpus.ts';
import { ALL, engine, maskText, streamPieces } from './engine.ts';

for (const entity of BUILTIN_ENTITIES) {
  const cases = CASES.filter((c) => c.entity === entity);
  test(`${entity}: corpus (${cases.filter((c) => c.want).length} positive, ${cases.filter((c) => !c.want).length} negative)`, () => {
    assert.ok(cases.some((c) => c.want) && cases.some((c) => !c.want), 'each detector has positive and negative cases');
    for (const c of cases) assert.equal(maskText(c.text), c.want ?? c.text, c.text);
  });

  test(`${entity}: found by its own detector alone, and only when it is enabled`, () => {
    const only = builtinPlan([entity]);
    const others = builtinPlan(BUILTIN_ENTITIES.filter((e) => e !== entity));
    for (const c of cases.filter((c) => c.want)) {
      const r = engine.maskBytes(Buffer.from(c.text), only);
      const mixed = [...c.want!.matchAll(/\[REDACTED:([A-Z_]+)\]/g)].some((m) => m[1] !== entity);
      if (mixed) assert.ok(Buffer.from(r.output).toString().includes(`[REDACTED:${entity}]`), c.text);
      else assert.equal(Buffer.from(r.output).toString(), c.want, c.text);
      assert.ok(
        r.findings.every((f) => f.entity === entity),
        c.text,
      );
      assert.ok(!maskText(c.text, others).includes(`[REDACTED:${entity}]`), c.text);
    }
  });

  test(`${entity}: a value split across two chunks at every offset is still found`, () => {
    for (const c of cases) {
      const bytes = Buffer.from(c.text);
      const want = Buffer.from(c.want ?? c.text);
      for (let k = 0; k <= bytes.length; k++)
        assert.deepEqual(streamPieces(bytes, [k]), want, `${c.text} split at ${k}`);
    }
  });
}

test('every case byte by byte, and at every pair of split points', () => {
  for (const c of CASES) {
    const bytes = Buffer.from(c.text);
    const want = Buffer.from(c.want ?? c.text);
    assert.deepEqual(streamPieces(bytes, [...bytes.keys()].slice(1)), want, `${c.text} byte by byte`);
    for (let a = 1; a < bytes.length; a += 3) {
      for (let b = a; b <= bytes.length; b += 5)
        assert.deepEqual(streamPieces(bytes, [a, b]), want, `${c.text} at ${a},${b}`);
    }
  }
});

test('text with nothing to mask comes back byte-identical, in one piece and streamed', () => {
  for (const text of CLEAN) {
    const bytes = Buffer.from(text);
    const r = engine.maskBytes(bytes, ALL);
    assert.deepEqual(Buffer.from(r.output), bytes);
    assert.deepEqual(r.findings, []);
    assert.deepEqual(streamPieces(bytes, [7, 8, 40]), bytes);
  }
});

test('all cases joined into one document: every value found, counted per entity', () => {
  const cases = CASES.filter((c) => !c.toEnd);
  const text = cases.map((c) => c.text).join('\n');
  const r = engine.maskBytes(Buffer.from(text), ALL);
  assert.equal(Buffer.from(r.output).toString(), cases.map((c) => c.want ?? c.text).join('\n'));
  const expected = new Map<string, number>();
  for (const c of cases) {
    for (const m of (c.want ?? '').matchAll(/\[REDACTED:([A-Z_]+)\]/g))
      expected.set(m[1], (expected.get(m[1]) ?? 0) + 1);
  }
  assert.deepEqual(new Map(r.findings.map((f) => [f.entity, f.count])), expected);
});

test('invalid UTF-8 and control bytes around values do not disturb detection', () => {
  const bytes = Buffer.concat([
    Buffer.from([0xff, 0xc3]),
    Buffer.from('4111111111111111'),
    Buffer.from([0x00, 0xe2, 0x82]),
  ]);
  const out = Buffer.from(engine.maskBytes(bytes, ALL).output);
  assert.deepEqual(
    out,
    Buffer.concat([Buffer.from([0xff, 0xc3]), Buffer.from('[REDACTED:CREDIT_CARD]'), Buffer.from([0x00, 0xe2, 0x82])]),
  );
});
