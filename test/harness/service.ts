/** Starts the whole service in-process on free ports against a test Redis, as `portcullis serve` would. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Role } from '../../extproc/identity/principal.ts';
import { Principals } from '../../extproc/identity/principals.ts';
import { DEFAULT_CONFIG, loadConfig, type ServiceConfig } from '../../extproc/service/config.ts';
import type { DataPathAdapter } from '../../extproc/streams/index.ts';
import { createRedisClient, type RedisTarget, whenReady } from '../../extproc/service/redis.ts';
import { startService, type Service } from '../../extproc/service/service.ts';
import type { RedisClient } from '../../extproc/common/redis-client.ts';

export interface TestService extends Service {
  adminToken: string;
  /** Everything the service logged, one JSON line per entry (for "no secret in any log" checks). */
  logs: () => string;
  /** Calls the admin API with a bearer token; returns status and parsed body. */
  call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  principal(name: string, roles: Role[], groups?: string[]): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

export async function startTestService(opts: {
  /** A single Redis server's URL, or the nodes of a Redis Cluster (`redis.cluster`). */
  redisUrl?: string;
  redisCluster?: string[];
  config?: Partial<ServiceConfig>;
  adapters?: DataPathAdapter[];
  env?: NodeJS.ProcessEnv;
}): Promise<TestService> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-svc-'));
  const config = loadConfig({
    env: opts.env ?? {},
    overrides: {
      redisUrl: opts.redisUrl ?? null,
      dataDir,
      grpc: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0, publicUrl: null },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'debug' },
      shutdownGraceMs: 3000,
      ...opts.config,
      // Likewise wider Redis bounds than the defaults (a command's, an approval check's), unless the test is about them.
      redis: { commandTimeout: '30s', ...opts.config?.redis, cluster: opts.redisCluster ?? null },
      approvals: { ...DEFAULT_CONFIG.approvals, checkTimeout: '10s', ...opts.config?.approvals },
      // A loaded test machine (suites run two at a time, beside others) can stall Redis's appendfsync for seconds, and
      // fail-closed targets would refuse for it (recording.maxUnacknowledged, 2 s by default): tests that are not about
      // that bound get a wide one; those that are set it themselves.
      recording: { ...DEFAULT_CONFIG.recording, maxUnacknowledged: '30s', ...opts.config?.recording },
    },
  });
  const lines: string[] = [];
  const logger: Logger = pino(
    {
      level: 'debug',
      redact: { paths: ['authorization', '*.authorization', 'token', '*.token'], censor: '[redacted]' },
    },
    {
      write: (s: string) => {
        lines.push(s);
      },
    },
  );
  const service = await startService(config, { logger, ...(opts.adapters ? { adapters: opts.adapters } : {}) });
  // The first instance on a Redis writes the bootstrap admin token; later instances on the same Redis get their own.
  const adminToken = service.adminTokenPath
    ? readFileSync(service.adminTokenPath, 'utf8').trim()
    : await withRedis(
        opts.redisCluster ? { kind: 'cluster', nodes: opts.redisCluster } : { kind: 'server', url: service.redisUrl },
        async (r) => (await new Principals(r).create({ name: 'test-admin', roles: ['admin'] })).token,
      );
  const call: TestService['call'] = async (token, method, path, body) => {
    const res = await fetch(service.adminUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* streamed or text bodies stay text */
    }
    return { status: res.status, body: parsed };
  };
  return {
    ...service,
    adminToken,
    logs: () => lines.join(''),
    call,
    async principal(name, roles, groups = []) {
      const r = await call(adminToken, 'POST', '/v1/principals', { name, roles, groups });
      if (r.status !== 201) throw new Error(`principal create failed: ${JSON.stringify(r.body)}`);
      return { id: r.body.id, token: r.body.token };
    },
    async close() {
      await service.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function withRedis<T>(target: RedisTarget, use: (r: RedisClient) => Promise<T>): Promise<T> {
  const r = createRedisClient(target, { commandTimeoutMs: 10_000 });
  await whenReady(r, 15_000);
  try {
    return await use(r);
  } finally {
    r.disconnect();
  }
}
