/**
 * The spine's own cost for one allowed action, in process and without gRPC: authenticate the agent's token, begin an
 * action, decide it (the bundled guardrails plus filler rules, 20 in all), obtain the upstream credential, record the
 * action, the decision and the output. Beside it, in the same run, the same sequence's floor: the token check alone.
 * Run: node --import tsx bench/spine.bench.ts [actions per round=5000] [rounds=5]
 */
import { performance } from 'node:perf_hooks';
import { classifyKubeRequest } from '../extproc/kube/index.ts';
import { Spine, type Action, type K8sContext } from '../extproc/spine/index.ts';
import { startKubeBench } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 5);

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]): number =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );

async function main(): Promise<void> {
  const bench = await startKubeBench();
  const spine = new Spine(bench.svc.core);
  const k8s = classifyKubeRequest({ method: 'GET', path: '/api/v1/namespaces/dev/pods' }) as K8sContext;
  const action: Action = {
    section: { protocol: 'kubernetes', k8s },
    recorded: { method: 'GET', path: k8s.path },
    canonical: () => k8s.path,
    summary: () => k8s.path,
  };
  const opts = { maxHoldMs: 0, credential: 'bearer-token' as const };
  let n = 0;
  const oneAction = async (): Promise<number> => {
    const t0 = performance.now();
    const auth = await spine.authenticate({ protocol: 'kubernetes', target: 'kube-dev', token: bench.agentToken });
    if (!auth.ok) throw new Error(auth.refusal.message);
    const run = spine.begin(auth.session, `req_bench_${n++}`);
    const outcome = await run.decide(action, opts);
    if (outcome.kind !== 'allow') throw new Error(`not allowed: ${JSON.stringify(outcome)}`);
    run.output({ status: 200, bytes: 1234 });
    return performance.now() - t0;
  };
  const tokenOnly = async (): Promise<number> => {
    const t0 = performance.now();
    await bench.svc.core.tokens.verify(bench.agentToken, 'kube-dev');
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < 2000; i++) await oneAction();
    const rounds: { a50: number; a99: number; t50: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a: number[] = [];
      const t: number[] = [];
      for (let i = 0; i < N; i++) {
        a.push(await oneAction());
        t.push(await tokenOnly());
        // Let the recorder's writer run as it would between requests.
        if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
      }
      a.sort((x, y) => x - y);
      t.sort((x, y) => x - y);
      rounds.push({ a50: pct(a, 50) * 1000, a99: pct(a, 99) * 1000, t50: pct(t, 50) * 1000 });
      await bench.svc.core.recorder.flush();
    }
    console.log(`${N} allowed actions per round, ${ROUNDS} rounds (medians): one action through the spine`);
    console.log(
      `  spine       p50 ${median(rounds.map((x) => x.a50)).toFixed(1)} µs  p99 ${median(rounds.map((x) => x.a99)).toFixed(1)} µs`,
    );
    console.log(`  token check p50 ${median(rounds.map((x) => x.t50)).toFixed(1)} µs (part of the above)`);
    console.log(`  spine p50 per round (µs): ${rounds.map((x) => x.a50.toFixed(1)).join(' ')}`);
  } finally {
    await bench.close();
  }
}

await main();
