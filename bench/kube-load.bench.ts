/**
 * The Kubernetes path under 8-way keep-alive load, in one run: our service (token verification, classification, a
 * 20-rule policy, recording to Redis, masking) against the bare echo processor, each behind the Envoy stand-in with
 * graceful close (envoy/portcullis.yaml's runtime flag) and with Envoy's default half-close + reset. Prints p50/p99
 * of the answered requests, the failure counts, and the ratios to echo.
 * Run: node --import tsx bench/kube-load.bench.ts [requests=3000]
 */
import { formatOutcomes, percentile, runLoad, type LoadResult } from '../test/harness/https-load.ts';
import { startSplitKubeBench, UPSTREAM_TOKEN } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 3000);
const CONCURRENCY = 8;

async function main(): Promise<void> {
  const bench = await startSplitKubeBench();
  try {
    console.log(
      `${N} requests per row, ${CONCURRENCY} concurrent keep-alive HTTPS clients, GET /api/v1/namespaces/dev/pods through the Envoy stand-in`,
    );
    for (const gracefulClose of [true, false]) {
      const rows: [string, LoadResult][] = [];
      for (const processor of ['echo', 'portcullis'] as const) {
        const envoy = await bench.standIn(processor, { gracefulClose });
        const token = processor === 'echo' ? UPSTREAM_TOKEN : bench.agentToken;
        await runLoad({ url: envoy.url, ca: envoy.caPem, token, requests: 200, concurrency: CONCURRENCY }); // warm-up
        rows.push([
          processor,
          await runLoad({ url: envoy.url, ca: envoy.caPem, token, requests: N, concurrency: CONCURRENCY }),
        ]);
      }
      console.log(
        gracefulClose
          ? 'graceful close (ext_proc_graceful_grpc_close: true):'
          : 'resets on (Envoy default: half-close + reset):',
      );
      for (const [name, r] of rows) {
        console.log(
          `  ${name.padEnd(10)} p50 ${percentile(r.okLatencies, 50).toFixed(2)} ms  p99 ${percentile(r.okLatencies, 99).toFixed(2)} ms  `
            + `${(N / (r.elapsedMs / 1000)).toFixed(0)} req/s  failures ${r.failures} (${formatOutcomes(r.outcomes)})`,
        );
      }
      const [[, e], [, o]] = rows;
      console.log(
        `  ratio      p50 ${(percentile(o.okLatencies, 50) / percentile(e.okLatencies, 50)).toFixed(2)}x  p99 ${(percentile(o.okLatencies, 99) / percentile(e.okLatencies, 99)).toFixed(2)}x`,
      );
    }
  } finally {
    await bench.close();
  }
}

await main();
