import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../extproc/service/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test('embedded defaults apply when nothing is configured', () => {
  assert.deepEqual(loadConfig({ env: {} }), DEFAULT_CONFIG);
});

test('a file overrides defaults and environment variables override the file', () => {
  const f = file('ok.yaml', 'grpc: { port: 6000 }\nlog: { level: debug }\ntokens: { defaultTtl: 5m, maxTtl: 30m }\n');
  const c = loadConfig({
    file: f,
    env: { PORTCULLIS_GRPC_PORT: '7000', REDIS_URL: 'redis://10.0.0.1:6379', PORTCULLIS_LISTEN_HOST: '0.0.0.0' },
  });
  assert.equal(c.grpc.port, 7000);
  assert.equal(c.grpc.host, '0.0.0.0');
  assert.equal(c.admin.host, '0.0.0.0');
  assert.equal(c.admin.port, DEFAULT_CONFIG.admin.port);
  assert.equal(c.log.level, 'debug');
  assert.equal(c.redisUrl, 'redis://10.0.0.1:6379');
  assert.equal(c.tokens.maxTtl, '30m');
});

test('bad values stop the start with a message that names them', () => {
  const cases: [() => unknown, RegExp][] = [
    [
      () => loadConfig({ file: file('unknown.yaml', 'grcp: { port: 1 }\n'), env: {} }),
      /must NOT have additional properties "grcp"/,
    ],
    [
      () => loadConfig({ file: file('port.yaml', 'admin: { port: 70000 }\n'), env: {} }),
      /\/admin\/port must be <= 65535/,
    ],
    [
      () => loadConfig({ file: file('ttl.yaml', 'tokens: { defaultTtl: 2h, maxTtl: 1h }\n'), env: {} }),
      /defaultTtl must not exceed tokens.maxTtl/,
    ],
    [
      () => loadConfig({ file: file('dur.yaml', 'tokens: { defaultTtl: soon }\n'), env: {} }),
      /\/tokens\/defaultTtl must match pattern/,
    ],
    [
      () => loadConfig({ file: file('unacked.yaml', 'recording: { maxUnacknowledged: 10ms }\n'), env: {} }),
      /recording.maxUnacknowledged must be at least 100ms/,
    ],
    [
      () => loadConfig({ file: file('idle.yaml', 'recording: { sessionIdle: 0s }\n'), env: {} }),
      /recording.sessionIdle must be at least 1s/,
    ],
    [() => loadConfig({ file: file('yaml.yaml', 'grpc: [\n'), env: {} }), /is not valid YAML/],
    [() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }), /cannot read config file .*missing.yaml: ENOENT/],
    [
      () => loadConfig({ env: { PORTCULLIS_ADMIN_PORT: 'eighty' } }),
      /PORTCULLIS_ADMIN_PORT must be a port number, got "eighty"/,
    ],
    [() => loadConfig({ env: { REDIS_URL: 'localhost:6379' } }), /\/redisUrl must match pattern/],
    [
      () => loadConfig({ env: { REDIS_URL: 'redis://10.0.0.1:6379', REDIS_CLUSTER: '10.0.0.2:7000' } }),
      /either redisUrl \(REDIS_URL\) or redis.cluster \(REDIS_CLUSTER\), not both/,
    ],
    [() => loadConfig({ env: { REDIS_CLUSTER: 'redis://10.0.0.2:7000' } }), /\/redis\/cluster\/0 must match pattern/],
    [
      () => loadConfig({ file: file('timeout.yaml', 'redis: { commandTimeout: 10ms }\n'), env: {} }),
      /redis.commandTimeout must be at least 100ms/,
    ],
  ];
  for (const [run, message] of cases)
    assert.throws(run, (err: unknown) => err instanceof ConfigError && message.test(err.message));
});

test('a Redis Cluster is named by some of its nodes, in the file or REDIS_CLUSTER', () => {
  const fromEnv = loadConfig({ env: { REDIS_CLUSTER: '10.0.0.2:7000, 10.0.0.3:7000' } });
  assert.deepEqual(fromEnv.redis, { cluster: ['10.0.0.2:7000', '10.0.0.3:7000'], commandTimeout: '2s' });
  assert.equal(fromEnv.redisUrl, null);
  const fromFile = loadConfig({
    file: file('cluster.yaml', 'redis:\n  cluster: [redis-0.redis:6379]\n  commandTimeout: 500ms\n'),
    env: {},
  });
  assert.deepEqual(fromFile.redis, { cluster: ['redis-0.redis:6379'], commandTimeout: '500ms' });
});
