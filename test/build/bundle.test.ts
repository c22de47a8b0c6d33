/**
 * The production build (scripts/build.mjs): the bundle runs from a copy of the package installed with
 * `npm ci --omit=dev` (no tsx, no esbuild), from another working directory, and serves: grpc.health.v1 answers
 * SERVING, the admin API answers with the token the first start wrote, the masking core and the Envoy protos load.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { newHealthClient } from '../../extproc/envoy-api/index.ts';
import { startChild } from '../harness/child.ts';
import { freePort } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
let redis: TestRedis;
let pkg: string;
let elsewhere: string;

before(async () => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  pkg = mkdtempSync(join(tmpdir(), 'portcullis-pkg-'));
  for (const f of ['package.json', 'package-lock.json', 'bin', 'dist'])
    cpSync(join(ROOT, f), join(pkg, f), { recursive: true });
  // The packages come from npm's cache (filled by the `npm ci` that set this checkout up); the registry only for misses.
  execFileSync('npm', ['ci', '--omit=dev', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: pkg,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  elsewhere = mkdtempSync(join(tmpdir(), 'portcullis-cwd-'));
  redis = await startRedis();
});
after(async () => {
  await redis.close();
  rmSync(pkg, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

test('the production install has no TypeScript compiler or bundler in it', () => {
  assert.ok(existsSync(join(pkg, 'node_modules', '@grpc', 'grpc-js')));
  for (const dev of ['tsx', 'esbuild', 'typescript', 'assemblyscript'])
    assert.ok(!existsSync(join(pkg, 'node_modules', dev)), dev);
});

test('the bundle prints its version and runs an offline command from any directory', () => {
  const version = execFileSync(process.execPath, [join(pkg, 'bin', 'portcullis.js'), '--version'], {
    cwd: elsewhere,
    encoding: 'utf8',
  });
  assert.equal(version.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  const masked = execFileSync(
    process.execPath,
    [join(pkg, 'bin', 'portcullis.js'), 'mask', '--entities', 'EMAIL_ADDRESS'],
    {
      cwd: elsewhere,
      input: 'mail ada@example.com now\n',
      encoding: 'utf8',
    },
  );
  assert.equal(masked, 'mail [REDACTED:EMAIL_ADDRESS] now\n');
});

test('the bundle serves: gRPC health SERVING, the admin API answers, SIGTERM stops it with exit 0', async () => {
  const [grpcPort, adminPort, metricsPort, sshPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dataDir = join(elsewhere, 'data');
  // Production style: a config file, no example policies or targets seeded.
  const config = join(elsewhere, 'portcullis.yaml');
  writeFileSync(config, 'bootstrap:\n  policies: []\n  targets: []\n');
  const serve = startChild(process.execPath, [join(pkg, 'bin', 'portcullis.js'), 'serve', '--config', config], {
    cwd: elsewhere,
    env: {
      PATH: process.env.PATH,
      REDIS_URL: redis.url,
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_GRPC_PORT: String(grpcPort),
      PORTCULLIS_ADMIN_PORT: String(adminPort),
      PORTCULLIS_METRICS_PORT: String(metricsPort),
      PORTCULLIS_SSH_PORT: String(sshPort),
    },
  });
  try {
    await serve.waitForOutput(/gRPC on :\d+/);
    const health = newHealthClient(`127.0.0.1:${grpcPort}`);
    const status = await new Promise<string | undefined>((resolve, reject) => {
      health.Check({ service: '' }, (err, res) => (err ? reject(err) : resolve(res?.status)));
    });
    health.close();
    assert.equal(status, 'SERVING');
    // The image's HEALTHCHECK: the bundle's own health command.
    const probe = execFileSync(
      process.execPath,
      [join(pkg, 'bin', 'portcullis.js'), 'health', '--address', `127.0.0.1:${grpcPort}`],
      {
        cwd: elsewhere,
        encoding: 'utf8',
      },
    );
    assert.equal(probe, `127.0.0.1:${grpcPort}: SERVING\n`);
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${adminPort}/v1/policies`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(Array.isArray(await res.json()));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /portcullis_decisions_total/);
  } finally {
    serve.child.kill('SIGTERM');
  }
  assert.equal(await serve.exited, 0, serve.output());
});
