/**
 * For the quickstart only: when no REDIS_URL is configured, the service starts its own redis-server on loopback with
 * append-only persistence in the data directory, and stops it on shutdown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';

export class MissingRedisError extends Error {}

export async function startLocalRedis(dataDir: string, port: number): Promise<{ url: string; stop(): Promise<void> }> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new MissingRedisError(
      'redis-server is not installed and REDIS_URL is not set. Install it (Debian/Ubuntu: apt-get install -y redis-server) or point REDIS_URL at a Redis server.',
    );
  }
  const dir = resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(
        `redis-server exited with code ${child.exitCode} (is port ${port} in use? set REDIS_URL or PORTCULLIS_LOCAL_REDIS_PORT)`,
      );
    const up = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill();
      throw new Error('redis-server did not start within 10 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) {
          r();
          return;
        }
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}
