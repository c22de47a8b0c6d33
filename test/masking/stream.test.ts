import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinPlan, compileMaskingRules } from '../../extproc/masking/index.ts';
import { JWT_HS256 } from './corpus.ts';
import { ALL, engine, plan, streamPieces } from './engine.ts';
import { seededRandom } from '../harness/seeded-random.ts';

const CARRY_CAP = 8192;
/** A PEM private key longer than the carry cap (masked across chunks by continuation). */
const PEM_LONG = `-----BEGIN PRIVATE KEY-----\n${Array.from({ length: 300 }, (_, i) => `LINE${i}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789`).join('\n')}\n-----END PRIVATE KEY-----`;

function everyN(length: number, n: number): number[] {
  const cuts: number[] = [];
  for (let k = n; k < length; k += n) cuts.push(k);
  return cuts;
}

test('a plain line is passed on at once, nothing held back', () => {
  const s = engine.createStream(ALL);
  assert.equal(
    Buffer.from(s.push(Buffer.from('hello world, build 42 done\n'))).toString(),
    'hello world, build 42 done\n',
  );
  assert.equal(Buffer.from(s.push(Buffer.from('user@host:~$ '))).toString(), 'user@host:~$ ');
  assert.equal(s.end().length, 0);
});

test('only a possible value is held back: a number that may be a card', () => {
  const s = engine.createStream(ALL);
  assert.equal(Buffer.from(s.push(Buffer.from('pay 4111 1111'))).toString(), 'pay ');
  // "now" could still become "now@example.com": held back until a byte that ends it.
  assert.equal(Buffer.from(s.push(Buffer.from(' 1111 1111 now'))).toString(), '[REDACTED:CREDIT_CARD] ');
  assert.equal(Buffer.from(s.end()).toString(), 'now');
  assert.deepEqual(s.findings(), [{ entity: 'CREDIT_CARD', count: 1 }]);
});

test('a PEM key far longer than the carry cap is masked across chunks, nothing of it leaks', () => {
  const body = Array.from(
    { length: 400 },
    (_, i) => `SECRETLINE${String(i).padStart(4, '0')}ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789`,
  ).join('\n');
  const text = `before\n-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\nafter 4111111111111111\n`;
  assert.ok(text.length > 2 * CARRY_CAP);
  const bytes = Buffer.from(text);
  for (const strategy of ['redact', 'mask', 'partial', 'hash'] as const) {
    const p = plan(strategy);
    const oneShot = Buffer.from(engine.maskBytes(bytes, p).output).toString();
    assert.ok(!oneShot.includes('SECRETLINE'), strategy);
    for (const size of [1000, 4096, 7000, 9000]) {
      const streamed = streamPieces(bytes, everyN(bytes.length, size), p).toString();
      assert.ok(!streamed.includes('SECRETLINE') && !streamed.includes('ABCDEFG'), `${strategy} in chunks of ${size}`);
      assert.ok(streamed.startsWith('before\n') && streamed.endsWith('\n'), strategy);
      assert.ok(!streamed.includes('4111111111111111'), `${strategy}: detection resumes after the key`);
      if (strategy === 'redact') assert.equal(streamed, oneShot, `chunks of ${size}`);
      if (strategy === 'mask') assert.equal(streamed.length, oneShot.length, 'mask keeps the length');
    }
  }
});

test('a PEM block that never ends is masked to the end of the stream (fail closed)', () => {
  const text = `x -----BEGIN EC PRIVATE KEY-----\n${'MHcCAQEEIO'.repeat(3000)}`;
  const out = streamPieces(Buffer.from(text), everyN(text.length, 3000)).toString();
  assert.equal(out, 'x [REDACTED:PRIVATE_KEY]');
});

test('a JWT and a bearer token longer than the carry cap are masked whole', () => {
  const big = `${JWT_HS256.split('.').slice(0, 2).join('.')}.${'s'.repeat(20000)}`;
  const text = `jwt ${big} then Authorization: Bearer ${'t0k'.repeat(5000)} end`;
  const bytes = Buffer.from(text);
  for (const size of [500, 8191, 8192, 10000]) {
    const out = streamPieces(bytes, everyN(bytes.length, size)).toString();
    assert.equal(out, 'jwt [REDACTED:JWT] then Authorization: Bearer [REDACTED:BEARER_TOKEN] end', `chunks of ${size}`);
  }
});

test('memory stays bounded: whatever the stream, at most the carry cap (plus one chunk) is held back', () => {
  const r = seededRandom(7);
  const kinds = [
    () => 'plain words and more words ',
    () => '1234567890'.repeat(5),
    () => 'averyveryverylonglocalpartwithoutanyspaces'.repeat(3),
    () => `${Math.floor(r() * 1e9)}-${Math.floor(r() * 1e4)} `,
    () => 'password=\n',
    () => '-----BEGIN ',
    () => 'eyJ',
  ];
  const s = engine.createStream(ALL);
  let inBytes = 0;
  let outBytes = 0;
  for (let k = 0; k < 2000; k++) {
    const chunk = Buffer.from(Array.from({ length: 40 }, () => kinds[Math.floor(r() * kinds.length)]()).join(''));
    inBytes += chunk.length;
    outBytes += s.push(chunk).length;
    // Nothing here is masked (checked below), so output bytes are input bytes. The cap, plus the local-part run
    // (at most 65 bytes) kept before a candidate.
    assert.ok(inBytes - outBytes <= CARRY_CAP + 65, `held back ${inBytes - outBytes} bytes after ${inBytes}`);
  }
  outBytes += s.end().length;
  assert.equal(outBytes, inBytes);
  assert.deepEqual(s.findings(), []);
});

test('random mixes of values and near-misses: streamed in random pieces = masked in one piece', () => {
  const pieces = [
    '4111111111111111',
    '4111 1111 1111 1111',
    '4111111111111112',
    '078-05-1120',
    '000-12-3456',
    'bob@example.com',
    'x@y',
    '+1 415 555 0100',
    '(415) 555-0100',
    'DE89 3704 0044 0532 0130 00',
    'GB82WEST12345698765432',
    JWT_HS256,
    'AKIAIOSFODNN7EXAMPLE',
    'Authorization: Bearer abc123def456',
    'bearer of',
    'password=hunter2',
    '"password": "x y"',
    'PGPASSWORD=',
    '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
    ' ',
    '\n',
    '.',
    ',',
    '-',
    '@',
    'é',
    '日本',
    '"',
    "'",
    ':',
    '=',
    '(',
    ')',
    'abc',
    'pass',
    'eyJ',
    'AKIA',
    '12',
    '+',
    'Bearer ',
    '10.0.0.1',
    '2001:db8::1',
    'postgres://u:pw@db/x',
    '1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2',
    'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
    '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',
    'glpat-9eX2kLmN4pQrS7tUvWx1',
    'sk_live_4eC39HqLyjWDarjtT1zdp7dc',
    'routing 011000015',
    'passport: 912803456',
    '943 476 5919',
    'AB123456C',
    'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    '912-70-1234',
    '07700 900123',
  ];
  const r = seededRandom(42);
  for (const strategy of ['redact', 'partial', 'hash'] as const) {
    const p = plan(strategy);
    for (let round = 0; round < 150; round++) {
      const text = Array.from({ length: 1 + Math.floor(r() * 40) }, () => pieces[Math.floor(r() * pieces.length)]).join(
        '',
      );
      const bytes = Buffer.from(text);
      const want = Buffer.from(engine.maskBytes(bytes, p).output);
      const cuts = [...new Set(Array.from({ length: Math.floor(r() * 6) }, () => Math.floor(r() * bytes.length)))].sort(
        (a, b) => a - b,
      );
      assert.deepEqual(streamPieces(bytes, cuts, p), want, `${strategy} ${JSON.stringify(text)} cut at ${cuts}`);
    }
  }
});

test('custom detectors in a stream: matches across chunk boundaries are found', () => {
  const p = compileMaskingRules([
    {
      name: 'codes',
      entities: ['EMAIL_ADDRESS'],
      detectors: [
        { name: 'PROJECT', kind: 'words', words: ['Project Falcon', 'Nightjar'] },
        { name: 'TICKET', kind: 'regex', pattern: 'TCK-\\d{4,}' },
      ],
    },
  ]);
  const text = 'about Project Falcon and nightjar, ticket TCK-123456 by bob@example.com; Nightjars fly\n';
  const want =
    'about [REDACTED:PROJECT] and [REDACTED:PROJECT], ticket [REDACTED:TICKET] by [REDACTED:EMAIL_ADDRESS]; Nightjars fly\n';
  const bytes = Buffer.from(text);
  assert.equal(Buffer.from(engine.maskBytes(bytes, p).output).toString(), want);
  for (let k = 0; k <= bytes.length; k++) assert.equal(streamPieces(bytes, [k], p).toString(), want, `split at ${k}`);
  assert.equal(streamPieces(bytes, [...bytes.keys()].slice(1), p).toString(), want, 'byte by byte');
});

test('custom regex offsets are byte offsets even around multi-byte characters', () => {
  const p = compileMaskingRules([
    { name: 'r', detectors: [{ name: 'CODE', kind: 'regex', pattern: 'K\\d+' }], strategy: 'mask' },
  ]);
  const out = Buffer.from(engine.maskBytes(Buffer.from('ééé K12 🎉 K345 ü'), p).output).toString();
  assert.equal(out, 'ééé *** 🎉 **** ü');
});

test('a plan with nothing to detect passes streams through unchanged', () => {
  const s = engine.createStream(builtinPlan([]));
  assert.equal(Buffer.from(s.push(Buffer.from('4111111111111111'))).toString(), '4111111111111111');
});

test('explain: detections carry input offsets, the same however the input is split', () => {
  const text = Buffer.from(
    `x ${'a'.repeat(100)} 078-05-1120 and ${'b'.repeat(9000)} bob@example.com\n${PEM_LONG}\nend`,
  );
  const whole = engine.createStream(ALL, { explain: true });
  whole.push(text);
  whole.end();
  const want = whole.detections();
  assert.deepEqual(
    want.map((d) => [d.entity, text.subarray(d.start, d.end).toString().slice(0, 11)]),
    [
      ['US_SSN', '078-05-1120'],
      ['EMAIL_ADDRESS', 'bob@example'],
      ['PRIVATE_KEY', '-----BEGIN '],
    ],
  );
  assert.equal(want[2].end, text.length - 4);
  for (const size of [1, 7, 64, 4096]) {
    const s = engine.createStream(ALL, { explain: true });
    for (let k = 0; k < text.length; k += size) s.push(text.subarray(k, k + size));
    s.end();
    assert.deepEqual(s.detections(), want, `pieces of ${size}`);
  }
});
