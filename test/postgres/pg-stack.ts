/**
 * The whole PostgreSQL path for one test file: real Redis, a real PostgreSQL (test/harness/postgres.ts), the service
 * with the PostgreSQL adapter, target `pg-app` (database `app`, logged in as `app_owner` with the password from a
 * vault file), one agent with a token, and the network Envoy stand-in (settings from envoy/portcullis.yaml's
 * `postgres` listener) in front of the database. Clients connect to the stand-in's port as the agent, with the token
 * as password.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresAdapter, type PostgresAdapterOptions } from '../../extproc/postgres/index.ts';
import { startNetworkStandIn, type NetworkEnvoyStandIn } from '../envoy/network-stand-in.ts';
import type { NetworkSettingsOverrides } from '../envoy/network-stand-in-config.ts';
import { PG_APP_OWNER, startPostgres, type TestPostgres } from '../harness/postgres.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';
import type { ServiceConfig } from '../../extproc/service/config.ts';

export const PG_TARGET = 'pg-app';

export interface PgStack {
  redis: TestRedis;
  db: TestPostgres;
  svc: TestService;
  envoy: NetworkEnvoyStandIn;
  agent: string;
  agentToken: string;
  sessionId: string;
  /** Issues another token for the agent (ttl e.g. '30m'). */
  issueToken(ttl?: string): Promise<{ token: string; jti: string; sessionId: string; expiresAt: string }>;
  /** A pg client to the stand-in as the agent (not yet connected). */
  client(opts?: Partial<pg.ClientConfig>): pg.Client;
  /** Runs psql against the stand-in; resolves with its exit code and output. */
  psql(
    args: string[],
    opts?: { password?: string; input?: string },
  ): Promise<{ code: number; out: string; err: string }>;
  close(): Promise<void>;
}

export interface PgStackOptions {
  policies: string[];
  agent?: string;
  /** The role the gateway logs in as (default app_owner, SCRAM); the harness has md5 and cleartext roles too. */
  role?: { user: string; password: string };
  envoy?: NetworkSettingsOverrides;
  /** Short-lived upstream roles: `role` is then the admin role that creates the agents' roles in `group`. */
  roles?: { group: string };
  adapter?: PostgresAdapterOptions;
  /** Service settings besides the bootstrap policies (e.g. `recording.anchorKeyRef`). */
  config?: Partial<ServiceConfig>;
}

/** The service side of the stack (the service, its target, agent and first token), given Redis and the database. */
export interface PgService {
  svc: TestService;
  agent: string;
  agentToken: string;
  sessionId: string;
  issueToken: PgStack['issueToken'];
  close(): Promise<void>;
}

/**
 * The service with the PostgreSQL adapter, target `pg-app` (database `app` on 127.0.0.1:`dbPort`, logged in as
 * `role` with the password from a vault file), one agent and its first token. Used by startPgStack and, in a process
 * of its own, by the PostgreSQL benchmark (bench/processors-child.ts).
 */
export async function startPgService(
  redisUrl: string,
  dbPort: number,
  opts: Omit<PgStackOptions, 'envoy'> & { logLevel?: string },
): Promise<PgService> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pgstack-'));
  const role = opts.role ?? PG_APP_OWNER;
  writeFileSync(join(dir, 'pg-password'), role.password);
  const svc = await startTestService({
    redisUrl,
    adapters: [postgresAdapter(opts.adapter)],
    config: {
      ...opts.config,
      bootstrap: { policies: opts.policies, targets: [] },
      ...(opts.logLevel ? { log: { level: opts.logLevel } } : {}),
    },
  });
  const admin = svc.adminToken;
  const put = await svc.call(admin, 'POST', '/v1/targets', {
    name: PG_TARGET,
    kind: 'postgres',
    address: `127.0.0.1:${dbPort}/app`,
    recording: 'fail-closed',
    credential: {
      kind: 'password',
      user: role.user,
      passwordRef: `file:${join(dir, 'pg-password')}`,
      ...(opts.roles ? { roles: opts.roles } : {}),
    },
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const agent = opts.agent ?? 'planner-1';
  assert.equal((await svc.call(admin, 'POST', '/v1/agents', { id: agent, groups: ['agents'] })).status, 201);
  await svc.core.targets.refresh();
  const issueToken: PgStack['issueToken'] = async (ttl = '30m') => {
    const issued = await svc.call(admin, 'POST', '/v1/tokens', { agent, targets: [PG_TARGET], ttl });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    return {
      token: issued.body.token,
      jti: issued.body.jti ?? issued.body.record?.jti,
      sessionId: issued.body.sessionId,
      expiresAt: issued.body.expiresAt,
    };
  };
  const first = await issueToken();
  return {
    svc,
    agent,
    agentToken: first.token,
    sessionId: first.sessionId,
    issueToken,
    async close() {
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startPgStack(opts: PgStackOptions): Promise<PgStack> {
  const redis = await startRedis();
  const db = await startPostgres();
  const service = await startPgService(redis.url, db.port, opts);
  const { svc, agent, issueToken } = service;
  const first = { token: service.agentToken, sessionId: service.sessionId };
  const envoy = await startNetworkStandIn({
    processorAddress: `127.0.0.1:${svc.grpcPort}`,
    upstream: { host: '127.0.0.1', port: db.port },
    ...(opts.envoy ? { overrides: opts.envoy } : {}),
  });
  return {
    redis,
    db,
    svc,
    envoy,
    agent,
    agentToken: first.token,
    sessionId: first.sessionId,
    issueToken,
    client: (c = {}) =>
      new pg.Client({
        host: '127.0.0.1',
        port: envoy.port,
        user: agent,
        database: PG_TARGET,
        password: first.token,
        ...c,
      }),
    psql: (args, o = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(
          'psql',
          ['-X', '-h', '127.0.0.1', '-p', String(envoy.port), '-U', agent, '-d', PG_TARGET, ...args],
          {
            env: {
              ...process.env,
              PGPASSWORD: o.password ?? first.token,
              PGSSLMODE: 'prefer',
              PGCONNECT_TIMEOUT: '20',
            },
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
        child.stdin.end(o.input ?? '');
      }),
    async close() {
      await envoy.close();
      await service.close();
      await db.close();
      await redis.close();
    },
  };
}
