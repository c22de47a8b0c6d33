/**
 * Many watches held at once: N `watch=true` requests opened together through the Envoy stand-in (no gRPC retries, as
 * in Envoy), each on its own TLS connection, against our service in a process of its own. Checks that every one is
 * answered 200 and held (none ended once all are open upstream), prints the processors' process memory per held
 * watch (heap and external after a full collection), then writes one object every watch receives at once and counts the watches that see it and those that the
 * stand-in's message_timeout ends (a burst the processor answers too slowly).
 * Run: node --import tsx bench/kube-watches.bench.ts [watches=4000]
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { openWatches } from '../test/harness/watches.ts';
import { waitFor } from '../test/harness/ports.ts';
import { findResource } from '../test/kube-apiserver/discovery.ts';
import { startSplitKubeBench } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 4000);

/** The N watching clients, in their own process (bench/watch-clients-child.ts), seen through the same questions. */
async function remoteWatches(opts: { url: string; ca: string; token: string; path: string; count: number }) {
  const child = fork(new URL('./watch-clients-child.ts', import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
  });
  const ask = async <T>(m: object, reply: string): Promise<T> => {
    const answer = new Promise<T>((resolve) => {
      const on = (r: { op: string }) => {
        if (r.op !== reply) return;
        child.off('message', on);
        resolve(r as T);
      };
      child.on('message', on);
    });
    child.send(m);
    return answer;
  };
  type State = { statuses: string[]; ended: number; seen: number };
  const opened = ask<unknown>({ op: 'open', ...opts }, 'opened');
  let last: State = { statuses: [], ended: 0, seen: 0 };
  const refresh = async (needle = ''): Promise<State> => {
    last = await ask<State>({ op: 'state', needle }, 'state');
    return last;
  };
  return {
    opened: opened.then(() => refresh()),
    refresh,
    statuses: () => last.statuses,
    ended: () => last.ended,
    seen: () => last.seen,
    close: async () => {
      child.send({ op: 'close' });
      await once(child, 'exit');
    },
  };
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
    const before = await bench.processorsMemory();
    const countersBefore = envoy.counters.snapshot();
    const t0 = Date.now();
    const watches = await remoteWatches({ url: envoy.url, ca: envoy.caPem, token: bench.agentToken, path, count: N });
    await watches.opened;
    const openedMs = Date.now() - t0;
    const refused = watches.statuses().filter((s) => s !== '200').length;
    const outcomes = new Map<string, number>();
    for (const s of watches.statuses()) outcomes.set(s, (outcomes.get(s) ?? 0) + 1);
    console.log(`answers: ${[...outcomes].map(([s, n]) => `${s}×${n}`).join(', ')}`);
    await waitFor(
      () => bench.api.requests.filter((q) => q.path.includes('watch=true')).length >= N - refused + 20,
      60_000,
      'every watch upstream',
    );
    await watches.refresh();
    const held = await bench.processorsMemory();
    const counters = envoy.counters.snapshot();
    console.log(
      `${N} watches opened at once in ${openedMs} ms: ${N - refused} answered 200, ${refused} refused, `
        + `${watches.ended()} ended by the time all were open upstream`,
    );
    const grew = (k: 'heapUsed' | 'external' | 'rss') => (held[k] - before[k]) / 1024;
    console.log(
      `while opening: ${counters.message_timeouts - countersBefore.message_timeouts} message timeouts, `
        + `${counters.streams_failed - countersBefore.streams_failed} ext_proc streams failed`,
    );
    console.log(
      `processors' memory after a full GC, growth per held watch (${N - refused - watches.ended()} held): `
        + `heap ${(grew('heapUsed') / (N - refused)).toFixed(1)} KiB + external ${(grew('external') / (N - refused)).toFixed(1)} KiB `
        + `(RSS ${(grew('rss') / (N - refused)).toFixed(1)} KiB)`,
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
    const endedBefore = (await watches.refresh()).ended;
    await waitFor(
      async () => {
        const now = await watches.refresh(name);
        return now.seen + now.ended - endedBefore >= N - refused - endedBefore;
      },
      300_000,
      'each watch to see the new object or end',
    );
    console.log(
      `burst: ${watches.seen()} watches saw the object written after all opened; `
        + `${envoy.counters.snapshot().message_timeouts - timeoutsBefore} message timeouts ended the others`,
    );
    await watches.close();
    if (refused > 0 || endedBefore > 0) process.exitCode = 1;
  } finally {
    await bench.close();
  }
}

await main();
