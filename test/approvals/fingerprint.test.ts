import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionFingerprint, canonicalJson, kubeCanonical } from '../../extproc/approvals/fingerprint.ts';

test('fingerprints are sha256 over protocol, target and the exact bytes', () => {
  const f = (canonical: string | Uint8Array, target = 'db', protocol: 'postgres' | 'ssh' = 'postgres') =>
    actionFingerprint({ protocol, target, canonical });
  assert.match(f('DELETE FROM t WHERE id = 1'), /^sha256:[0-9a-f]{64}$/);
  assert.equal(f('DELETE FROM t WHERE id = 1'), f(new TextEncoder().encode('DELETE FROM t WHERE id = 1')));
  assert.notEqual(f('DELETE FROM t WHERE id = 1'), f('DELETE FROM t WHERE id = 999'));
  assert.notEqual(f('DELETE FROM t WHERE id = 1'), f('DELETE FROM t WHERE id = 1 '), 'statement bytes, not a normalised form');
  assert.notEqual(f('x', 'db'), f('x', 'db2'));
  assert.notEqual(f('x', 'db', 'postgres'), f('x', 'db', 'ssh'));
  // Length-prefixed fields: moving bytes between target and action changes the fingerprint.
  assert.notEqual(f('b:c', 'a'), f('c', 'a:b'));
});

test('the Kubernetes canonical form ignores query order and JSON key order but not values', () => {
  const base = { method: 'patch', path: '/apis/apps/v1/namespaces/prod/deployments/web/scale' };
  const a = kubeCanonical({ ...base, query: new URLSearchParams('fieldManager=kubectl&dryRun=None'), body: { spec: { replicas: 20 }, kind: 'Scale' } });
  const b = kubeCanonical({ ...base, query: { dryRun: 'None', fieldManager: 'kubectl' }, body: { kind: 'Scale', spec: { replicas: 20 } } });
  const c = kubeCanonical({ ...base, query: { dryRun: 'None', fieldManager: 'kubectl' }, body: { kind: 'Scale', spec: { replicas: 21 } } });
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.ok(a.startsWith('PATCH\n/apis/apps/v1/namespaces/prod/deployments/web/scale\ndryRun=None&fieldManager=kubectl\n'));
  assert.notEqual(kubeCanonical({ ...base, body: '{"a":1}' }), kubeCanonical({ ...base, body: '{"a": 1}' }), 'raw bytes are digested as sent');
  assert.ok(kubeCanonical({ method: 'DELETE', path: '/api/v1/namespaces/x' }).endsWith('\n-'));
});

test('canonicalJson sorts keys at every level', () => {
  assert.equal(canonicalJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
});
