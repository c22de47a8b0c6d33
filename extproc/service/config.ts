/**
 * Service configuration: embedded defaults, then a YAML/JSON file (`--config FILE` or PORTCULLIS_CONFIG), then
 * environment variables. Validated once at start; a bad value stops the process with a message naming it.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { parseDurationMs, parseDurationSeconds } from '../common/duration.ts';
import type { TracingConfig } from '../tracing/index.ts';

export interface ServiceConfig {
  /** Unset (and no `redis.cluster`): a local redis-server is started on loopback (quickstart). */
  redisUrl: string | null;
  /**
   * `cluster`: the `host:port` of some nodes of a Redis Cluster (the others are discovered from them); set instead of
   * `redisUrl`. `commandTimeout`: a command Redis has not answered within this long fails, so a hung Redis is
   * refused within a bound (approvals, token and admin reads answer 503) instead of holding requests.
   */
  redis: { cluster: string[] | null; commandTimeout: string };
  localRedisPort: number;
  dataDir: string;
  grpc: { host: string; port: number };
  admin: { host: string; port: number; publicUrl: string | null };
  metrics: { host: string; port: number };
  /**
   * The SSH gateway's listener; `hostKeyPath` null: `<dataDir>/ssh/host_ed25519_key` (generated on first start).
   * `maxHold`: the longest an exec waits for a quick approval (a rule's `hold` is capped by it).
   */
  ssh: { host: string; port: number; hostKeyPath: string | null; maxHold?: string };
  log: { level: string };
  tokens: { defaultTtl: string; maxTtl: string };
  /** `tokenTtl`: lifetime of a human principal's admin API token, the bootstrap admin's included. */
  principals: { tokenTtl: string };
  /** Seeded into an empty store at start (the quickstart's example policies and targets). */
  bootstrap: { policies: string[]; targets: string[] };
  /**
   * `batchWindow`: how long recorded events wait for more before one write to Redis (one script call per window
   * instead of one per few requests; events stay in memory, where a crash of this process loses them, that much
   * longer). 50 ms: at 2,500 statements a second it cost the processor and Redis together 23 µs a statement less than
   * 10 ms did, and longer windows saved nothing more (docs/recording.md). `maxUnacknowledged`: fail-closed targets
   * refuse new actions once a recorded event has waited this long for Redis to acknowledge it (a hung store).
   * `sessionIdle`: a session with no activity for this long is ended (`session.end {reason: 'idle'}`).
   * `anchorKeyRef`: the key of each session's tail anchor (`env:NAME` or `file:/path`); every replica must share it.
   * Unset: a random key kept in the data directory (one replica only).
   */
  recording: {
    maxBuffered: number;
    retention: string;
    batchWindow?: string;
    maxUnacknowledged?: string;
    sessionIdle?: string;
    anchorKeyRef?: string | null;
  };
  /**
   * `checkTimeout`: how long the data path waits for Redis to answer an approval check before refusing the action
   * (503 in Kubernetes). Keep it below Envoy's ext_proc `message_timeout` (500 ms in envoy/portcullis.yaml), or Envoy
   * answers 504 first.
   */
  approvals: { webhooks: { url: string; format: 'json' | 'slack' }[]; checkTimeout: string };
  /** Key for the masking `hash` strategy (a vault reference); unset: a random key per data directory. */
  maskingHashKeyRef: string | null;
  /**
   * OpenTelemetry traces, a span per decision exported over OTLP/HTTP (docs/operations.md). Environment:
   * PORTCULLIS_TRACING_ENABLED, OTEL_SDK_DISABLED, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT
   * plus `/v1/traces`), OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER_ARG.
   */
  tracing: TracingConfig;
  shutdownGraceMs: number;
}

/** The recording's optional timings: the defaults, and what the service takes when a config leaves one out. */
export const RECORDING_TIMING_DEFAULTS = { batchWindow: '50ms', maxUnacknowledged: '2s', sessionIdle: '15m' } as const;

export const DEFAULT_CONFIG: ServiceConfig = {
  redisUrl: null,
  redis: { cluster: null, commandTimeout: '2s' },
  localRedisPort: 6390,
  dataDir: '.portcullis',
  grpc: { host: '127.0.0.1', port: 50051 },
  admin: { host: '127.0.0.1', port: 8081, publicUrl: null },
  metrics: { host: '127.0.0.1', port: 9464 },
  ssh: { host: '127.0.0.1', port: 2022, hostKeyPath: null, maxHold: '2m' },
  log: { level: 'info' },
  tokens: { defaultTtl: '15m', maxTtl: '1h' },
  principals: { tokenTtl: '720h' },
  bootstrap: { policies: ['examples/policies/*.yaml'], targets: ['examples/targets.yaml'] },
  recording: {
    maxBuffered: 100_000,
    retention: '720h',
    ...RECORDING_TIMING_DEFAULTS,
  },
  approvals: { webhooks: [], checkTimeout: '300ms' },
  maskingHashKeyRef: null,
  tracing: { enabled: false, endpoint: 'http://localhost:4318/v1/traces', serviceName: 'portcullis', sampleRatio: 1 },
  shutdownGraceMs: 10_000,
};

const port = { type: 'integer', minimum: 0, maximum: 65535 };
const listener = { type: 'object', additionalProperties: false, properties: { host: { type: 'string' }, port } };
const duration = { type: 'string', pattern: '^([0-9]+(ms|s|m|h))+$' };
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    redisUrl: { type: ['string', 'null'], pattern: '^rediss?://' },
    redis: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cluster: {
          type: ['array', 'null'],
          minItems: 1,
          items: { type: 'string', pattern: '^[^:/@\\s]+:[0-9]{1,5}$' },
        },
        commandTimeout: duration,
      },
    },
    localRedisPort: port,
    dataDir: { type: 'string', minLength: 1 },
    grpc: listener,
    admin: {
      type: 'object',
      additionalProperties: false,
      properties: { host: { type: 'string' }, port, publicUrl: { type: ['string', 'null'] } },
    },
    metrics: listener,
    ssh: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string' },
        port,
        hostKeyPath: { type: ['string', 'null'], minLength: 1 },
        maxHold: duration,
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } },
    },
    tokens: { type: 'object', additionalProperties: false, properties: { defaultTtl: duration, maxTtl: duration } },
    principals: { type: 'object', additionalProperties: false, properties: { tokenTtl: duration } },
    bootstrap: {
      type: 'object',
      additionalProperties: false,
      properties: {
        policies: { type: 'array', items: { type: 'string' } },
        targets: { type: 'array', items: { type: 'string' } },
      },
    },
    recording: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxBuffered: { type: 'integer', minimum: 100 },
        retention: duration,
        batchWindow: duration,
        maxUnacknowledged: duration,
        sessionIdle: duration,
        anchorKeyRef: { type: ['string', 'null'], pattern: '^(file:/.+|env:[A-Za-z_][A-Za-z0-9_]*)$' },
      },
    },
    approvals: {
      type: 'object',
      additionalProperties: false,
      properties: {
        checkTimeout: duration,
        webhooks: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['url'],
            properties: { url: { type: 'string', pattern: '^https?://' }, format: { enum: ['json', 'slack'] } },
          },
        },
      },
    },
    maskingHashKeyRef: { type: ['string', 'null'], pattern: '^(file:/.+|env:[A-Za-z_][A-Za-z0-9_]*)$' },
    tracing: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        endpoint: { type: 'string', pattern: '^https?://[^\\s]+$' },
        serviceName: { type: 'string', minLength: 1 },
        sampleRatio: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
    shutdownGraceMs: { type: 'integer', minimum: 0 },
  },
} as const;

export class ConfigError extends Error {}

const validate = new Ajv2020({ allErrors: true, strict: false }).compile(CONFIG_SCHEMA);

function merge<T>(base: T, over: unknown): T {
  if (
    over === null
    || typeof over !== 'object'
    || Array.isArray(over)
    || base === null
    || typeof base !== 'object'
    || Array.isArray(base)
  )
    return over as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k], v) : v;
  return out as T;
}

function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const o: Record<string, Record<string, unknown> | unknown> = {};
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d+$/.test(v)) throw new ConfigError(`${name} must be a port number, got "${v}"`);
    return Number(v);
  };
  if (env.REDIS_URL) o.redisUrl = env.REDIS_URL;
  if (env.REDIS_CLUSTER) o.redis = { cluster: env.REDIS_CLUSTER.split(',').map((n) => n.trim()) };
  if (env.PORTCULLIS_DATA_DIR) o.dataDir = env.PORTCULLIS_DATA_DIR;
  if (env.PORTCULLIS_LOG_LEVEL) o.log = { level: env.PORTCULLIS_LOG_LEVEL };
  const ports: [string, string][] = [
    ['PORTCULLIS_GRPC_PORT', 'grpc'],
    ['PORTCULLIS_ADMIN_PORT', 'admin'],
    ['PORTCULLIS_METRICS_PORT', 'metrics'],
    ['PORTCULLIS_SSH_PORT', 'ssh'],
  ];
  const host = env.PORTCULLIS_LISTEN_HOST;
  for (const [name, key] of ports) {
    const p = int(name);
    if (p !== undefined || host) o[key] = { ...(p !== undefined ? { port: p } : {}), ...(host ? { host } : {}) };
  }
  const lr = int('PORTCULLIS_LOCAL_REDIS_PORT');
  if (lr !== undefined) o.localRedisPort = lr;
  const tracing = tracingOverrides(env);
  if (Object.keys(tracing).length) o.tracing = tracing;
  return o;
}

/** The tracing switch, and the OpenTelemetry SDK's standard variables for what they name. */
function tracingOverrides(env: NodeJS.ProcessEnv): Partial<TracingConfig> {
  const t: Partial<TracingConfig> = {};
  const flag = (name: string): boolean | undefined => {
    const v = env[name]?.trim().toLowerCase();
    if (v === undefined || v === '') return undefined;
    if (v !== 'true' && v !== 'false') throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
    return v === 'true';
  };
  const enabled = flag('PORTCULLIS_TRACING_ENABLED');
  if (enabled !== undefined) t.enabled = enabled;
  if (flag('OTEL_SDK_DISABLED')) t.enabled = false;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) t.endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  else if (base) t.endpoint = `${base.replace(/\/+$/, '')}/v1/traces`;
  if (env.OTEL_SERVICE_NAME) t.serviceName = env.OTEL_SERVICE_NAME;
  const ratio = env.OTEL_TRACES_SAMPLER_ARG;
  if (ratio) {
    if (!/^(0|1|0?\.[0-9]+|1\.0*)$/.test(ratio.trim()))
      throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got "${ratio}"`);
    t.sampleRatio = Number(ratio);
  }
  return t;
}

export function loadConfig(opts: {
  file?: string;
  env: NodeJS.ProcessEnv;
  overrides?: Partial<ServiceConfig>;
}): ServiceConfig {
  let fromFile: unknown = {};
  const file = opts.file ?? opts.env.PORTCULLIS_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      fromFile = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const config = merge(merge(merge(DEFAULT_CONFIG, fromFile), envOverrides(opts.env)), opts.overrides ?? {});
  if (!validate(config)) {
    const problems = (validate.errors ?? []).map(
      (e) =>
        `${e.instancePath || 'config'} ${e.message}${e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : ''}`,
    );
    throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}: ${problems.join('; ')}`);
  }
  if (config.redisUrl && config.redis.cluster)
    throw new ConfigError('set either redisUrl (REDIS_URL) or redis.cluster (REDIS_CLUSTER), not both');
  if (parseDurationMs(config.approvals.checkTimeout) < 50)
    throw new ConfigError('approvals.checkTimeout must be at least 50ms');
  if (parseDurationMs(config.redis.commandTimeout) < 100)
    throw new ConfigError('redis.commandTimeout must be at least 100ms');
  for (const d of [config.tokens.defaultTtl, config.tokens.maxTtl, config.principals.tokenTtl]) parseDurationSeconds(d);
  if (parseDurationSeconds(config.principals.tokenTtl) < 60)
    throw new ConfigError('principals.tokenTtl must be at least 1m');
  // Shorter bounds would refuse fail-closed targets on every batch write, or end sessions between two requests.
  if (parseDurationMs(config.recording.maxUnacknowledged ?? '2s') < 100)
    throw new ConfigError('recording.maxUnacknowledged must be at least 100ms');
  if (parseDurationMs(config.recording.sessionIdle ?? '15m') < 1000)
    throw new ConfigError('recording.sessionIdle must be at least 1s');
  if (parseDurationSeconds(config.tokens.defaultTtl) > parseDurationSeconds(config.tokens.maxTtl)) {
    throw new ConfigError('tokens.defaultTtl must not exceed tokens.maxTtl');
  }
  return config;
}
