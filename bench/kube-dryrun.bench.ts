/**
 * The cost of admission-grade decisions: a write through the Envoy stand-in when a rule in scope reads `k8s.object`
 * (the processor first GETs the current object and dry-runs the write upstream) against the same write when no rule
 * does, in the same run, alternating rounds, and the bare echo processor as the floor. The write is an allowed merge
 * patch of a ConfigMap in dev (the bundled policy's `write-in-dev`); the two policy versions differ only in the
 * replicas rules that read `k8s.object`. Everything runs in this process (the API server stand-in answers in well
 * under a millisecond, so the figure is the gateway's own extra work plus two loopback round trips; against a real
 * API server add its dry-run time, typically a few milliseconds).
 * Run: node --import tsx bench/kube-dryrun.bench.ts [requests per round=100] [rounds=7]
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { EnvoyStandIn } from '../test/envoy/stand-in.ts';
import { policyWithTwentyRules, startKubeBench, UPSTREAM_TOKEN } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 100);
const ROUNDS = Number(process.argv[3] ?? 7);
const WARM_UP = 30;
const PATH = '/api/v1/namespaces/dev/configmaps/app-config';
const PATCH = JSON.stringify({ metadata: { labels: { bench: 'dry-run' } } });

async function measure(envoy: EnvoyStandIn, token: string): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: envoy.caPem });
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = https.request(
        `${envoy.url}${PATH}`,
        {
          method: 'PATCH',
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            'content-type': 'application/merge-patch+json',
            'content-length': Buffer.byteLength(PATCH),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(PATCH);
    });
  for (let i = 0; i < WARM_UP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < N; i++) times.push(await once());
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

/** The bundled policy (plus filler) without its two rules on k8s.object. */
function withoutObjectRules(source: string): string {
  return source.replace(/(?: {2}#.*\n)* {2}- name: (big|small)-scale-in-prod\n(?: {4}.*\n| {6}.*\n)+/g, '');
}

async function main(): Promise<void> {
  const bench = await startKubeBench();
  const admin = bench.svc.adminToken;
  const withObject = policyWithTwentyRules();
  const withoutObject = withoutObjectRules(withObject);
  if (withoutObject.includes('k8s.object')) throw new Error('the baseline policy still reads k8s.object');
  const use = async (source: string) => {
    const r = await bench.svc.call(admin, 'PUT', '/v1/policies/kubernetes-guardrails', { source });
    if (r.status !== 200 && r.status !== 201) throw new Error(JSON.stringify(r.body));
    await bench.svc.core.policies.reload();
  };
  const ours = await bench.standIn('portcullis');
  const bare = await bench.standIn('echo');
  try {
    console.log(`${N} sequential PATCHes of ${PATH} per side per round, ${ROUNDS} rounds`);
    const rounds: { e: number; plain: number; dry: number; plain99: number; dry99: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const e = await measure(bare, UPSTREAM_TOKEN);
      await use(withoutObject);
      const plain = await measure(ours, bench.agentToken);
      await use(withObject);
      const dry = await measure(ours, bench.agentToken);
      rounds.push({
        e: pct(e, 50),
        plain: pct(plain, 50),
        dry: pct(dry, 50),
        plain99: pct(plain, 99),
        dry99: pct(dry, 99),
      });
    }
    const m = (f: (x: (typeof rounds)[number]) => number) => median(rounds.map(f));
    console.log(`  echo                       p50 ${m((x) => x.e).toFixed(3)} ms`);
    console.log(
      `  portcullis, no object rule p50 ${m((x) => x.plain).toFixed(3)} ms  p99 ${m((x) => x.plain99).toFixed(3)} ms`,
    );
    console.log(
      `  portcullis, k8s.object     p50 ${m((x) => x.dry).toFixed(3)} ms  p99 ${m((x) => x.dry99).toFixed(3)} ms`,
    );
    console.log(
      `  dry run adds p50 ${(m((x) => x.dry - x.plain) * 1000).toFixed(0)} µs per write; ratio ${m((x) => x.dry / x.plain).toFixed(2)}x (per round: ${rounds.map((x) => (x.dry / x.plain).toFixed(2)).join(' ')})`,
    );
  } finally {
    await bench.close();
  }
}

await main();
