/**
 * The composition root: builds the core from configuration, starts the gRPC server (health + the adapters' ext_proc
 * services), the admin API and the metrics listener, and shuts them down in order on SIGTERM: stop taking new
 * streams, let those in flight finish, flush the recorder, then close Redis.
 */
import type { Logger } from 'pino';
import { listenerRoutes, type ListenerInfo } from '../admin/listener-routes.ts';
import { startAdminServer } from '../admin/server.ts';
import { approvalRoutes, boundedApprovals, createApprovals, createWebhookNotifier } from '../approvals/index.ts';
import { parseDurationMs, parseDurationSeconds } from '../common/duration.ts';
import type { RedisClient } from '../common/redis-client.ts';
import { AgentTokens } from '../identity/agent-tokens.ts';
import { UpstreamCredentials } from '../identity/upstream-credentials.ts';
import { classifyK8sSample, recordFilterRefusal } from '../kube/index.ts';
import { Principals } from '../identity/principals.ts';
import { Registry } from '../identity/registry.ts';
import { identityRoutes } from '../identity/routes.ts';
import { SigningKeys } from '../identity/signing-keys.ts';
import { PolicySet } from '../policy/policy-set.ts';
import { policyRoutes } from '../policy/routes.ts';
import { PolicyStore } from '../policy/store.ts';
import {
  createRecorder,
  loadAnchorKey,
  recordingRoutes,
  sessionEndClaims,
  startRetention,
  valueDigester,
} from '../recording/index.ts';
import { snapshotRoutes } from '../snapshot/index.ts';
import { Spine } from '../spine/index.ts';
import type { DataPathAdapter } from '../streams/index.ts';
import { ensureAdminToken, seedPolicies, seedTargets } from './bootstrap.ts';
import { RECORDING_TIMING_DEFAULTS, type ServiceConfig } from './config.ts';
import type { ServiceCore } from './core.ts';
import { startGrpcServer } from './grpc-server.ts';
import { adapterServices, startTcpListeners } from './listeners.ts';
import { Cluster } from 'ioredis';
import { migrateKeyLayout } from './key-layout.ts';
import { startLocalRedis } from './local-redis.ts';
import { createRedisClient, type RedisTarget, whenReady } from './redis.ts';
import { createLogger } from './logger.ts';
import {
  createMetrics,
  observeApprovalOutcome,
  registerRecorderGauges,
  registerServiceGauges,
  startMetricsServer,
} from './metrics.ts';
import { listening, waitForRedis } from './startup.ts';
import { TargetCache } from './target-cache.ts';
import type { OtlpDecisionTracer } from '../tracing/index.ts';

/** How long a start waits for a Redis Cluster to be reachable before it fails. */
const CLUSTER_READY_TIMEOUT_MS = 15_000;

export interface Service {
  core: ServiceCore;
  adminUrl: string;
  grpcPort: number;
  metricsUrl: string;
  /** The TCP listeners (the SSH gateway), with their addresses. */
  listeners: ListenerInfo[];
  /** The single server's URL; empty when serving from a Redis Cluster. */
  redisUrl: string;
  /** Where the first admin token was written, when this start created it. */
  adminTokenPath: string | null;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  logger?: Logger;
  /** The protocol adapters to serve, each given the spine (default: none). */
  adapters?: DataPathAdapter[];
  /** Directory that bootstrap patterns are relative to (default: the working directory). */
  baseDir?: string;
}

/** How long start-up waits for Redis to answer before giving up (the process then exits, see startup.ts). */
const REDIS_STARTUP_WAIT_MS = 10_000;

/**
 * Starts everything, or nothing: when a step fails, what the earlier steps started (a local redis-server, Redis
 * connections, listeners, timers) is stopped again in reverse order before the error propagates.
 */
export async function startService(config: ServiceConfig, opts: ServiceOptions = {}): Promise<Service> {
  const undo: (() => unknown)[] = [];
  try {
    return await startEverything(config, opts, undo);
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => {});
    throw err;
  }
}

async function startEverything(config: ServiceConfig, opts: ServiceOptions, undo: (() => unknown)[]): Promise<Service> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const cluster = config.redis.cluster;
  const local = config.redisUrl || cluster ? null : await startLocalRedis(config.dataDir, config.localRedisPort);
  if (local) undo.push(() => local.stop());
  const redisUrl = config.redisUrl ?? local?.url ?? '';
  if (local) logger.info({ redisUrl }, 'REDIS_URL not set: started a local redis-server');
  const target: RedisTarget = cluster ? { kind: 'cluster', nodes: cluster } : { kind: 'server', url: redisUrl };
  const connect = (): RedisClient =>
    createRedisClient(target, { commandTimeoutMs: parseDurationMs(config.redis.commandTimeout) });
  const redis = connect();
  const connections = [redis, connect(), connect(), connect()];
  for (const c of connections)
    c.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis connection error'));
  undo.push(() => {
    for (const c of connections) c.disconnect();
  });
  // A cluster client refuses commands until it knows the slot map (no offline queue): every connection waits for it.
  await Promise.all(connections.map((c) => whenReady(c, CLUSTER_READY_TIMEOUT_MS)));
  await waitForRedis(redis, target, REDIS_STARTUP_WAIT_MS);
  if (!(redis instanceof Cluster)) await migrateKeyLayout(redis, logger);
  const [, policySub, tokenSub, approvalSub] = connections;

  const metrics = createMetrics();
  const registry = new Registry(redis);
  const principals = new Principals(redis, { tokenTtlSeconds: parseDurationSeconds(config.principals.tokenTtl) });
  await principals.migrateLegacyTokens();
  const keys = new SigningKeys(redis);
  await keys.load();
  const tokens = new AgentTokens(
    redis,
    tokenSub,
    keys,
    registry,
    {
      defaultTtlSeconds: parseDurationSeconds(config.tokens.defaultTtl),
      maxTtlSeconds: parseDurationSeconds(config.tokens.maxTtl),
    },
    logger,
  );
  await tokens.start();
  undo.push(() => tokens.stop());
  const store = new PolicyStore(redis);
  const baseDir = opts.baseDir ?? process.cwd();
  await seedPolicies(store, config.bootstrap.policies, baseDir, logger);
  await seedTargets(registry, config.bootstrap.targets, baseDir, logger);
  const adminTokenPath = await ensureAdminToken(principals, config.dataDir, logger);
  const policies = new PolicySet(store, policySub, logger, () => metrics.policyReloadFailures.inc());
  await policies.start();
  undo.push(() => policies.stop());
  const targets = new TargetCache(registry, logger);
  await targets.start();
  undo.push(() => targets.stop());

  const anchorKey = await loadAnchorKey(config.recording.anchorKeyRef ?? null, config.dataDir);
  const recorder = createRecorder({
    redis,
    anchorKey,
    failureMode: (target) => targets.get(target)?.recording ?? 'fail-closed',
    maxBuffered: config.recording.maxBuffered,
    coalesceMs: parseDurationMs(config.recording.batchWindow ?? RECORDING_TIMING_DEFAULTS.batchWindow),
    maxUnacknowledgedMs: parseDurationMs(
      config.recording.maxUnacknowledged ?? RECORDING_TIMING_DEFAULTS.maxUnacknowledged,
    ),
    logger,
  });
  undo.push(() => recorder.close());
  registerRecorderGauges(metrics, () => recorder.stats());
  const retention = startRetention({
    redis,
    maxAgeSeconds: parseDurationSeconds(config.recording.retention),
    intervalSeconds: 3600,
    logger,
  });
  undo.push(() => retention.stop());
  const adminBaseUrl = config.admin.publicUrl ?? `http://${config.admin.host}:${config.admin.port}`;
  const approvals = createApprovals({
    redis,
    subscriber: approvalSub,
    logger,
    audit: (e) => {
      observeApprovalOutcome(metrics, e);
      recorder.record({
        type: e.type,
        sessionId: e.sessionId,
        agent: e.agent,
        target: e.target,
        protocol: e.protocol,
        requestId: e.requestId,
        data: e.data,
      });
    },
    ...(config.approvals.webhooks.length
      ? {
          notifier: createWebhookNotifier({
            urls: config.approvals.webhooks.map((w) => ({ url: w.url, format: w.format ?? 'json' })),
            adminBaseUrl,
            logger,
          }),
        }
      : {}),
  });
  approvals.startExpirySweeper(5000);
  undo.push(() => approvals.close());

  registerServiceGauges(metrics, {
    redisUp: () => redis.status === 'ready',
    recorder: () => recorder.stats(),
    policies: () => policies.current().map((p) => ({ name: p.doc.name, version: p.version, degraded: !!p.degraded })),
    pendingApprovals: () => approvals.pendingCount(),
  });

  // The OpenTelemetry SDK is loaded only when tracing is on: off, it costs neither start-up time nor memory.
  const tracer: OtlpDecisionTracer | undefined = config.tracing.enabled
    ? new (await import('../tracing/index.ts')).OtlpDecisionTracer(config.tracing, logger)
    : undefined;
  if (tracer) undo.push(() => tracer.shutdown());
  const core: ServiceCore = {
    policies,
    targets,
    tokens,
    credentials: new UpstreamCredentials(),
    recorder,
    approvals: boundedApprovals(approvals, parseDurationMs(config.approvals.checkTimeout), logger),
    metrics,
    logger,
    ...(tracer ? { tracer } : {}),
    // Bound values are recorded as HMACs under a key derived from the anchor key: shared by every replica (it has to
    // be already), kept across restarts, and never in Redis beside the digests, unlike the token signing keys
    // (recording/value-digest.ts says why). No anchor key, no start: there is never an unkeyed digest.
    valueDigest: valueDigester(anchorKey),
  };
  const spine = new Spine(core, {
    sessionIdleMs: parseDurationMs(config.recording.sessionIdle ?? RECORDING_TIMING_DEFAULTS.sessionIdle),
    sessionEndClaims: sessionEndClaims(redis),
  });
  spine.sessionEnds.start();
  undo.push(() => spine.sessionEnds.stop());
  const served = adapterServices(opts.adapters ?? [], spine, { logger, metrics });
  const grpcServer = await listening(
    'grpc',
    config.grpc.host,
    config.grpc.port,
    startGrpcServer(config.grpc.host, config.grpc.port, served.grpc),
  );
  undo.push(() => grpcServer.shutdown(0));
  // The SSH gateway is the only TCP listener an adapter opens.
  const tcpListeners = await listening('ssh', config.ssh.host, config.ssh.port, startTcpListeners(served.tcp));
  const listeners: ListenerInfo[] = tcpListeners.map((l, i) => ({
    name: served.tcp[i].name,
    address: l.address,
    details: l.details ?? {},
  }));
  undo.push(async () => {
    for (const l of tcpListeners) await l.close();
  });
  const admin = await listening(
    'admin',
    config.admin.host,
    config.admin.port,
    startAdminServer({
      routes: [
        ...policyRoutes({ store, policies, classifyK8s: classifyK8sSample }),
        ...identityRoutes({ registry, tokens, principals, keys }),
        ...approvalRoutes({ approvals }),
        ...recordingRoutes({ redis, anchorKey }),
        ...snapshotRoutes({ policies, tokens, recordRefusal: (report) => recordFilterRefusal(spine, report) }),
        ...listenerRoutes(listeners),
      ],
      authenticate: (bearer) => principals.authenticate(bearer),
      host: config.admin.host,
      port: config.admin.port,
      logger,
    }),
  );
  undo.push(() => admin.close());
  const metricsServer = await listening(
    'metrics',
    config.metrics.host,
    config.metrics.port,
    startMetricsServer(metrics, config.metrics.host, config.metrics.port),
  );
  logger.info(
    { grpc: `${config.grpc.host}:${grpcServer.port}`, admin: admin.url, metrics: metricsServer.url },
    'portcullis is serving',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('shutting down: draining ext_proc streams');
      await grpcServer.shutdown(config.shutdownGraceMs);
      for (const l of tcpListeners) await l.close();
      await admin.close();
      await metricsServer.close();
      retention.stop();
      // Sessions outlive a process (their tokens stay valid; another replica may serve them): none is ended here.
      spine.sessionEnds.stop();
      await recorder.close();
      await tracer?.shutdown();
      await approvals.close();
      await tokens.stop();
      await policies.stop();
      targets.stop();
      for (const c of connections) c.disconnect();
      await local?.stop();
      logger.info('stopped');
    })();
    return stopping;
  };
  return {
    core,
    adminUrl: admin.url,
    grpcPort: grpcServer.port,
    metricsUrl: metricsServer.url,
    listeners,
    redisUrl,
    adminTokenPath,
    stop,
  };
}
