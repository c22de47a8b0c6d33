/**
 * Regenerates test/kube/fixtures/kubectl-1.32.json: runs the real kubectl against the API-server stand-in and keeps
 * what it sent (method, raw path, content type, body). Run: node --import tsx test/kube/capture-kubectl.ts
 * The fixture is replayed through classifyKubeRequest by request-info.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { startKubeApiServer } from '../kube-apiserver/server.ts';
import { kubectlEnv } from '../kube-apiserver/kubectl.ts';

const COMMANDS: string[][] = [
  ['get', 'pods', '-n', 'dev'],
  ['get', 'secret', 'db', '-n', 'prod', '-o', 'yaml'],
  ['get', 'pods', '-n', 'dev', '--field-selector', 'metadata.name=worker-0', '-l', 'app=worker'],
  ['get', 'pods', '-n', 'dev', '--watch', '--request-timeout=1s'],
  ['scale', 'deployment', 'web', '-n', 'prod', '--replicas=3'],
  [
    'patch',
    'deployment',
    'web',
    '-n',
    'prod',
    '--type=json',
    '-p',
    '[{"op":"replace","path":"/spec/replicas","value":4}]',
  ],
  ['patch', 'deployment', 'web', '-n', 'prod', '--type=merge', '-p', '{"spec":{"replicas":5}}'],
  ['patch', 'deployment', 'web', '-n', 'prod', '-p', '{"spec":{"replicas":6}}'],
  ['label', 'configmap', 'app-config', '-n', 'dev', 'team=payments'],
  ['create', 'configmap', 'extra', '-n', 'dev', '--from-literal=k=v'],
  ['create', 'configmap', 'dry', '-n', 'dev', '--from-literal=k=v', '--dry-run=server'],
  ['delete', 'configmap', 'extra', '-n', 'dev'],
  ['delete', 'configmap', 'app-config', '-n', 'dev', '--dry-run=server'],
  ['create', 'token', 'default', '-n', 'dev'],
  ['logs', 'worker-0', '-n', 'dev', '--tail=2'],
  ['exec', '-n', 'dev', 'worker-0', '--', 'ls'],
  ['delete', 'namespace', 'prod'],
];

const server = await startKubeApiServer({ expectedToken: 'fixture-token' });
const kubectl = kubectlEnv(server.url, server.caPem, 'fixture-token');
const version = execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
const out: { kubectl: string; commands: { command: string; requests: object[] }[] } = {
  kubectl: (JSON.parse(version) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion,
  commands: [],
};
try {
  for (const args of COMMANDS) {
    const before = server.requests.length;
    await kubectl.run(
      [...(args.some((a) => a.startsWith('--request-timeout')) ? [] : ['--request-timeout=5s']), ...args],
      { timeoutMs: 15_000 },
    );
    const requests = server.requests
      .slice(before)
      .filter(
        (r) =>
          (r.path.split('?')[0] !== '/version' && !/^\/apis?(\/[^/]+){0,2}$/.test(r.path.split('?')[0]))
          || /\/(namespaces|pods)/.test(r.path),
      )
      .map(({ method, path, contentType, contentEncoding, upgrade, body, bodyBase64 }) => ({
        method,
        path,
        contentType,
        contentEncoding,
        upgrade,
        body,
        bodyBase64,
      }))
      // a watch that ends is re-opened with the same request; one is enough for a fixture
      .filter((r, i, all) => i === 0 || JSON.stringify(r) !== JSON.stringify(all[i - 1]));
    out.commands.push({ command: `kubectl ${args.join(' ')}`, requests });
  }
} finally {
  kubectl.cleanup();
  await server.close();
}
writeFileSync(new URL('./fixtures/kubectl-1.32.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
