/**
 * The Kubernetes ext_proc processor against the bare echo processor, in one run: the same Envoy stand-in settings
 * (envoy/portcullis.yaml), the same API-server stand-in, the same request (GET /api/v1/namespaces/dev/pods, a JSON
 * list). Ours does token verification, classification, a 20-rule policy (the bundled guardrails plus filler rules),
 * recording to Redis and response masking; echo answers every message with an empty CONTINUE.
 * Run: node --import tsx bench/kube-extproc.bench.ts [requests=500]
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { kubeExtProcAdapter } from '../extproc/kube/index.ts';
import { startEchoProcessor } from '../test/envoy/echo-processor.ts';
import { startEnvoyStandIn, type EnvoyStandIn } from '../test/envoy/stand-in.ts';
import { startRedis } from '../test/harness/redis.ts';
import { startTestService } from '../test/harness/service.ts';
import { startKubeApiServer } from '../test/kube-apiserver/server.ts';

const N = Number(process.argv[2] ?? 500);
const CONCURRENCY = 8;
const UPSTREAM_TOKEN = 'bench-upstream-token-5b2c';

function policyWithTwentyRules(): string {
  const base = readFileSync(new URL('../examples/policies/kubernetes-guardrails.yaml', import.meta.url), 'utf8');
  const filler = Array.from({ length: 13 }, (_, i) => [
    `  - name: filler-${i}`,
    `    when: k8s.namespace == "team-${i}" && k8s.verb in ["delete", "deletecollection"] && k8s.resource != "events"`,
    '    action: deny',
    `    message: team-${i} is read-only for agents.`,
  ].join('\n')).join('\n');
  return base.replace('\nmasking:', `\n${filler}\nmasking:`);
}

async function measure(envoy: EnvoyStandIn, token: string, concurrency: number): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: envoy.caPem });
  const once = () => new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    https.get(`${envoy.url}/api/v1/namespaces/dev/pods`, { agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
  for (let i = 0; i < 50; i++) await once(); // warm-up: JIT, connections, caches
  const times: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < N) times.push(await once());
  }));
  agent.destroy();
  return times.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  writeFileSync(join(dir, 'kube-token'), UPSTREAM_TOKEN);
  const redis = await startRedis({ appendonly: false });
  const api = await startKubeApiServer({ tls: true, expectedToken: UPSTREAM_TOKEN });
  const svc = await startTestService({ redisUrl: redis.url, adapters: [kubeExtProcAdapter()], config: { bootstrap: { policies: [], targets: [] }, log: { level: 'warn' } } });
  const admin = svc.adminToken;
  const created = await svc.call(admin, 'POST', '/v1/policies', { source: policyWithTwentyRules() });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  await svc.call(admin, 'POST', '/v1/targets', { name: 'kube-dev', kind: 'kubernetes', address: api.url, credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'kube-token')}` } });
  await svc.call(admin, 'POST', '/v1/agents', { id: 'bench-agent', groups: ['agents'] });
  await svc.core.targets.refresh();
  await svc.core.policies.reload();
  const token = (await svc.call(admin, 'POST', '/v1/tokens', { agent: 'bench-agent', targets: ['kube-dev'], ttl: '1h' })).body.token as string;
  const echo = await startEchoProcessor();
  const upstream = { url: api.url, ca: api.caPem };
  const ours = await startEnvoyStandIn({ processorAddress: `127.0.0.1:${svc.grpcPort}`, upstream });
  const bare = await startEnvoyStandIn({ processorAddress: echo.address, upstream });
  try {
    console.log(`${N} requests each, GET /api/v1/namespaces/dev/pods through the Envoy stand-in (TLS, bodies BUFFERED)`);
    for (const c of [1, CONCURRENCY]) {
      // Echo swaps no token: its client presents the upstream's own token, so both reach the same 200.
      const e = await measure(bare, UPSTREAM_TOKEN, c);
      const o = await measure(ours, token, c);
      const line = (name: string, t: number[]) => `  ${name.padEnd(10)} p50 ${pct(t, 50).toFixed(2)} ms  p99 ${pct(t, 99).toFixed(2)} ms`;
      console.log(`concurrency ${c}:`);
      console.log(line('echo', e));
      console.log(line('portcullis', o));
      console.log(`  ratio      p50 ${(pct(o, 50) / pct(e, 50)).toFixed(2)}x  p99 ${(pct(o, 99) / pct(e, 99)).toFixed(2)}x  (goal: p50 within 1.5x)`);
    }
    await svc.core.recorder.flush();
    console.log(`recorded events: ${JSON.stringify(svc.core.recorder.stats())}`);
  } finally {
    await ours.close();
    await bare.close();
    await echo.close();
    await svc.close();
    await api.close();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
