/**
 * The SSH gateway's cost against a direct connection to the same sshd, in one run: 100 sequential `exec`s on one
 * connection (added milliseconds per exec; goal ≤ 5 ms), and `cat` of a 100 MB file (throughput through the gateway
 * as a share of direct; goal ≥ 50 %, with masking on: the bundled policy's masking rule applies to every byte).
 *
 * Both sides use ssh2 as the client on one connection each, the gateway side through the TCP relay that stands in for
 * tcp_proxy; the real sshd (test/harness/sshd.ts) serves both. The sides alternate in rounds so load on the shared
 * machine hits both; the figures are medians over rounds.
 * Run: node --import tsx bench/ssh.bench.ts [execs=100] [megabytes=100] [rounds=3]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import { publicKeyBlob } from '../extproc/ssh/host-key.ts';
import { AGENT, startSshStack, TARGET } from '../test/ssh/ssh-stack.ts';

const EXECS = Number(process.argv[2] ?? 100);
const MEGABYTES = Number(process.argv[3] ?? 100);
const ROUNDS = Number(process.argv[4] ?? 3);

function connect(config: ConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ readyTimeout: 30_000, ...config });
    c.setNoDelay(true);
  });
}

/** Runs `command`; resolves with the bytes of stdout once the channel closes, rejects on a non-zero exit. */
function exec(client: Client, command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let bytes = 0;
      let code: number | null = null;
      ch.on('data', (d: Buffer) => {
        bytes += d.length;
      });
      ch.stderr.on('data', () => undefined);
      ch.on('exit', (c: number | null) => {
        code = c;
      });
      ch.on('close', () => (code === 0 ? resolve(bytes) : reject(new Error(`${command}: exit ${code}`))));
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const stack = await startSshStack({ policies: ['examples/policies/ssh-guardrails.yaml'] });
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ssh-bench-'));
  try {
    // Log-like text: what `cat` of a real file looks like to the masking engine (digits, words, no secrets).
    const line = 'Dec  2 12:00:00 web-1 app[4242]: request 0123456789 served in 12 ms status=200 path=/api/v1/items\n';
    const file = join(dir, 'big.log');
    writeFileSync(file, line.repeat(Math.ceil((MEGABYTES * 1024 * 1024) / line.length)));
    const pinned = publicKeyBlob(stack.gatewayHostKey) as Buffer;
    const gateway = await connect({
      host: '127.0.0.1',
      port: stack.relay.port,
      username: `${AGENT}@${TARGET}`,
      password: stack.agentToken,
      hostVerifier: (key: Buffer) => key.equals(pinned),
    });
    const sshdKey = publicKeyBlob(stack.sshd.hostKey.publicKey) as Buffer;
    const direct = await connect({
      host: '127.0.0.1',
      port: stack.sshd.port,
      username: stack.sshd.user,
      privateKey: stack.sshd.clientKey.privateKey,
      hostVerifier: (key: Buffer) => key.equals(sshdKey),
    });
    const sides = { direct, gateway } as const;
    const execMs: Record<keyof typeof sides, number[]> = { direct: [], gateway: [] };
    const mbps: Record<keyof typeof sides, number[]> = { direct: [], gateway: [] };
    for (const client of [direct, gateway]) for (let i = 0; i < 10; i++) await exec(client, 'true'); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ['direct', 'gateway'] as const) {
        const client = sides[name];
        const t0 = performance.now();
        for (let i = 0; i < EXECS; i++) await exec(client, 'true');
        execMs[name].push((performance.now() - t0) / EXECS);
        const t1 = performance.now();
        const bytes = await exec(client, `cat ${file}`);
        mbps[name].push(bytes / 1024 / 1024 / ((performance.now() - t1) / 1000));
      }
    }
    gateway.end();
    direct.end();
    // The gateway's own time to decide each exec (token check, classification, policy, recording), as recorded.
    const admin = stack.svc.adminToken;
    const sessions = (await stack.svc.call(admin, 'GET', `/v1/sessions?agent=${AGENT}`)).body.sessions as {
      id: string;
    }[];
    const decideMs: number[] = [];
    for (const sess of sessions) {
      const events = (await stack.svc.call(admin, 'GET', `/v1/sessions/${sess.id}/events?limit=10000`)).body.events as {
        type: string;
        data: { latencyMs?: number };
      }[];
      for (const e of events)
        if (e.type === 'decision' && typeof e.data.latencyMs === 'number') decideMs.push(e.data.latencyMs);
    }
    const d = median(execMs.direct);
    const g = median(execMs.gateway);
    const td = median(mbps.direct);
    const tg = median(mbps.gateway);
    console.log(`exec (${EXECS} sequential, ${ROUNDS} rounds, medians):`);
    console.log(
      `  direct  ${d.toFixed(2)} ms/exec   gateway ${g.toFixed(2)} ms/exec   added ${(g - d).toFixed(2)} ms/exec (goal ≤ 5)`,
    );
    console.log(`  the gateway's decision per exec: median ${median(decideMs).toFixed(2)} ms over ${decideMs.length}`);
    console.log(`cat ${MEGABYTES} MB (masking on):`);
    console.log(
      `  direct  ${td.toFixed(1)} MB/s   gateway ${tg.toFixed(1)} MB/s   ratio ${((tg / td) * 100).toFixed(0)} % (goal ≥ 50 %)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await stack.close();
  }
}

await main();
