import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { loadOrCreateHostKey } from '../../extproc/ssh/host-key.ts';

test('the host key is generated once (mode 0600) and the same key is read on every later start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-hostkey-'));
  try {
    const path = join(dir, 'nested', 'host_ed25519_key');
    const first = loadOrCreateHostKey(path);
    assert.equal(first.created, true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const second = loadOrCreateHostKey(path);
    assert.equal(second.created, false);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.publicKey, first.publicKey);
    // OpenSSH agrees on the key and its fingerprint.
    writeFileSync(join(dir, 'k.pub'), `${first.publicKey}\n`);
    const listed = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')], { encoding: 'utf8' });
    assert.equal(listed.split(' ')[1], first.fingerprint);
    assert.equal(execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim(), first.publicKey);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not a key stops the start with a message naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-hostkey-'));
  try {
    writeFileSync(join(dir, 'bad'), 'not a key');
    assert.throws(() => loadOrCreateHostKey(join(dir, 'bad')), /host key .*bad is not a valid SSH private key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every generated host key parses (ssh2 alone writes a malformed one about once in 250 tries)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-hostkeys-'));
  try {
    for (let i = 0; i < 1000; i++) {
      const key = loadOrCreateHostKey(join(dir, `k${i}`));
      assert.ok(key.created);
      assert.ok(!(ssh2.utils.parseKey(key.privateKey) instanceof Error));
    }
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
      'no partial file is left behind',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
