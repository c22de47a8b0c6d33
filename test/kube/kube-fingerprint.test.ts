import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubeCanonical } from '../../extproc/kube/kube-fingerprint.ts';

test('the Kubernetes canonical form ignores query order and JSON key order but not values', () => {
  const base = { method: 'patch', path: '/apis/apps/v1/namespaces/prod/deployments/web/scale' };
  const a = kubeCanonical({
    ...base,
    query: new URLSearchParams('fieldManager=kubectl&dryRun=None'),
    body: { spec: { replicas: 20 }, kind: 'Scale' },
  });
  const b = kubeCanonical({
    ...base,
    query: { dryRun: 'None', fieldManager: 'kubectl' },
    body: { kind: 'Scale', spec: { replicas: 20 } },
  });
  const c = kubeCanonical({
    ...base,
    query: { dryRun: 'None', fieldManager: 'kubectl' },
    body: { kind: 'Scale', spec: { replicas: 21 } },
  });
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.ok(
    a.startsWith('PATCH\n/apis/apps/v1/namespaces/prod/deployments/web/scale\ndryRun=None&fieldManager=kubectl\n'),
  );
  assert.notEqual(
    kubeCanonical({ ...base, body: '{"a":1}' }),
    kubeCanonical({ ...base, body: '{"a": 1}' }),
    'raw bytes are digested as sent',
  );
  assert.ok(kubeCanonical({ method: 'DELETE', path: '/api/v1/namespaces/x' }).endsWith('\n-'));
});

test('a merge patch and a strategic merge patch of the same body are different actions (issue 15)', () => {
  const base = {
    method: 'PATCH',
    path: '/apis/apps/v1/namespaces/prod/deployments/web',
    body: { spec: { replicas: 20 } },
  };
  assert.notEqual(kubeCanonical({ ...base, patchType: 'merge' }), kubeCanonical({ ...base, patchType: 'strategic' }));
  assert.equal(kubeCanonical({ ...base, patchType: 'merge' }), kubeCanonical({ ...base, patchType: 'merge' }));
});
