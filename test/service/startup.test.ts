/**
 * Start-up is all or nothing (`portcullis serve` as a user runs it): a port in use, an unreachable Redis or a bad
 * config exits non-zero with one line naming the value at fault, and leaves nothing running (the redis-server it
 * started for itself included).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startChild } from '../harness/child.ts';
import { freePort, waitFor } from '../harness/ports.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function serve(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | string; output: string }> {
  const ports = { grpc: await freePort(), admin: await freePort(), metrics: await freePort(), ssh: await freePort() };
  const child = startChild(process.execPath, ['--import', 'tsx', 'extproc/cli/run.ts', 'serve', ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORTCULLIS_DATA_DIR: mkdtempSync(join(dir, 'data-')),
      PORTCULLIS_GRPC_PORT: String(ports.grpc),
      PORTCULLIS_ADMIN_PORT: String(ports.admin),
      PORTCULLIS_METRICS_PORT: String(ports.metrics),
      PORTCULLIS_SSH_PORT: String(ports.ssh),
      PORTCULLIS_LOCAL_REDIS_PORT: String(await freePort()),
      ...env,
    },
  });
  // Generous: the bound is start-up's own (Redis is given 10 s); this only keeps a hang from stalling the suite.
  const timer = setTimeout(() => child.child.kill('SIGKILL'), 60_000);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, output: child.output() };
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

test('gRPC port taken: exit 1 naming the address and its setting; the local redis-server it started is stopped', async () => {
  const grpcPort = await freePort();
  const redisPort = await freePort();
  const taken = await occupy(grpcPort);
  try {
    const r = await serve({ PORTCULLIS_GRPC_PORT: String(grpcPort), PORTCULLIS_LOCAL_REDIS_PORT: String(redisPort) });
    assert.equal(r.code, 1, r.output);
    assert.match(
      r.output,
      new RegExp(
        `portcullis serve: cannot listen for the gRPC \\(ext_proc\\) server on 127\\.0\\.0\\.1:${grpcPort} \\(grpc\\.port / PORTCULLIS_GRPC_PORT\\): the address is already in use\\n`,
      ),
    );
    // The redis-server it spawned answered during start-up (the local Redis comes first); it must be gone now.
    await waitFor(async () => !(await accepts(redisPort)), 10_000, `the local redis-server on ${redisPort} to stop`);
  } finally {
    taken.close();
  }
});

test('admin port taken: exit 1 naming the admin API address', async () => {
  const adminPort = await freePort();
  const taken = await occupy(adminPort);
  try {
    const r = await serve({
      PORTCULLIS_ADMIN_PORT: String(adminPort),
      PORTCULLIS_LOCAL_REDIS_PORT: String(await freePort()),
    });
    assert.equal(r.code, 1, r.output);
    assert.match(
      r.output,
      new RegExp(`admin API on 127\\.0\\.0\\.1:${adminPort} \\(admin\\.port / PORTCULLIS_ADMIN_PORT\\)`),
    );
  } finally {
    taken.close();
  }
});

test('SSH gateway port taken: exit 1 naming the address and its setting', async () => {
  const sshPort = await freePort();
  const taken = await occupy(sshPort);
  try {
    const r = await serve({
      PORTCULLIS_SSH_PORT: String(sshPort),
      PORTCULLIS_LOCAL_REDIS_PORT: String(await freePort()),
    });
    assert.equal(r.code, 1, r.output);
    assert.match(
      r.output,
      new RegExp(
        `the SSH gateway on 127\\.0\\.0\\.1:${sshPort} \\(ssh\\.port / PORTCULLIS_SSH_PORT\\): the address is already in use`,
      ),
    );
  } finally {
    taken.close();
  }
});

test('Redis unreachable: exit 1 after the bounded wait, naming the URL with its password hidden', async () => {
  const nothing = await freePort();
  const r = await serve({ REDIS_URL: `redis://:hunter2@127.0.0.1:${nothing}` });
  assert.equal(r.code, 1, r.output);
  assert.match(
    r.output,
    new RegExp(
      `Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${nothing} \\(redisUrl / REDIS_URL\\) did not answer within 10 s: .*ECONNREFUSED`,
    ),
  );
  assert.doesNotMatch(r.output, /hunter2/);
});

test('bad config: exit 1 with one line naming the file and the key', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'tokens:\n  maxTtl: soon\n');
  const r = await serve({}, ['--config', file]);
  assert.equal(r.code, 1, r.output);
  assert.equal(
    r.output,
    `portcullis serve: invalid configuration in ${file}: /tokens/maxTtl must match pattern "^([0-9]+(ms|s|m|h))+$"\n`,
  );
});

test('a missing bootstrap file: exit 1 naming it and its setting', async () => {
  const file = join(dir, 'seed.yaml');
  writeFileSync(file, 'bootstrap:\n  targets: [no-such-targets.yaml]\n');
  const r = await serve({}, ['--config', file]);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /cannot read .*no-such-targets\.yaml \(bootstrap\.targets\): ENOENT/);
});
