/**
 * Corpora generated from the standards themselves: every country of the SWIFT IBAN registry (ISO 13616 lengths,
 * mod-97), the SSA's rules for SSNs, ISO/IEC 7812 issuer ranges with Luhn. Each value is tried plain, with every
 * separator people write, with a broken check, and streamed in two pieces at every offset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskText, streamPieces } from './engine.ts';

/** IBAN length per country code, from the SWIFT IBAN registry (territories listed there under their own codes). */
const IBAN_REGISTRY: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AX: 18,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BL: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GF: 27,
  GI: 23,
  GL: 18,
  GP: 27,
  GR: 27,
  GT: 28,
  HN: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MF: 27,
  MK: 19,
  MN: 20,
  MQ: 27,
  MR: 27,
  MT: 31,
  MU: 30,
  NC: 27,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PF: 27,
  PK: 24,
  PL: 28,
  PM: 27,
  PS: 29,
  PT: 25,
  QA: 29,
  RE: 27,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TF: 27,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  WF: 27,
  XK: 20,
  YE: 30,
  YT: 27,
};

function mod97(s: string): number {
  let r = 0;
  for (const ch of s) {
    const v = Number.parseInt(ch, 36);
    r = (v >= 10 ? r * 100 + v : r * 10 + v) % 97;
  }
  return r;
}

function iban(country: string, bban: string): string {
  const check = 98 - mod97(`${bban}${country}00`);
  return `${country}${String(check).padStart(2, '0')}${bban}`;
}

const group = (s: string, sep: string): string => s.match(/.{1,4}/g)!.join(sep);
const redacted = (e: string): string => `[REDACTED:${e}]`;

function assertEverywhere(text: string, want: string): void {
  assert.equal(maskText(text), want, text);
  const bytes = Buffer.from(text);
  for (let k = 0; k <= bytes.length; k++) assert.equal(streamPieces(bytes, [k]).toString(), want, `${text} at ${k}`);
}

test('IBAN: every registry country, plain and grouped by spaces or dashes; a wrong check or length stays', () => {
  let n = 0;
  for (const [country, length] of Object.entries(IBAN_REGISTRY)) {
    // A BBAN with a letter in it where the country allows one would also do; digits suit every format.
    const bban = String(1234567890123456789012345678901n * BigInt(length))
      .slice(0, length - 4)
      .padEnd(length - 4, '7');
    const value = iban(country, bban);
    assert.equal(value.length, length);
    for (const form of [value, group(value, ' '), group(value, '-')])
      assertEverywhere(`iban: ${form}.`, `iban: ${redacted('IBAN_CODE')}.`);
    const badCheck = `${value.slice(0, 2)}${value[2] === '9' ? '0' : '9'}${value.slice(3)}`;
    const tooShort = value.slice(0, -1);
    const tooLong = `${value}0`;
    for (const bad of [badCheck, tooShort, tooLong, value.toLowerCase()])
      assert.equal(maskText(`x ${bad} y`), `x ${bad} y`);
    n++;
  }
  assert.equal(n, 102);
});

test('US_SSN: the SSA rules over every area, with each separator; invalid numbers and other runs stay', () => {
  for (let area = 0; area < 1000; area += 37) {
    for (const [groupNo, serial] of [
      [1, 1],
      [0, 1234],
      [45, 0],
    ]) {
      const a = String(area).padStart(3, '0');
      const g = String(groupNo).padStart(2, '0');
      const s = String(serial).padStart(4, '0');
      const valid = area !== 0 && area !== 666 && area < 900 && groupNo !== 0 && serial !== 0;
      for (const sep of ['-', '.', ' ', '']) {
        const text = `ssn ${a}${sep}${g}${sep}${s};`;
        assert.equal(maskText(text), valid ? `ssn ${redacted('US_SSN')};` : text, text);
      }
    }
  }
  for (const area of ['000', '666', '900', '999']) assert.equal(maskText(`n ${area}-12-3456`), `n ${area}-12-3456`);
  assertEverywhere('ssn 219.09.9999 ok', `ssn ${redacted('US_SSN')} ok`);
  assertEverywhere('ssn 219 09 9999 ok', `ssn ${redacted('US_SSN')} ok`);
});

function luhnComplete(prefix: string, length: number): string {
  const body = prefix.padEnd(length - 1, '0');
  for (let d = 0; d < 10; d++) {
    const s = `${body}${d}`;
    let sum = 0;
    [...s].reverse().forEach((ch, i) => {
      let v = Number(ch);
      if (i % 2 === 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
      sum += v;
    });
    if (sum % 10 === 0) return s;
  }
  throw new Error('unreachable');
}

test('CREDIT_CARD: ISO/IEC 7812 issuer ranges with Luhn, each grouping; a broken check digit stays', () => {
  const ranges: [string, number][] = [
    ['1', 15], // UATP
    ['4', 16],
    ['4', 13],
    ['4', 19], // Visa
    ['51', 16],
    ['55', 16],
    ['2221', 16],
    ['2720', 16], // Mastercard
    ['34', 15],
    ['37', 15], // American Express
    ['6011', 16],
    ['644', 16],
    ['65', 16], // Discover
    ['62', 16],
    ['62', 19], // UnionPay
    ['3528', 16],
    ['3589', 16], // JCB
    ['300', 14],
    ['36', 14], // Diners Club
    ['50', 16],
    ['67', 16], // Maestro
    ['2200', 16],
    ['2204', 16], // Mir
    ['81', 16],
    ['82', 16], // RuPay
    ['9792', 16], // Troy
  ];
  for (const [prefix, length] of ranges) {
    const card = luhnComplete(prefix, length);
    const grouped = length === 16 ? [group(card, ' '), group(card, '-')] : [];
    if (length === 15) grouped.push(`${card.slice(0, 4)} ${card.slice(4, 10)} ${card.slice(10)}`);
    for (const form of [card, ...grouped]) assertEverywhere(`pay ${form}.`, `pay ${redacted('CREDIT_CARD')}.`);
    const broken = `${card.slice(0, -1)}${(Number(card.at(-1)) + 1) % 10}`;
    assert.equal(maskText(`pay ${broken}.`).includes('CREDIT_CARD'), false, broken);
  }
  // Outside the issuer ranges (7, 8 other than 81/82, 9 other than 9792): Luhn alone is not enough.
  for (const prefix of ['7', '83', '90']) {
    const card = luhnComplete(prefix, 16);
    assert.equal(maskText(`n ${card}.`), `n ${card}.`);
  }
});
