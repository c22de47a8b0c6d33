/**
 * Shared set-up of the Kubernetes-path benchmarks: Redis, the API server stand-in, the service with a 20-rule policy
 * (the bundled guardrails plus filler rules), recording on, one target and agent; the bare echo processor as the
 * baseline; Envoy stand-ins in front of either. Both processors reach the same 200 for GET /api/v1/namespaces/dev/pods.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeExtProcAdapter } from '../extproc/kube/index.ts';
import { startEchoProcessor } from '../test/envoy/echo-processor.ts';
import { startEnvoyStandIn, type EnvoyStandIn } from '../test/envoy/stand-in.ts';
import type { SettingsOverrides } from '../test/envoy/stand-in-config.ts';
import { startRedis } from '../test/harness/redis.ts';
import { startTestService, type TestService } from '../test/harness/service.ts';
import { startKubeApiServer } from '../test/kube-apiserver/server.ts';

export const UPSTREAM_TOKEN = 'bench-upstream-token-5b2c';

export function policyWithTwentyRules(): string {
  const base = readFileSync(new URL('../examples/policies/kubernetes-guardrails.yaml', import.meta.url), 'utf8');
  const filler = Array.from({ length: 13 }, (_, i) => [
    `  - name: filler-${i}`,
    `    when: k8s.namespace == "team-${i}" && k8s.verb in ["delete", "deletecollection"] && k8s.resource != "events"`,
    '    action: deny',
    `    message: team-${i} is read-only for agents.`,
  ].join('\n')).join('\n');
  return base.replace('\nmasking:', `\n${filler}\nmasking:`);
}

export interface KubeBench {
  svc: TestService;
  /** An agent token for our processor's stand-in. The echo processor swaps no token: its clients send UPSTREAM_TOKEN. */
  agentToken: string;
  /** The bare echo processor (host:port). */
  echoAddress: string;
  /** The API server stand-in, and the CA that signed its certificate. */
  apiUrl: string;
  apiCaPem: string;
  /** An Envoy stand-in in front of our service or of the echo processor (closed by close()). */
  standIn(processor: 'portcullis' | 'echo', overrides?: SettingsOverrides): Promise<EnvoyStandIn>;
  close(): Promise<void>;
}

export async function startKubeBench(): Promise<KubeBench> {
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
  const agentToken = (await svc.call(admin, 'POST', '/v1/tokens', { agent: 'bench-agent', targets: ['kube-dev'], ttl: '1h' })).body.token as string;
  const echo = await startEchoProcessor();
  const standIns: EnvoyStandIn[] = [];
  return {
    svc,
    agentToken,
    echoAddress: echo.address,
    apiUrl: api.url,
    apiCaPem: api.caPem,
    async standIn(processor, overrides) {
      const address = processor === 'echo' ? echo.address : `127.0.0.1:${svc.grpcPort}`;
      const s = await startEnvoyStandIn({ processorAddress: address, upstream: { url: api.url, ca: api.caPem }, overrides });
      standIns.push(s);
      return s;
    },
    async close() {
      for (const s of standIns) await s.close();
      await echo.close();
      await svc.close();
      await api.close();
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
