/**
 * Response masking of whole JSON bodies, and the raw prefilter that lets a body no path rule can match (a Pod list
 * under `$.data.*` rules) skip the parse and walk (issue 6): it must mask exactly what the full walk masks.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  compileMaskingRules,
  loadMaskingEngine,
  type CompiledMasking,
  type MaskingEngine,
} from '../../extproc/masking/index.ts';
import { anyPathMayMatch, Findings, maskJsonBody, maskKubeJson } from '../../extproc/kube/response-masking.ts';

let engine: MaskingEngine;
let guardrails: CompiledMasking;
let pathsOnly: CompiledMasking;

before(async () => {
  engine = await loadMaskingEngine();
  // As in examples/policies/kubernetes-guardrails.yaml.
  const secretValues = {
    name: 'secret-values',
    paths: ['$.data.*', '$.stringData.*', '$.items[*].data.*', '$.items[*].stringData.*'],
    strategy: 'redact',
  };
  guardrails = compileMaskingRules(
    [secretValues, { name: 'pii', entities: ['EMAIL_ADDRESS', 'CREDIT_CARD'], strategy: 'partial', keep: 4 }],
    { protocol: 'kubernetes' },
  );
  pathsOnly = compileMaskingRules([secretValues], { protocol: 'kubernetes' });
});

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const podList = {
  kind: 'PodList',
  apiVersion: 'v1',
  metadata: { resourceVersion: '12' },
  items: [
    {
      kind: 'Pod',
      metadata: { name: 'api-1', namespace: 'dev' },
      spec: { containers: [{ name: 'api', image: 'ghcr.io/example/api:1.4.2' }] },
    },
  ],
};
const configMap = {
  kind: 'ConfigMap',
  apiVersion: 'v1',
  metadata: { name: 'app', namespace: 'dev' },
  data: { 'db-url': 'postgres://db:5432/app' },
};

/** What maskJsonBody returns without the prefilter: the full parse and walk. */
function fullWalk(plan: CompiledMasking, body: Buffer, resource: string): string | null {
  const found = new Findings();
  const masked = maskKubeJson(engine, plan, JSON.parse(body.toString('utf8')), resource, found);
  return found.total === 0 ? null : JSON.stringify(masked);
}

function viaBody(plan: CompiledMasking, body: Buffer, resource: string): string | null {
  const out = maskJsonBody(engine, plan, body, resource, new Findings());
  return out === null ? null : Buffer.from(out).toString('utf8');
}

test('a body without the member names of any path rule skips the walk and passes unchanged', () => {
  assert.equal(anyPathMayMatch(guardrails, json(podList)), false);
  assert.equal(viaBody(guardrails, json(podList), 'pods'), null);
  assert.equal(fullWalk(guardrails, json(podList), 'pods'), null);
});

test('a body naming a path member is walked and masked as before', () => {
  for (const body of [
    json(configMap),
    json({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: {}, items: [configMap] }),
  ]) {
    assert.equal(anyPathMayMatch(pathsOnly, body), true);
    const masked = viaBody(pathsOnly, body, 'configmaps');
    assert.ok(masked !== null && !masked.includes('postgres://'), masked ?? 'unmasked');
    assert.equal(masked, fullWalk(pathsOnly, body, 'configmaps'));
  }
});

test('regression (issue 6 prefilter): a member name spelled with a \\u escape still takes the full walk', () => {
  const escaped = Buffer.from(JSON.stringify(configMap).replace('"data"', '"d\\u0061ta"'));
  assert.equal(JSON.parse(escaped.toString()).data['db-url'], 'postgres://db:5432/app');
  assert.equal(anyPathMayMatch(pathsOnly, escaped), true);
  const masked = viaBody(pathsOnly, escaped, 'configmaps');
  assert.ok(masked !== null && !masked.includes('postgres://'));
  assert.equal(masked, fullWalk(pathsOnly, escaped, 'configmaps'));
});

test('paths of wildcards only, or of names an encoder may escape, always take the full walk', () => {
  const wild = compileMaskingRules([{ name: 'all', paths: ['$.*'], strategy: 'redact' }], { protocol: 'kubernetes' });
  assert.equal(anyPathMayMatch(wild, json(podList)), true);
  assert.notEqual(viaBody(wild, json(podList), 'pods'), null);
  const slash = compileMaskingRules(
    [{ name: 'ann', paths: ["$.metadata.annotations['example.com/token']"], strategy: 'redact' }],
    { protocol: 'kubernetes' },
  );
  assert.equal(anyPathMayMatch(slash, json(podList)), true);
  const annotated = json({ ...configMap, metadata: { name: 'x', annotations: { 'example.com/token': 'abc' } } });
  assert.equal(
    viaBody(slash, Buffer.from(annotated.toString().replace('example.com/token', 'example.com\\/token')), 'configmaps'),
    fullWalk(slash, annotated, 'configmaps'),
  );
});

test('content findings and Secrets are unaffected by the prefilter', () => {
  const withEmail = json({
    ...podList,
    items: [{ ...podList.items[0], metadata: { name: 'api-1', annotations: { owner: 'ops@example.com' } } }],
  });
  const masked = viaBody(guardrails, withEmail, 'pods');
  assert.ok(masked !== null && !masked.includes('ops@example.com'));
  const secret = json({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name: 's' },
    data: { password: Buffer.from('hunter2').toString('base64') },
  });
  const maskedSecret = viaBody(guardrails, secret, 'secrets');
  assert.ok(maskedSecret !== null && !maskedSecret.includes(Buffer.from('hunter2').toString('base64')));
});
