/**
 * The whole Kubernetes path for one test file: real Redis, the API server stand-in (TLS), the service with the
 * Kubernetes adapter, target `kube-dev` with its upstream credential in a vault file, one agent with a token, the
 * Envoy stand-in (TLS, settings from envoy/portcullis.yaml) and a kubectl configured with the agent's token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeExtProcAdapter } from '../../extproc/kube/index.ts';
import type { ServiceConfig } from '../../extproc/service/config.ts';
import { REFUSALS_PATH, renderPluginConfiguration, SNAPSHOT_PATH } from '../../extproc/snapshot/index.ts';
import { startEnvoyStandIn, type EnvoyStandIn, type StandInOptions } from '../envoy/stand-in.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { kubectlEnv, type KubectlEnv } from '../kube-apiserver/kubectl.ts';
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from '../kube-apiserver/server.ts';

export interface KubeStack {
  redis: TestRedis;
  api: KubeApiServer;
  svc: TestService;
  envoy: EnvoyStandIn;
  kubectl: KubectlEnv;
  /** Where the vault file with the upstream credential lives. */
  dir: string;
  agentToken: string;
  sessionId: string;
  close(): Promise<void>;
}

export interface KubeStackOptions {
  /** Policy files seeded into the store. */
  policies: string[];
  agent: string;
  /** The credential the gateway holds: used as the static upstream token, or as TokenRequest's long-lived one. */
  vaultToken: string;
  credential: 'static-token' | 'token-request';
  api?: Omit<KubeApiServerOptions, 'tls' | 'expectedToken' | 'tokenRequestToken'>;
  redis?: { appendonly?: boolean };
  /** More service configuration (merged over the stack's). */
  config?: Partial<ServiceConfig>;
  /** Stand-in settings that differ from envoy/portcullis.yaml (e.g. a longer message timeout). */
  envoy?: StandInOptions['overrides'];
  /** What the stand-in's timers run on (a test about Envoy's timers moves a ManualClock itself). */
  envoyClock?: StandInOptions['clock'];
  /** Put the proxy-wasm filter before ext_proc, its snapshot refreshed from the service's admin API. */
  wasm?: boolean;
}

export async function startKubeStack(opts: KubeStackOptions): Promise<KubeStack> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kube-'));
  const vaultRef = `file:${join(dir, 'kube-token')}`;
  writeFileSync(join(dir, 'kube-token'), opts.vaultToken);
  const redis = await startRedis(opts.redis);
  const api = await startKubeApiServer({
    tls: true,
    ...opts.api,
    ...(opts.credential === 'static-token'
      ? { expectedToken: opts.vaultToken }
      : { tokenRequestToken: opts.vaultToken }),
  });
  const svc = await startTestService({
    redisUrl: redis.url,
    adapters: [kubeExtProcAdapter()],
    config: { bootstrap: { policies: opts.policies, targets: [] }, ...opts.config },
  });
  const admin = svc.adminToken;
  const put = await svc.call(admin, 'POST', '/v1/targets', {
    name: 'kube-dev',
    kind: 'kubernetes',
    address: api.url,
    caRef: `file:${api.caPath}`,
    recording: 'fail-closed',
    credential:
      opts.credential === 'static-token'
        ? { kind: 'static-token', tokenRef: vaultRef }
        : {
            kind: 'token-request',
            tokenRef: vaultRef,
            namespace: 'prod',
            serviceAccount: 'portcullis-agent',
            ttlSeconds: 3600,
          },
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal((await svc.call(admin, 'POST', '/v1/agents', { id: opts.agent, groups: ['agents'] })).status, 201);
  await svc.core.targets.refresh();
  const issued = await svc.call(admin, 'POST', '/v1/tokens', { agent: opts.agent, targets: ['kube-dev'], ttl: '30m' });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const wasmToken = opts.wasm ? (await svc.principal('envoy-wasm-filter', ['auditor'])).token : '';
  const envoy = await startEnvoyStandIn({
    processorAddress: `127.0.0.1:${svc.grpcPort}`,
    upstream: { url: api.url, ca: api.caPem },
    ...(opts.envoy ? { overrides: opts.envoy } : {}),
    ...(opts.envoyClock ? { clock: opts.envoyClock } : {}),
    ...(opts.wasm
      ? {
          wasm: {
            pluginConfiguration: renderPluginConfiguration({
              cluster: 'portcullis_admin',
              authority: 'portcullis-admin',
              path: SNAPSHOT_PATH,
              token: { env: 'PORTCULLIS_WASM_REFRESH_TOKEN' },
              periodMs: 1000,
              report: { path: REFUSALS_PATH, target: 'kube-dev' },
            }),
            clusters: { portcullis_admin: svc.adminUrl },
            environment: { PORTCULLIS_WASM_REFRESH_TOKEN: wasmToken },
          },
        }
      : {}),
  });
  await envoy.wasm?.refreshNow();
  const kubectl = kubectlEnv(envoy.url, envoy.caPem, issued.body.token);
  return {
    redis,
    api,
    svc,
    envoy,
    kubectl,
    dir,
    agentToken: issued.body.token,
    sessionId: issued.body.sessionId,
    async close() {
      kubectl.cleanup();
      await envoy.close();
      await svc.close();
      await api.close();
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
