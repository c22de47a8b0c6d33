/**
 * The whole SSH path for one test file: real Redis, a real sshd (test/harness/sshd.ts), the service with the SSH
 * gateway, target `web-1` (the sshd, its host key pinned, the gateway's key to it in a vault file), agent `planner-1`
 * with a token, and a plain TCP relay standing in for Envoy's tcp_proxy. `ssh()` runs OpenSSH's client through the
 * relay, answering the token prompt through SSH_ASKPASS (never on a command line), and pinning the gateway's host key.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshGatewayAdapter } from '../../extproc/ssh/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import { startSshd, startTcpRelay, type TcpRelay, type TestSshd } from '../harness/sshd.ts';

export const AGENT = 'planner-1';
export const TARGET = 'web-1';

export interface SshStack {
  redis: TestRedis;
  sshd: TestSshd;
  svc: TestService;
  relay: TcpRelay;
  /** The gateway's own port (behind the relay). */
  gatewayPort: number;
  gatewayHostKey: string;
  agentToken: string;
  dir: string;
  /** Runs OpenSSH `ssh` through the relay as AGENT@TARGET with `token` (default: the agent's). */
  ssh(args: string[], opts?: SshRunOptions): Promise<RunResult>;
  /** Runs `scp` or `sftp` the same way. */
  client(program: 'scp' | 'sftp', args: string[], opts?: SshRunOptions): Promise<RunResult>;
  /** The OpenSSH options that reach the gateway (pinned host key, token by askpass), for tmux and other drivers. */
  clientOptions(auth?: SshRunOptions['auth']): string[];
  /** Environment giving the token to OpenSSH through SSH_ASKPASS. */
  askpassEnv(token?: string): NodeJS.ProcessEnv;
  issueToken(ttl?: string): Promise<string>;
  close(): Promise<void>;
}

export interface SshRunOptions {
  token?: string;
  /** The authentication methods offered (default: keyboard-interactive and password, answered with the token). */
  auth?: 'token' | 'publickey';
  login?: string;
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export async function startSshStack(opts: { policies: string[]; maxHoldMs?: number }): Promise<SshStack> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ssh-'));
  const redis = await startRedis();
  const sshd = await startSshd();
  const svc = await startTestService({
    redisUrl: redis.url,
    adapters: [
      sshGatewayAdapter({
        host: '127.0.0.1',
        port: 0,
        hostKeyPath: join(dir, 'gateway', 'host_ed25519_key'),
        ...(opts.maxHoldMs !== undefined ? { maxHoldMs: opts.maxHoldMs } : {}),
      }),
    ],
    config: { bootstrap: { policies: opts.policies, targets: [] } },
  });
  const admin = svc.adminToken;
  const put = await svc.call(admin, 'POST', '/v1/targets', {
    name: TARGET,
    kind: 'ssh',
    address: `127.0.0.1:${sshd.port}`,
    hostKey: sshd.hostKey.publicKey,
    recording: 'fail-closed',
    credential: { kind: 'ssh-key', user: sshd.user, privateKeyRef: `file:${sshd.clientKey.path}` },
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal((await svc.call(admin, 'POST', '/v1/agents', { id: AGENT, groups: ['agents'] })).status, 201);
  await svc.core.targets.refresh();
  const issueToken = async (ttl = '30m'): Promise<string> => {
    const issued = await svc.call(admin, 'POST', '/v1/tokens', { agent: AGENT, targets: [TARGET], ttl });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    return issued.body.token as string;
  };
  const agentToken = await issueToken();
  const listener = svc.listeners.find((l) => l.name === 'ssh');
  assert.ok(listener, 'the service runs the ssh listener');
  const gatewayPort = Number(listener.address.split(':').pop());
  const relay = await startTcpRelay(gatewayPort);
  const gatewayHostKey = listener.details.hostKey;
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${relay.port} ${gatewayHostKey}\n`);
  const askpass = join(dir, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$PORTCULLIS_TEST_TOKEN"\n');
  chmodSync(askpass, 0o700);

  const askpassEnv = (token = agentToken): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: dir,
    SSH_ASKPASS: askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: ':0',
    PORTCULLIS_TEST_TOKEN: token,
  });
  const clientOptions = (auth: SshRunOptions['auth'] = 'token'): string[] => [
    '-F',
    'none',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    auth === 'publickey' ? 'PubkeyAuthentication=yes' : 'PubkeyAuthentication=no',
    '-o',
    auth === 'publickey'
      ? 'PreferredAuthentications=publickey'
      : 'PreferredAuthentications=keyboard-interactive,password',
    '-o',
    'NumberOfPasswordPrompts=1',
    '-o',
    'ConnectTimeout=20',
  ];
  const run = (program: string, args: string[], o: SshRunOptions = {}): Promise<RunResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(program, args, { env: askpassEnv(o.token), stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
      child.stdin.end(o.input ?? '');
    });
  return {
    redis,
    sshd,
    svc,
    relay,
    gatewayPort,
    gatewayHostKey,
    agentToken,
    dir,
    ssh: (args, o = {}) =>
      run(
        'ssh',
        [
          ...clientOptions(o.auth),
          '-p',
          String(relay.port),
          '-l',
          o.login ?? `${AGENT}@${TARGET}`,
          '127.0.0.1',
          ...args,
        ],
        o,
      ),
    client: (program, args, o = {}) => run(program, [...clientOptions(), '-P', String(relay.port), ...args], o),
    clientOptions,
    askpassEnv,
    issueToken,
    async close() {
      await relay.close();
      await svc.close();
      await sshd.close();
      await redis.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
