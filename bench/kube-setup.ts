/**
 * Shared set-up of the Kubernetes-path benchmarks: Redis, the API server stand-in, the service with a 20-rule policy
 * (the bundled guardrails plus filler rules), recording on, one target and agent; the bare echo processor as the
 * baseline; Envoy stand-ins in front of either. Both processors reach the same 200 for GET /api/v1/namespaces/dev/pods.
 *
 * Two shapes: startKubeBench() runs everything in this process (for benchmarks that look inside the service);
 * startSplitKubeBench() runs the two processors in a child process of their own, as Envoy and its ext_proc service
 * are two processes, so the stand-in and the clients do not share a thread with the processor they measure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { kubeExtProcAdapter } from '../extproc/kube/index.ts';
import { type RunningProcessor, startEchoProcessor } from '../test/envoy/echo-processor.ts';
import { type EnvoyStandIn, startEnvoyStandIn } from '../test/envoy/stand-in.ts';
import type { SettingsOverrides } from '../test/envoy/stand-in-config.ts';
import { startRedis } from '../test/harness/redis.ts';
import { startTestService, type TestService } from '../test/harness/service.ts';
import { type KubeApiServer, startKubeApiServer } from '../test/kube-apiserver/server.ts';

export const UPSTREAM_TOKEN = 'bench-upstream-token-5b2c';

export function policyWithTwentyRules(): string {
  const base = readFileSync(new URL('../examples/policies/kubernetes-guardrails.yaml', import.meta.url), 'utf8');
  const filler = Array.from({ length: 13 }, (_, i) =>
    [
      `  - name: filler-${i}`,
      `    when: k8s.namespace == "team-${i}" && k8s.verb in ["delete", "deletecollection"] && k8s.resource != "events"`,
      '    action: deny',
      `    message: team-${i} is read-only for agents.`,
    ].join('\n'),
  ).join('\n');
  return base.replace('\nmasking:', `\n${filler}\nmasking:`);
}

export interface Processors {
  svc: TestService;
  echo: RunningProcessor;
  agentToken: string;
  close(): Promise<void>;
}

/** The service (set up as described above) and the echo processor, in this process. */
export async function startProcessors(redisUrl: string, apiUrl: string, apiCaPath?: string): Promise<Processors> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  writeFileSync(join(dir, 'kube-token'), UPSTREAM_TOKEN);
  const svc = await startTestService({
    redisUrl,
    adapters: [kubeExtProcAdapter()],
    config: { bootstrap: { policies: [], targets: [] }, log: { level: 'warn' } },
  });
  const admin = svc.adminToken;
  const created = await svc.call(admin, 'POST', '/v1/policies', { source: policyWithTwentyRules() });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  await svc.call(admin, 'POST', '/v1/targets', {
    name: 'kube-dev',
    kind: 'kubernetes',
    address: apiUrl,
    // The gateway calls the API server itself for dry runs (rules on k8s.object): it must trust its certificate.
    ...(apiCaPath ? { caRef: `file:${apiCaPath}` } : {}),
    credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'kube-token')}` },
  });
  await svc.call(admin, 'POST', '/v1/agents', { id: 'bench-agent', groups: ['agents'] });
  await svc.core.targets.refresh();
  await svc.core.policies.reload();
  const agentToken = (
    await svc.call(admin, 'POST', '/v1/tokens', { agent: 'bench-agent', targets: ['kube-dev'], ttl: '1h' })
  ).body.token as string;
  const echo = await startEchoProcessor();
  return {
    svc,
    echo,
    agentToken,
    async close() {
      await echo.close();
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface KubeStandIns {
  /** An agent token for our processor's stand-in. The echo processor swaps no token: its clients send UPSTREAM_TOKEN. */
  agentToken: string;
  /** An Envoy stand-in in front of our service or of the echo processor (closed by close()). */
  standIn(processor: 'portcullis' | 'echo', overrides?: SettingsOverrides): Promise<EnvoyStandIn>;
  close(): Promise<void>;
}

export interface KubeBench extends KubeStandIns {
  svc: TestService;
  /** The bare echo processor (host:port). */
  echoAddress: string;
  /** The API server stand-in, and the CA that signed its certificate. */
  apiUrl: string;
  apiCaPem: string;
}

async function startUpstreams() {
  const redis = await startRedis({ appendonly: false });
  const api = await startKubeApiServer({ tls: true, expectedToken: UPSTREAM_TOKEN });
  const standIns: EnvoyStandIn[] = [];
  return {
    redis,
    api,
    async standIn(address: string, overrides?: SettingsOverrides): Promise<EnvoyStandIn> {
      const s = await startEnvoyStandIn({
        processorAddress: address,
        upstream: { url: api.url, ca: api.caPem },
        overrides,
      });
      standIns.push(s);
      return s;
    },
    async close() {
      for (const s of standIns) await s.close();
      await api.close();
      await redis.close();
    },
  };
}

export async function startKubeBench(): Promise<KubeBench> {
  const up = await startUpstreams();
  const p = await startProcessors(up.redis.url, up.api.url, up.api.caPath);
  return {
    svc: p.svc,
    agentToken: p.agentToken,
    echoAddress: p.echo.address,
    apiUrl: up.api.url,
    apiCaPem: up.api.caPem,
    standIn: (processor, overrides) =>
      up.standIn(processor === 'echo' ? p.echo.address : `127.0.0.1:${p.svc.grpcPort}`, overrides),
    async close() {
      await p.close();
      await up.close();
    },
  };
}

export interface SplitKubeBench extends KubeStandIns {
  /** The processors' process's memory after a full collection. */
  processorsMemory(): Promise<NodeJS.MemoryUsage>;
  /** The API server stand-in (its store, the requests it saw). */
  api: KubeApiServer;
}

/** As startKubeBench, with both processors in a child process (bench/processors-child.ts). */
export async function startSplitKubeBench(): Promise<SplitKubeBench> {
  const up = await startUpstreams();
  // BENCH_PROCESSOR_NODE_ARGS adds Node flags to the processors' process, e.g. `--cpu-prof --cpu-prof-dir=prof`
  // to see where the processor's time goes.
  const nodeArgs = (process.env.BENCH_PROCESSOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const script = new URL('./processors-child.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeArgs, '--import', 'tsx', script, up.redis.url, up.api.url],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout });
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the processors' process exited (${code})`)));
      lines.once('line', resolve);
    });
  const ready = JSON.parse(await nextLine()) as { grpcAddress: string; echoAddress: string; agentToken: string };
  return {
    agentToken: ready.agentToken,
    async processorsMemory() {
      const answer = nextLine();
      child.stdin.write('memory\n');
      return JSON.parse(await answer) as NodeJS.MemoryUsage;
    },
    api: up.api,
    standIn: (processor, overrides) =>
      up.standIn(processor === 'echo' ? ready.echoAddress : ready.grpcAddress, overrides),
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
      await up.close();
    },
  };
}
