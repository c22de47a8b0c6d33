/**
 * The filter's own streaming masking in the real chain: `kubectl logs -f` through the stand-in with the proxy-wasm
 * filter, for an agent ext_proc masks nothing for, while a policy for another agent names card numbers — the snapshot
 * is one per listener (every agent), so the filter masks them, chunk by chunk, before any byte leaves Envoy.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startKubeStack, type KubeStack } from '../kube/kube-stack.ts';

let stack: KubeStack;

before(async () => {
  stack = await startKubeStack({
    policies: [
      'test/wasm-filter/fixtures/reads-without-masking.yaml',
      'test/wasm-filter/fixtures/card-masking-for-another-agent.yaml',
    ],
    agent: 'planner-1',
    vaultToken: 'vault-kube-sa-token-7e21',
    credential: 'static-token',
    api: { logFollowLines: 6, logIntervalMs: 50 },
    wasm: true,
  });
});

after(() => stack?.close());

test('kubectl logs -f: card numbers masked by the filter alone, e-mail addresses (named by no policy) untouched', async () => {
  let chunks = 0;
  const r = await stack.kubectl.run(['logs', '-f', 'web-5d8f7c6b9d-abcde', '-n', 'prod'], {
    onStdout: () => {
      chunks++;
    },
    timeoutMs: 15_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(chunks > 1, 'streamed');
  assert.match(r.stdout, /card=\*{16}/, 'the filter masked (strategy mask: one * per digit)');
  assert.ok(!r.stdout.includes('4111111111111111'));
  assert.match(r.stdout, /jane\.doe@example\.com/, 'ext_proc masked nothing for this agent');
  assert.ok((stack.envoy.wasm?.host.metric('portcullis.bytes_masked') ?? 0n) > 0n);
});
