import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const RUN =
  "import('./extproc/cli/main.ts').then((m) => m.main(['mask', ...process.argv.slice(1)], { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })).then((c) => { process.exitCode = c; })";

function mask(
  args: string[],
  input: Buffer | string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', RUN, '--', ...args], {
      env: { ...process.env, ...env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(input);
  });
}

test('portcullis mask --strategy partial: the issue example', async () => {
  const r = await mask(['--strategy', 'partial'], 'card 4111111111111111 end');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'card ************1111 end');
});

test('nothing to mask: output byte-identical, including invalid UTF-8 and no trailing newline', async () => {
  const input = Buffer.concat([Buffer.from('plain ünï text 42\n\tmore'), Buffer.from([0xff, 0x00, 0xc3])]);
  const r = await mask([], input);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout, input);
});

test('no --entities means every built-in entity; --entities restricts; --stats counts', async () => {
  const text = 'a@b.co 4111111111111111 078-05-1120';
  assert.equal(
    (await mask([], text)).stdout.toString(),
    '[REDACTED:EMAIL_ADDRESS] [REDACTED:CREDIT_CARD] [REDACTED:US_SSN]',
  );
  const r = await mask(['--entities', 'US_SSN,EMAIL_ADDRESS', '--strategy', 'mask', '--stats'], text);
  assert.equal(r.stdout.toString(), '****** 4111111111111111 ***********');
  assert.deepEqual(r.stderr.trim().split('\n').sort(), ['EMAIL_ADDRESS\t1', 'US_SSN\t1']);
});

test('a large input streams through with values across pipe chunks', async () => {
  const line = 'user bob@example.com paid with 4111 1111 1111 1111 from 10.0.0.1\n';
  const r = await mask([], line.repeat(20000));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout.toString(),
    'user [REDACTED:EMAIL_ADDRESS] paid with [REDACTED:CREDIT_CARD] from [REDACTED:IP_ADDRESS]\n'.repeat(20000),
  );
});

test('--policy takes the masking rules of a policy file; hash key from the environment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-mask-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    [
      'name: demo',
      'masking:',
      '  - name: tickets',
      '    detectors:',
      '      - { name: TICKET, kind: regex, pattern: "TCK-\\\\d+" }',
      '    strategy: hash',
      '  - name: mails',
      '    entities: [EMAIL_ADDRESS]',
      '',
    ].join('\n'),
  );
  const env = { PORTCULLIS_MASK_HASH_KEY: 'k' };
  const a = await mask(['--policy', file], 'TCK-42 by a@b.co, card 4111111111111111', env);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout.toString(), /^sha256:[0-9a-f]{64} by \[REDACTED:EMAIL_ADDRESS\], card 4111111111111111$/);
  const b = await mask(['--policy', file], 'TCK-42', env);
  assert.equal(b.stdout.toString(), a.stdout.toString().split(' ')[0], 'same key, same hash');

  writeFileSync(file, 'masking:\n  - name: x\n    strategy: shred\n');
  const bad = await mask(['--policy', file], '');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /masking\[0\]\.strategy: must be one of/);
});

test('unknown entity or flag: exit 2 with a message', async () => {
  const r = await mask(['--entities', 'CARD'], '');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown entity "CARD"/);
  assert.equal((await mask(['--strategy'], '')).code, 2);
});

test('--explain lists each finding (entity, input offsets, what it passed) on stderr, never the value', async () => {
  const input = 'card 4111 1111 1111 1111 and mail bob@example.com\npassword=hunter2 from 10.0.0.1\n';
  const r = await mask(['--explain'], input);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split('\t').slice(0, 2).join(' ')),
    ['CREDIT_CARD 5-24', 'EMAIL_ADDRESS 34-49', 'PASSWORD 59-66', 'IP_ADDRESS 72-80'],
  );
  for (const l of lines) {
    const [entity, offsets, validation] = l.split('\t');
    const [start, end] = offsets.split('-').map(Number);
    assert.ok(validation.length > 10, l);
    assert.ok(!r.stderr.includes(input.slice(start, end)), `${entity} value leaked`);
  }
  assert.match(lines[0], /Luhn/);
});
