/**
 * A plan whose detectors all need digits (card numbers 13 or more, SSNs nine) answers a value with fewer without
 * reading it. It is an optimisation only: with it off, the values found must be exactly the same — checked on random
 * texts dense in digits and separators around the counts where it switches — and a plan with any detector that needs
 * no digit, or a policy's own detector, reads every value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinPlan, compileMaskingRules } from '../../extproc/masking/index.ts';
import { seededRandom } from '../harness/seeded-random.ts';
import { engine } from './engine.ts';

test('the fewest digits a plan needs: 13 for cards, 9 with SSNs, none with another entity or a custom detector', () => {
  assert.equal(builtinPlan(['CREDIT_CARD']).minDigits, 13);
  assert.equal(builtinPlan(['CREDIT_CARD', 'US_SSN']).minDigits, 9);
  assert.equal(builtinPlan(['CREDIT_CARD', 'EMAIL_ADDRESS']).minDigits, 0);
  assert.equal(builtinPlan().minDigits, 0);
  const custom = compileMaskingRules([
    { name: 'c', entities: ['CREDIT_CARD'], detectors: [{ name: 'EMPLOYEE', kind: 'regex', pattern: 'E[0-9]{4}' }] },
  ]);
  assert.equal(custom.minDigits, 0);
});

test('values with and without the digit count found alike: the same output as a plan that reads every value', () => {
  const plan = builtinPlan(['CREDIT_CARD', 'US_SSN']);
  const readsAll = { ...plan, minDigits: 0 };
  const random = seededRandom(29);
  const pieces = ['4111', '1111', '111', '-', ' ', '.', '123', '45', '6789', '0', 'aid = ', 'x', '9', '55', ','];
  for (let n = 0; n < 20_000; n++) {
    let text = '';
    const length = 1 + Math.floor(random() * 10);
    for (let k = 0; k < length; k++) text += pieces[Math.floor(random() * pieces.length)];
    const fast = engine.maskText(text, plan);
    const full = engine.maskText(text, readsAll);
    assert.deepEqual(fast, full, JSON.stringify(text));
  }
  assert.equal(engine.maskText('card 4111 1111 1111 1111', plan).value, 'card [REDACTED:CREDIT_CARD]');
  assert.equal(engine.maskText('ssn 123-45-6789', plan).value, 'ssn [REDACTED:US_SSN]');
});
