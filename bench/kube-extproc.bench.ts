/**
 * The Kubernetes path's added latency: our ext_proc processor against the bare echo processor, in one run, in
 * microseconds added per request (goal ≤ 100 µs, budget ≤ 250 µs at p50). The same Envoy stand-in settings
 * (envoy/portcullis.yaml), the same API-server stand-in, the same request (GET /api/v1/namespaces/dev/pods, a JSON
 * list). Ours does token verification, classification, a 20-rule policy (the bundled guardrails plus filler rules),
 * recording to Redis and response masking; echo answers every message with an empty CONTINUE.
 *
 * The stand-ins, the API server stand-in and the clients run in this process; the two processors in a child process
 * (bench/processors-child.ts), as Envoy and its ext_proc service are two processes. The machine is shared (two cores),
 * so one long measurement of each side picks up whatever load happened during it. Instead the sides alternate in ROUNDS rounds (echo, ours,
 * echo, ours, …), each after its own warm-up; the figures are the medians over rounds of each side's p50/p99 and of
 * the per-round ratios, with the spread of the p50 ratio so noise is visible.
 * Run: node --import tsx bench/kube-extproc.bench.ts [requests per round=200] [rounds=15]
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { EnvoyStandIn } from '../test/envoy/stand-in.ts';
import { startSplitKubeBench, UPSTREAM_TOKEN } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 15);
const WARM_UP = 100;
const CONCURRENCY = 8;

async function measure(envoy: EnvoyStandIn, token: string, concurrency: number): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: envoy.caPem });
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      https
        .get(
          `${envoy.url}/api/v1/namespaces/dev/pods`,
          { agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`HTTP ${res.statusCode}`)),
            );
          },
        )
        .on('error', reject);
    });
  for (let i = 0; i < WARM_UP; i++) await once(); // warm-up: JIT, connections, caches
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < N) times.push(await once());
    }),
  );
  agent.destroy();
  return times.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]): number =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );

async function main(): Promise<void> {
  // The processors run in a process of their own, as an ext_proc service does beside Envoy.
  const bench = await startSplitKubeBench();
  const token = bench.agentToken;
  const ours = await bench.standIn('portcullis');
  const bare = await bench.standIn('echo');
  try {
    console.log(
      `${N} requests per side per round, ${ROUNDS} rounds, GET /api/v1/namespaces/dev/pods through the Envoy stand-in (TLS, bodies BUFFERED)`,
    );
    for (const c of [1, CONCURRENCY]) {
      const rounds: { e50: number; e99: number; o50: number; o99: number }[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        // Echo swaps no token: its client presents the upstream's own token, so both reach the same 200.
        const e = await measure(bare, UPSTREAM_TOKEN, c);
        const o = await measure(ours, token, c);
        rounds.push({ e50: pct(e, 50), e99: pct(e, 99), o50: pct(o, 50), o99: pct(o, 99) });
      }
      const added = rounds.map((x) => (x.o50 - x.e50) * 1000).sort((a, b) => a - b);
      const line = (name: string, p50: number, p99: number) =>
        `  ${name.padEnd(10)} p50 ${p50.toFixed(3)} ms  p99 ${p99.toFixed(3)} ms`;
      console.log(`concurrency ${c} (medians of ${ROUNDS} rounds):`);
      console.log(line('echo', median(rounds.map((x) => x.e50)), median(rounds.map((x) => x.e99))));
      console.log(line('portcullis', median(rounds.map((x) => x.o50)), median(rounds.map((x) => x.o99))));
      console.log(
        `  added      p50 ${median(added).toFixed(0)} µs  p99 ${median(rounds.map((x) => (x.o99 - x.e99) * 1000)).toFixed(0)} µs  (budget p50 ≤ 250 µs, goal ≤ 100 µs)`,
      );
      console.log(
        `  added p50 per round (µs): ${added.map((x) => x.toFixed(0)).join(' ')}; ratio p50 ${median(rounds.map((x) => x.o50 / x.e50)).toFixed(2)}x`,
      );
    }
  } finally {
    await bench.close();
  }
}

await main();
