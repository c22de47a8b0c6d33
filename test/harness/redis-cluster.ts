/**
 * Starts a private Redis Cluster for one test file: six redis-server processes in cluster mode on free loopback ports
 * (three masters, each with one replica), joined by `redis-cli --cluster create`. Real Redis Cluster, never a mock.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor, waitForPort } from './ports.ts';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  /** The node's own view of its role, read with ROLE. */
  role(): Promise<'master' | 'slave'>;
  /** Stops the process at once (SIGKILL): a master lost without warning. */
  kill(): void;
}

export interface TestRedisCluster {
  /** `host:port` of every node, as `redis.cluster` takes them. */
  nodes: string[];
  members: ClusterNode[];
  /** `redis-cli -p port args…` against one node; stdout, trimmed. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The node serving `key`'s slot as master. */
  masterOf(key: string): Promise<ClusterNode>;
  /**
   * Promotes `master`'s replica with CLUSTER FAILOVER (a coordinated failover: the replica catches up, then takes
   * over) and waits until the cluster reports the new master and state ok.
   */
  failover(master: ClusterNode): Promise<ClusterNode>;
  /** Waits until every node reports cluster_state:ok. */
  healthy(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const cli = async (port: number, ...args: string[]): Promise<string> =>
    (await run('redis-cli', ['-p', String(port), ...args], { timeout: 30_000 })).stdout.trim();
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          '--bind',
          '127.0.0.1',
          '--dir',
          nodeDir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
      ports.push(port);
      await waitForPort(port, 10_000);
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 60_000 },
    );
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const members: ClusterNode[] = ports.map((port, i) => ({
    port,
    role: async () => ((await cli(port, 'ROLE')).split('\n')[0] === 'master' ? 'master' : 'slave'),
    kill: () => {
      children[i]!.kill('SIGKILL');
    },
  }));
  const alive = (): ClusterNode[] => members.filter((_, i) => children[i]!.exitCode === null && !children[i]!.killed);
  const healthy = async (): Promise<void> => {
    await waitFor(
      async () => {
        for (const m of alive()) {
          const info = await cli(m.port, 'CLUSTER', 'INFO').catch(() => '');
          if (!info.includes('cluster_state:ok')) return false;
        }
        return true;
      },
      30_000,
      'cluster_state:ok on every node',
    );
  };
  await healthy();
  // `--cluster create` returns before every node has learned the others' slots; the check above waits for that, and
  // each replica must also have finished its first sync before a failover test can rely on it.
  await waitFor(
    async () => {
      for (const m of members) {
        const info = await cli(m.port, 'INFO', 'replication');
        if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
      }
      return true;
    },
    30_000,
    'every replica in sync',
  );

  /** CLUSTER NODES as one node sees it: id, port, flags, master id, slot ranges. */
  const nodesView = async (): Promise<{ id: string; port: number; master: boolean; of: string; slots: string[] }[]> => {
    const from = alive()[0]!;
    return (await cli(from.port, 'CLUSTER', 'NODES')).split('\n').map((line) => {
      const [id, addr, flags, of, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(addr!.split('@')[0]!.split(':')[1]),
        master: flags!.split(',').includes('master'),
        of: of!,
        slots,
      };
    });
  };
  const member = (port: number): ClusterNode => members.find((m) => m.port === port)!;
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`),
    members,
    cli,
    healthy,
    async masterOf(key) {
      const slot = Number(await cli(alive()[0]!.port, 'CLUSTER', 'KEYSLOT', key));
      const owner = (await nodesView()).find(
        (n) =>
          n.master
          && n.slots.some((r) => {
            const [a, b] = r.split('-').map(Number);
            return slot >= a! && slot <= (b ?? a!);
          }),
      );
      if (!owner) throw new Error(`no master serves the slot of ${key}`);
      return member(owner.port);
    },
    async failover(master) {
      const view = await nodesView();
      const id = view.find((n) => n.port === master.port)!.id;
      const replica = view.find((n) => !n.master && n.of === id);
      if (!replica) throw new Error(`no replica of the master on port ${master.port}`);
      const promoted = member(replica.port);
      await cli(promoted.port, 'CLUSTER', 'FAILOVER');
      await waitFor(async () => (await promoted.role()) === 'master', 30_000, 'the replica to become master');
      await healthy();
      return promoted;
    },
    async close() {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) {
                resolve();
                return;
              }
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
