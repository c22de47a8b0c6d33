/**
 * Many watches held at once: N `watch=true` requests opened together through the Envoy stand-in (no gRPC retries, as
 * in Envoy), each on its own TLS connection, against our service in a process of its own. Checks that every one is
 * answered 200 and held (none ended once all are open upstream), prints the processors' process memory (RSS) per held
 * watch, then writes one object every watch receives at once and counts the watches that see it and those that the
 * stand-in's message_timeout ends (a burst the processor answers too slowly).
 * Run: node --import tsx bench/kube-watches.bench.ts [watches=4000]
 */
import { readFileSync } from 'node:fs';
import { openWatches } from '../test/harness/watches.ts';
import { waitFor } from '../test/harness/ports.ts';
import { findResource } from '../test/kube-apiserver/discovery.ts';
import { startSplitKubeBench } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 4000);

/** Resident memory of a process in KiB (VmRSS in /proc/PID/status). */
function rssKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.match(/\d+/)?.[0] ?? Number.NaN);
}

async function main(): Promise<void> {
  const bench = await startSplitKubeBench();
  try {
    const envoy = await bench.standIn('portcullis');
    const path = '/api/v1/namespaces/dev/configmaps?watch=true';
    // Warm-up: a few watches, so that code paths are compiled and pools exist before the baseline is read.
    const warm = openWatches({ url: envoy.url, ca: envoy.caPem, token: bench.agentToken, path, count: 20 });
    await warm.opened;
    warm.close();
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssKiB(bench.processorsPid);
    const t0 = Date.now();
    const watches = openWatches({ url: envoy.url, ca: envoy.caPem, token: bench.agentToken, path, count: N });
    await watches.opened;
    const openedMs = Date.now() - t0;
    const refused = watches.statuses().filter((s) => s !== 200).length;
    const outcomes = new Map<number, number>();
    for (const s of watches.statuses()) outcomes.set(s, (outcomes.get(s) ?? 0) + 1);
    console.log(`answers: ${[...outcomes].map(([s, n]) => `${s}×${n}`).join(', ')}`);
    await waitFor(
      () => bench.api.requests.filter((q) => q.path.includes('watch=true')).length >= N - refused + 20,
      60_000,
      'every watch upstream',
    );
    const held = rssKiB(bench.processorsPid);
    console.log(
      `${N} watches opened at once in ${openedMs} ms: ${N - refused} answered 200, ${refused} refused, `
        + `${watches.ended()} ended by the time all were open upstream`,
    );
    console.log(
      `processors' RSS ${(before / 1024).toFixed(1)} MiB before, ${(held / 1024).toFixed(1)} MiB with the watches held: `
        + `${((held - before) / N).toFixed(1)} KiB per held watch`,
    );
    // A burst: one object written after all opened reaches every watch at once; the processor answers each watch's
    // body message in turn, and each answer must come within the stand-in's message_timeout (0.5 s, as in Envoy).
    const timeoutsBefore = envoy.counters.snapshot().message_timeouts;
    const name = `after-all-opened-${Date.now()}`;
    bench.api.store.put(findResource('', 'v1', 'configmaps')!, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'dev' },
      data: { note: 'written once every watch was open' },
    });
    const endedBefore = watches.ended();
    await waitFor(
      () => watches.seen(name) + watches.ended() - endedBefore >= N - refused - endedBefore,
      300_000,
      'each watch to see the new object or end',
    );
    console.log(
      `burst: ${watches.seen(name)} watches saw the object written after all opened; `
        + `${envoy.counters.snapshot().message_timeouts - timeoutsBefore} message timeouts ended the others`,
    );
    watches.close();
    if (refused > 0 || endedBefore > 0) process.exitCode = 1;
  } finally {
    await bench.close();
  }
}

await main();
