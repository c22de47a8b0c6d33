/**
 * The scanner's prefilter dismisses, from bit masks over 32 bytes, the digits and the ':'/'=' no detector could take
 * (a date, `"id":123456,`, `12:30`, `/items/1234 200`, `pod=`), lone dashes, and word starts whose third byte no
 * keyword or token prefix has (`rows`, `what`, `GET`), so the scan does not stop at them. It is an optimisation only:
 * with it off (every stop the PAIR table allows is tried) the values found must be exactly the same — on random texts
 * dense in numbers, separators, keys, log-line pieces and the corpus's values, whole and streamed in random pieces,
 * and on each piece split in two at every offset.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { builtinPlan, WASM_PATH } from '../../extproc/masking/index.ts';
import { CASES } from './corpus.ts';
import { seededRandom } from '../harness/seeded-random.ts';

interface Core {
  memory: WebAssembly.Memory;
  reserve(n: number): number;
  scan(n: number, entities: number, final: number): number;
  spans(): number;
  cutPosition(): number;
  apply(): number;
  reset(): void;
  prefilter(level: number): void;
}

const module = new WebAssembly.Module(readFileSync(WASM_PATH));
const core = (prefilter: number): Core => {
  const x = new WebAssembly.Instance(module, {}).exports as unknown as Core;
  x.prefilter(prefilter);
  return x;
};
const MASK = builtinPlan().entityMask;

const PIECES = [
  ...CASES.map((c) => c.text),
  '"id":123456,',
  '2024-05-03T12:00:00Z',
  '2024-05-03 12:00:00',
  '12:30',
  'v1.28.4',
  '42ms',
  '10.0.0.1:5432',
  'fe80::1',
  '::1',
  'a:b::c',
  'jdbc:oracle:thin:scott/tiger@db',
  'postgres://u:pw@h/db',
  'PGPASSWORD=s3cr3t',
  'DBPASSWORD\\"    : hunter2',
  'userPassword"\t\t\t\t= s3cr3t',
  'aws_secret_access_key\\"   :wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'a_very_long_key_name_with_password_inside: v',
  'paris 01 23 45 67 89',
  '1 (800) 555-0199',
  '0x52908400098527886E0F7030069857D2E4169EE7',
  // The shortest addresses (many leading zero bytes): 27 characters.
  '1111111111111111111114oLvT2',
  // Two-group national phone numbers, a trunk 4-3-3 with its area code in parentheses, IPv4 addresses whose second
  // octet has three digits, and cards whose second group is their longest (4-6-5, 5-6-5).
  '98765 43210',
  '07700 900123',
  '030 1234567',
  '0171 1234567',
  '0412 (345) 678',
  '1.234.5.67',
  '12.234.5.67',
  '3782 822463 10005',
  '41111 111111 11111',
  // A PEM block right after a run of e-mail local-part bytes too long to be carried back (over 64).
  `${'a'.repeat(70)}-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----`,
  // Words that share a keyword's or token prefix's first two letters (the third tells them apart).
  ...'rows about Above be best Between Paris pass author August ghost gift glass global sky skip what Where xor xanax eye rtx rkt bcd'.split(
    ' ',
  ),
];
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A GitHub token of the given prefix with a valid checksum (30 base62 characters, then their CRC32 in base62). */
function githubToken(prefix: string, seed: number): string {
  let body = '';
  for (let k = 0; k < 30; k++) body += BASE62[(seed * 7 + k * 13) % 62];
  let sum = crc32(Buffer.from(body));
  let check = '';
  for (let k = 0; k < 6; k++) {
    check = BASE62[sum % 62] + check;
    sum = Math.floor(sum / 62);
  }
  return `${prefix}_${body}${check}`;
}

PIECES.push(
  ...['ghp', 'gho', 'ghu', 'ghs', 'ghr'].map((prefix, k) => githubToken(prefix, k + 1)),
  ...['glpat', 'glptt', 'glcbt', 'gloas', 'gldt', 'glrt', 'glft', 'glsoat'].map((p) => `${p}-9eX2kLmN4pQrS7tUvWx1`),
);

const NOISE = '0123456789012345678901234567890123456789 -. ()+:=@xXabT/pc_"\\\t';

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const digitRun = (r: () => number, n: number): string => {
  let t = '';
  for (let k = 0; k < n; k++) t += String(Math.floor(r() * 10));
  return t;
};
const ALNUM = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** Keys whose 'p', 'c', "pa", "pw" or "cr" may or may not name a password or a secret (see idleAssignments). */
const KEYS = (
  'pod latency order card cpu mail pa pw cr xpass apwd 9pass 9pwd pwd pass spa passwd_ok db.Password my-pass secret '
  + 'secret_access aws_secret sEcReT.AWS cred crc access aws c p id x_pwdx PASSPHRASE upa ppw PWD PASS Pwd ABA RTN '
  + 'ROUTING AUTHORIZATION PASSPORT'
).split(' ');
/** What may stand between a key and its ':' or '=' (what detectAfterKey skips back over, and a bit more). */
const GAPS = ['', ' ', '\t', '"', "'", '\\"', '" ', '\\"\t ', '    ', '     ', ' "', '\\ ', '"\\', '  \t '];
/** Two or three capitals and what may come third: an IBAN's check digits, a NINO's space, a keyword's letter. */
const CAPITALS = (
  'GET|POST|PUT|INFO|WARN|UTC|GE29|GB82|DE89|AB 12|AB12|AUT|AUTHORIZATION|ABA|ABA 011000015|BEARER|BEA|BC1|PAS|'
  + 'PASSWORD|PWD|ROUTING|ROU|RTN|AKIA|ASIA|AKI|QQ|XX|NT|JW 12 34 56 A|ZZ'
).split('|');

/** A piece of a log line: timestamps, paths with ids and a status, key=value pairs with digits, capitals, short words. */
function logPiece(r: () => number): string {
  const x = r();
  if (x < 0.2) {
    const d = (n: number) => digitRun(r, n);
    return `${d(4)}-${d(2)}-${d(2)}${pick(r, ['T', ' '])}${d(2)}:${d(2)}:${d(2)}${pick(r, ['Z', '.123Z', '', '+01:00'])}`;
  }
  if (x < 0.4) {
    // A path with an id, then a status or another number: two groups, sometimes a third.
    let t = `${pick(r, ['/api/v1/items/', '/users/', '/', 'GET /o/', ' '])}${digitRun(r, 1 + Math.floor(r() * 8))}`;
    for (let g = Math.floor(r() * 3); g > 0; g--)
      t += pick(r, [' ', '-', '.', ' (']) + digitRun(r, 1 + Math.floor(r() * 8));
    return t + pick(r, [' ', ' latency', 'ms', '-', ' -', '.', ' (', ')', ' x', '\n', ' 1']);
  }
  if (x < 0.7) {
    const value = pick(r, [
      () => digitRun(r, 1 + Math.floor(r() * 6)),
      () => `${digitRun(r, 1 + Math.floor(r() * 3))}ms`,
      () => 'web-5d8f7c6b9d',
      () => 's3cr3t',
      () => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      () => '"hunter2"',
      () => '4111111111111111',
      () => '011000015',
      () => 'Bearer abc123def456ghi789',
      () => 'C12345678',
    ])();
    return `${pick(r, KEYS)}${pick(r, GAPS)}${pick(r, ['=', ':', ': ', '=='])}${value}`;
  }
  if (x < 0.85) return pick(r, CAPITALS);
  // A short word or number after a 1, a 3 or "0x" (a crypto address is 25 characters or more).
  let t = pick(r, ['1', '3', '0x', '13', '12']);
  for (let k = Math.floor(r() * 34); k > 0; k--) t += ALNUM[Math.floor(r() * ALNUM.length)];
  return t;
}

function text(r: () => number): Buffer {
  const n = 20 + Math.floor(r() * 300);
  let t = '';
  while (t.length < n) {
    const x = r();
    if (x < 0.15) {
      // A grouped number: 1–5 groups of 1–8 digits, each separator a space, '-', '.' or '('.
      const groups = 1 + Math.floor(r() * 5);
      for (let g = 0; g < groups; g++) {
        const digits = 1 + Math.floor(r() * 8);
        for (let k = 0; k < digits; k++) t += String(Math.floor(r() * 10));
        if (g < groups - 1) t += ' -.('[Math.floor(r() * 4)];
      }
    } else if (x < 0.3) t += PIECES[Math.floor(r() * PIECES.length)];
    else if (x < 0.45) t += logPiece(r);
    else if (x < 0.8) t += NOISE[Math.floor(r() * NOISE.length)];
    else t += ' ';
  }
  return Buffer.from(t);
}

/** The spans found, as absolute offsets, scanning `data` in pieces that end at `cuts`. */
function spans(x: Core, data: Buffer, cuts: number[]): string[] {
  x.reset();
  const found: string[] = [];
  let offset = 0;
  let from = 0;
  for (const to of [...cuts, data.length]) {
    const piece = data.subarray(from, to);
    const p = x.reserve(piece.length);
    new Uint8Array(x.memory.buffer, p, piece.length).set(piece);
    const count = x.scan(piece.length, MASK, to === data.length ? 1 : 0);
    const view = new Int32Array(x.memory.buffer, x.spans(), count * 3);
    for (let k = 0; k < count; k++)
      found.push(`${offset + view[3 * k]}-${offset + view[3 * k + 1]}:${view[3 * k + 2]}`);
    offset += x.cutPosition();
    x.apply();
    from = to;
  }
  return found;
}

test('the prefilter changes no value found: 6,000 random texts, whole and in random pieces', () => {
  const r = seededRandom(7);
  const on = core(1);
  const off = core(0);
  let values = 0;
  for (let k = 0; k < 6000; k++) {
    const data = text(r);
    const cuts: number[] = [];
    if (k % 2 === 1)
      for (let c = 1 + Math.floor(r() * 40); c < data.length; c += 1 + Math.floor(r() * 40)) cuts.push(c);
    const want = spans(off, data, cuts);
    assert.deepEqual(spans(on, data, cuts), want, JSON.stringify(data.toString()));
    values += want.length;
  }
  // The texts are dense in values: the comparison is not between two empty lists.
  assert.ok(values > 6000, `${values} values`);
});

test('the prefilter changes no value found: every piece split in two at every offset', () => {
  const on = core(1);
  const off = core(0);
  let values = 0;
  for (const piece of PIECES) {
    const data = Buffer.from(`id ${piece} 7`);
    for (let cut = 1; cut < data.length; cut++) {
      const want = spans(off, data, [cut]);
      assert.deepEqual(spans(on, data, [cut]), want, `${JSON.stringify(data.toString())} cut at ${cut}`);
      values += want.length;
    }
  }
  assert.ok(values > 1000, `${values} values`);
});
