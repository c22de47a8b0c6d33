/**
 * A real OpenSSH sshd (Debian's openssh-server) for one test file: its own config, host key, authorized keys, user CA
 * and pid file in a temporary directory, listening on a free loopback port. It logs to stderr (`-e`), kept so a test
 * can read what sshd saw (a certificate's serial and validity) and print it when something fails.
 *
 * The login user is the user running the tests (`os.userInfo()`): a dedicated system user would mean editing
 * /etc/passwd on every developer machine and CI runner. When that user is root, sshd needs its privilege separation
 * directory (/run/sshd, compiled in) and `PermitRootLogin prohibit-password`; passwords are never accepted.
 *
 * Also here: a plain TCP relay standing in for Envoy's tcp_proxy (bytes both ways, nothing else).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

const SSHD = '/usr/sbin/sshd';

export interface KeyPair {
  /** Path of the private key (OpenSSH format, no passphrase); the public key is at `${path}.pub`. */
  path: string;
  privateKey: string;
  /** The public key line, `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
}

export interface TestSshd {
  port: number;
  /** The login user: the user running the tests. */
  user: string;
  dir: string;
  /** sshd's host key: pin its public key in the target's registration. */
  hostKey: KeyPair;
  /** The key sshd accepts for `user` (what the gateway's vault holds). */
  clientKey: KeyPair;
  /** The user CA sshd trusts (`TrustedUserCAKeys`): certificates it signed log in as `user`. */
  userCa: KeyPair;
  /** What sshd has logged so far. */
  log(): string;
  close(): Promise<void>;
}

/** An ed25519 key pair made by ssh-keygen in `dir`. */
export function makeKeyPair(dir: string, name: string): KeyPair {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path], { stdio: 'ignore' });
  return { path, privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

export async function startSshd(opts: { extraConfig?: string[] } = {}): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sshd-'));
  const port = await freePort();
  const user = userInfo().username;
  const hostKey = makeKeyPair(dir, 'ssh_host_ed25519_key');
  const clientKey = makeKeyPair(dir, 'gateway_client_key');
  const userCa = makeKeyPair(dir, 'user_ca');
  writeFileSync(join(dir, 'authorized_keys'), `${clientKey.publicKey}\n`, { mode: 0o600 });
  const root = process.getuid?.() === 0;
  if (root) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey.path}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `TrustedUserCAKeys ${userCa.path}.pub`,
    `AllowUsers ${user}`,
    ...(root ? ['PermitRootLogin prohibit-password'] : []),
    'UsePAM no',
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'PrintLastLog no',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
    // sshd takes any of these from a client: a test can show which ones the gateway passes on.
    'AcceptEnv LANG LC_* TZ PORTCULLIS_TEST_*',
    ...(opts.extraConfig ?? []),
  ];
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, `${config.join('\n')}\n`);
  let output = '';
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  try {
    await waitForPort(port, 10_000);
  } catch (err) {
    child.kill('SIGTERM');
    throw new Error(`sshd did not start on ${port}: ${String(err)}\n${output}`);
  }
  return {
    port,
    user,
    dir,
    hostKey,
    clientKey,
    userCa,
    log: () => output,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TcpRelay {
  port: number;
  close(): Promise<void>;
}

/** A plain TCP relay on a free loopback port to `targetPort`: what Envoy's tcp_proxy does, and nothing more. */
export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    // Envoy sets TCP_NODELAY on both sides of a proxied connection.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await waitForPort(port, 5000);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
