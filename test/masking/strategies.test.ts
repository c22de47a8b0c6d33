import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { loadMaskingEngine } from '../../extproc/masking/index.ts';
import { HASH_KEY, engine, maskText, plan } from './engine.ts';

test('redact replaces the value with [REDACTED:ENTITY]', () => {
  assert.equal(maskText('ssn 078-05-1120'), 'ssn [REDACTED:US_SSN]');
});

test('mask keeps the length (in characters) with *', () => {
  assert.equal(maskText('card 4111-1111-1111-1111 end', plan('mask')), 'card ******************* end');
  assert.equal(maskText('userPassword: sécurité!', plan('mask')), 'userPassword: *********');
});

test('partial keeps separators and the last N characters', () => {
  assert.equal(maskText('card 4111111111111111 end', plan('partial')), 'card ************1111 end');
  assert.equal(maskText('card 4111-1111-1111-1111 end', plan('partial')), 'card ****-****-****-1111 end');
  assert.equal(maskText('ssn 078-05-1120', plan('partial', 2)), 'ssn ***-**-**20');
  assert.equal(maskText('iban GB82 WEST 1234 5698 7654 32', plan('partial', 6)), 'iban **** **** **** **** 7654 32');
  assert.equal(maskText('card 4111111111111111', plan('partial', 0)), 'card ****************');
});

test('partial never shows more than half of a short value', () => {
  assert.equal(maskText('pwd=abcdef', plan('partial', 4)), 'pwd=***def');
  assert.equal(maskText('pwd=ab', plan('partial', 4)), 'pwd=*b');
  assert.equal(maskText('pwd=a', plan('partial', 4)), 'pwd=*');
});

test('hash is HMAC-SHA256 with the engine key, hex after sha256:', () => {
  const want = `sha256:${createHmac('sha256', HASH_KEY).update('4111111111111111').digest('hex')}`;
  assert.equal(maskText('card 4111111111111111 end', plan('hash')), `card ${want} end`);
  // Stable for the same value, different for another.
  const twice = maskText('4111111111111111 4111111111111111 5555555555554444', plan('hash')).split(' ');
  assert.equal(twice[0], twice[1]);
  assert.notEqual(twice[0], twice[2]);
});

test('hash with keys of every size (RFC 2104: long keys are hashed first) matches node:crypto', async () => {
  for (const size of [0, 1, 31, 63, 64, 65, 200]) {
    const key = Buffer.alloc(size, 7);
    const e = await loadMaskingEngine({ hashKey: key });
    for (const value of ['a@b.co', `${'x'.repeat(55)}@example.com`, `pwd=${'y'.repeat(120)}`]) {
      const out = Buffer.from(e.maskBytes(Buffer.from(value), plan('hash')).output).toString();
      const secret = value.startsWith('pwd=') ? value.slice(4) : value;
      const prefix = value.startsWith('pwd=') ? 'pwd=' : '';
      assert.equal(
        out,
        `${prefix}sha256:${createHmac('sha256', key).update(secret).digest('hex')}`,
        `key ${size}, ${value}`,
      );
    }
  }
});

test('two engines with different keys hash differently (values cannot be matched across keys)', async () => {
  const other = await loadMaskingEngine({ hashKey: Buffer.from('another key') });
  const a = maskText('078-05-1120', plan('hash'));
  const b = Buffer.from(other.maskBytes(Buffer.from('078-05-1120'), plan('hash')).output).toString();
  assert.notEqual(a, b);
});

test('field masking applies the strategy to a whole value', () => {
  assert.equal(
    engine.maskFieldText('anything at all', { label: 'notes', strategy: 'redact', keep: 4 }),
    '[REDACTED:notes]',
  );
  assert.equal(engine.maskFieldText('4111 1111', { label: 'x', strategy: 'partial', keep: 4 }), '**** 1111');
  assert.equal(engine.maskFieldText('héllo', { label: 'x', strategy: 'mask', keep: 4 }), '*****');
  assert.equal(engine.maskFieldText('', { label: 'x', strategy: 'redact', keep: 4 }), '');
  assert.equal(
    engine.maskFieldText('v', { label: 'x', strategy: 'hash', keep: 4 }),
    `sha256:${createHmac('sha256', HASH_KEY).update('v').digest('hex')}`,
  );
});
