/** Runs the real kubectl against a server: a kubeconfig and a private HOME/cache in a temp dir, bounded by a timeout. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KubectlEnv {
  dir: string;
  kubeconfig: string;
  run(
    args: string[],
    opts?: { timeoutMs?: number; stdin?: string; onStdout?: (chunk: string) => void },
  ): Promise<KubectlResult>;
  cleanup(): void;
}

export interface KubectlResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Writes a kubeconfig for `server` with the CA inline (certificate-authority-data) and a bearer token. */
export function kubectlEnv(server: string, caPem: string, token?: string): KubectlEnv {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kubectl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const cluster = caPem === '' ? '' : `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}\n`;
  const user = token === undefined ? '  user: {}\n' : `  user:\n    token: ${token}\n`;
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: ${server}
${cluster}users:
- name: agent
${user}contexts:
- name: standin
  context:
    cluster: standin
    user: agent
current-context: standin
`,
    { mode: 0o600 },
  );
  return {
    dir,
    kubeconfig,
    run: (args, opts = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            KUBECACHEDIR: join(dir, 'cache'),
            KUBECONFIG: kubeconfig,
          },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => {
          stdout += c;
          opts.onStdout?.(c);
        });
        child.stderr.setEncoding('utf8').on('data', (c: string) => {
          stderr += c;
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
        child.stdin.end(opts.stdin ?? '');
      }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
