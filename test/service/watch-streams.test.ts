/**
 * Watches opened all at once through the Envoy stand-in (whose gRPC client, like Envoy's, never retries a refused
 * stream) are all held: each gets its 200, none ends, and an object written after they all opened reaches every one
 * of them through the processor. The suite opens PORTCULLIS_WATCH_STREAMS watches (default 400, a few seconds on a
 * 2-core machine); bench/kube-watches.bench.ts opens 4,000 with the processor in a process of its own, measures its
 * memory per held watch, and counts how many watches a burst (one event to all at once) loses to message_timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';
import { findResource } from '../kube-apiserver/discovery.ts';
import { waitFor } from '../harness/ports.ts';
import { openWatches } from '../harness/watches.ts';

const COUNT = Number(process.env.PORTCULLIS_WATCH_STREAMS ?? 400);
const POLICY = `apiVersion: portcullis.dev/v1
kind: Policy
name: watch-many
mode: enforce
scope:
  targets:
    kinds: [kubernetes]
rules:
  - name: read-anything
    when: k8s.verb in ["get", "list", "watch"]
    action: allow
`;

let stack: KubeStack;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-watches-'));

before(async () => {
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  stack = await startKubeStack({
    policies: [join(dir, 'policy.yaml')],
    agent: 'watcher',
    vaultToken: 'watches-upstream-token-4c1d',
    credential: 'static-token',
    redis: { appendonly: false },
    // The event written below reaches every watch at once, and the processor answers each watch's body message in
    // turn: with envoy/portcullis.yaml's 0.5 s message_timeout the last answers can come too late on a slow machine (the
    // bench measures how many). What is tested here is that every watch is held, not how fast a burst is answered.
    envoy: { messageTimeoutMs: 10_000 },
  });
});

after(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

test(`${COUNT} watches opened at once are all held, and all see an event written after they opened`, async () => {
  const watches = openWatches({
    url: stack.envoy.url,
    ca: stack.envoy.caPem,
    token: stack.agentToken,
    path: '/api/v1/namespaces/prod/configmaps?watch=true',
    count: COUNT,
  });
  try {
    await watches.opened;
    assert.deepEqual(
      [...new Set(watches.statuses())],
      ['200'],
      `every watch answered 200 (${watches
        .statuses()
        .filter((s) => s !== '200')
        .join(', ')})`,
    );
    await waitFor(
      () => stack.api.requests.filter((q) => q.path.includes('watch=true')).length >= COUNT,
      120_000,
      'every watch to reach the API server',
    );
    const name = `after-all-opened-${Date.now()}`;
    stack.api.store.put(findResource('', 'v1', 'configmaps')!, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'prod' },
      data: { note: 'written once every watch was open' },
    });
    await waitFor(() => watches.seen(name) === COUNT, 120_000, `the new object to reach all ${COUNT} watches`);
    assert.equal(watches.ended(), 0, 'no watch ended or was refused');
  } finally {
    watches.close();
  }
});
