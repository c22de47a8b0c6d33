/**
 * `portcullis demo`: the Kubernetes path without Envoy, for trying it on one machine. It starts Redis (if REDIS_URL is
 * unset), the service with the Kubernetes adapter and the bundled policy, the Kubernetes API server stand-in and the
 * Envoy stand-in (TLS, settings read from envoy/portcullis.yaml), registers a target, an agent and an approver, writes
 * a kubeconfig, prints commands to paste, and runs until SIGINT/SIGTERM.
 *
 * By design this command imports the test stand-ins (test/envoy, test/kube-apiserver): the Envoy stand-in plays
 * Envoy's part for trying and testing only and is never part of the product's data path.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { startEnvoyStandIn } from '../../../test/envoy/stand-in.ts';
import { startKubeApiServer } from '../../../test/kube-apiserver/server.ts';
import { kubeExtProcAdapter } from '../../kube/index.ts';
import { PACKAGE_ROOT } from '../../common/package-files.ts';
import { loadConfig } from '../../service/config.ts';
import { createLogger } from '../../service/logger.ts';
import { startService, type Service } from '../../service/service.ts';
import { EXIT, type CliIO, type CommandBuilder } from '../types.ts';

const TARGET = 'kube-dev';
const AGENT = 'planner-1';

const DESCRIPTION = `Runs the Kubernetes path on this machine without Envoy: Redis (started if REDIS_URL is unset), the
Portcullis service, a Kubernetes API server stand-in, and the Envoy stand-in on 127.0.0.1 with TLS. It writes
DIR/kubeconfig (an agent token for target ${TARGET}) and DIR/approver.token, prints kubectl commands to try, and runs
until Ctrl-C.

The demo uses the test stand-ins (test/envoy, test/kube-apiserver) by design: the Envoy stand-in plays Envoy's part
for trying and testing only. In production, run a real Envoy with envoy/portcullis.yaml in front of 'portcullis serve'.`;

export const demoCommand: CommandBuilder = ({ io, run }) =>
  new Command('demo')
    .description(DESCRIPTION)
    .option(
      '--dir <dir>',
      'where the demo keeps its files, emptied at start (default: $PORTCULLIS_DEMO_DIR or .portcullis/demo)',
    )
    .addHelpText(
      'after',
      '\nPorts come from the usual variables: PORTCULLIS_GRPC_PORT, PORTCULLIS_ADMIN_PORT, PORTCULLIS_METRICS_PORT (0 = any\nfree port), PORTCULLIS_LOCAL_REDIS_PORT or REDIS_URL.',
    )
    .action(run((opts: { dir?: string }) => demo(opts.dir, io)));

async function demo(dirOption: string | undefined, io: CliIO): Promise<number> {
  const dir = resolve(dirOption ?? io.env.PORTCULLIS_DEMO_DIR ?? '.portcullis/demo');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    await start(dir, io, stops);
  } catch (err) {
    await stopAll();
    io.stderr.write(`portcullis demo: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
  await new Promise<void>((done) => {
    const onSignal = (): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      done();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  io.stderr.write('portcullis demo: stopping\n');
  await stopAll();
  io.stderr.write('portcullis demo: stopped\n');
  return EXIT.ok;
}

async function start(dir: string, io: CliIO, stops: (() => Promise<void>)[]): Promise<void> {
  const upstreamToken = `demo-upstream-${randomBytes(12).toString('hex')}`;
  writeFileSync(join(dir, 'upstream.token'), upstreamToken, { mode: 0o600 });
  const api = await startKubeApiServer({ tls: true, expectedToken: upstreamToken });
  stops.push(() => api.close());
  writeFileSync(join(dir, 'kube-ca.crt'), api.caPem);

  const config = loadConfig({
    env: io.env,
    overrides: { dataDir: dir, bootstrap: { policies: ['examples/policies/kubernetes-guardrails.yaml'], targets: [] } },
  });
  // Logs go to stderr at warn, so the instructions on stdout stay readable.
  const service: Service = await startService(config, {
    logger: createLogger(io.env.PORTCULLIS_LOG_LEVEL ?? 'warn', process.stderr),
    adapters: [kubeExtProcAdapter()],
    baseDir: PACKAGE_ROOT,
  });
  stops.push(() => service.stop());

  const admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  const call = async (method: string, path: string, body: unknown, ok: number[]): Promise<{ token?: string }> => {
    const res = await fetch(service.adminUrl + path, {
      method,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const parsed = (await res.json().catch(() => null)) as { token?: string } | null;
    if (!ok.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(parsed)}`);
    return parsed ?? {};
  };
  await call(
    'PUT',
    `/v1/targets/${TARGET}`,
    {
      name: TARGET,
      kind: 'kubernetes',
      address: api.url,
      caRef: `file:${join(dir, 'kube-ca.crt')}`,
      recording: 'fail-closed',
      labels: { env: 'demo' },
      credential: { kind: 'static-token', tokenRef: `file:${join(dir, 'upstream.token')}` },
    },
    [200],
  );
  await call('POST', '/v1/agents', { id: AGENT, groups: ['agents'] }, [201, 409]);
  await service.core.targets.refresh();
  const issued = await call('POST', '/v1/tokens', { agent: AGENT, targets: [TARGET], ttl: '1h' }, [201]);
  const approver = await call(
    'POST',
    '/v1/principals',
    { name: `demo-approver-${randomBytes(3).toString('hex')}`, roles: ['approver'], groups: ['sre'] },
    [201],
  );
  writeFileSync(join(dir, 'approver.token'), `${approver.token}\n`, { mode: 0o600 });

  const envoy = await startEnvoyStandIn({
    config: join(PACKAGE_ROOT, 'envoy', 'portcullis.yaml'),
    processorAddress: `127.0.0.1:${service.grpcPort}`,
    upstream: { url: api.url, ca: api.caPem },
  });
  stops.push(() => envoy.close());
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters:
- name: portcullis-demo
  cluster:
    server: ${envoy.url}
    certificate-authority-data: ${Buffer.from(envoy.caPem).toString('base64')}
users:
- name: ${AGENT}
  user:
    token: ${issued.token}
contexts:
- name: portcullis-demo
  context: { cluster: portcullis-demo, user: ${AGENT} }
current-context: portcullis-demo
`,
    { mode: 0o600 },
  );

  io.stdout.write(`
Portcullis demo — the Kubernetes path without Envoy.

  The Envoy stand-in (test/envoy) plays Envoy's part here, for trying and testing only. In production a real Envoy
  runs envoy/portcullis.yaml in front of 'portcullis serve' (see README, "Running with a real Envoy").

  kubectl ─TLS─▶ Envoy stand-in ${envoy.url} ─ext_proc─▶ Portcullis 127.0.0.1:${service.grpcPort} (admin ${service.adminUrl})
                 └─▶ Kubernetes API stand-in ${api.url} (sees only the target's token, never the agent's)

In another terminal, as agent ${AGENT} (token valid 1 h):

  export KUBECONFIG=${kubeconfig}
  kubectl delete namespace prod                        # refused by policy
  kubectl get secret db -n prod -o yaml                # the Secret's values come back masked
  kubectl scale deployment web -n prod --replicas=20   # needs an approval: note the request id (apr_…)

Approve it as a human approver (group sre), then run the scale again — it goes through once:

  PORTCULLIS_ADMIN_URL=${service.adminUrl} PORTCULLIS_TOKEN=$(cat ${join(dir, 'approver.token')}) npx portcullis approvals approve <apr_id>

Ctrl-C stops everything.
portcullis demo: ready
`);
}
