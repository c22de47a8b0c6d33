import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionFingerprint, canonicalJson } from '../../extproc/approvals/fingerprint.ts';

test('fingerprints are sha256 over protocol, target and the exact bytes', () => {
  const f = (canonical: string | Uint8Array, target = 'db', protocol: 'postgres' | 'ssh' = 'postgres') =>
    actionFingerprint({ protocol, target, canonical });
  assert.match(f('DELETE FROM t WHERE id = 1'), /^sha256:[0-9a-f]{64}$/);
  assert.equal(f('DELETE FROM t WHERE id = 1'), f(new TextEncoder().encode('DELETE FROM t WHERE id = 1')));
  assert.notEqual(f('DELETE FROM t WHERE id = 1'), f('DELETE FROM t WHERE id = 999'));
  assert.notEqual(
    f('DELETE FROM t WHERE id = 1'),
    f('DELETE FROM t WHERE id = 1 '),
    'statement bytes, not a normalised form',
  );
  assert.notEqual(f('x', 'db'), f('x', 'db2'));
  assert.notEqual(f('x', 'db', 'postgres'), f('x', 'db', 'ssh'));
  // Length-prefixed fields: moving bytes between target and action changes the fingerprint.
  assert.notEqual(f('b:c', 'a'), f('c', 'a:b'));
});

test('canonicalJson sorts keys at every level', () => {
  assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
});
