/**
 * Issue 11: `portcullis demo` as a user runs it — a child process on free ports; wait for its ready line; paste the
 * three kubectl commands it prints and the approval; then SIGTERM, and it stops everything and exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, waitFor } from '../harness/ports.ts';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('portcullis demo: the three commands do what they promise, the approval flow works, SIGTERM exits cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-demo-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const redisPort = await freePort();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    PORTCULLIS_GRPC_PORT: '0',
    PORTCULLIS_ADMIN_PORT: '0',
    PORTCULLIS_METRICS_PORT: '0',
    PORTCULLIS_LOCAL_REDIS_PORT: String(redisPort),
  };
  const demoDir = join(dir, 'demo');
  const demo = spawn(process.execPath, [BIN, 'demo', '--dir', demoDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  demo.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  demo.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL');
  });
  await waitFor(() => out.includes('portcullis demo: ready') || demo.exitCode !== null, 60_000, 'the demo to be ready');
  assert.match(out, /portcullis demo: ready/, `stdout:\n${out}\nstderr:\n${err}`);
  assert.match(out, /plays Envoy's part here, for trying and testing only/);

  // The commands exactly as printed.
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
  assert.equal(kubeconfig, join(demoDir, 'kubeconfig'));
  const commands = [...out.matchAll(/^ {2}(kubectl [^#\n]+?)\s+#/gm)].map((m) => m[1].split(' ').slice(1));
  assert.equal(commands.length, 3, out);
  const kubectl = (args: string[]) =>
    run('kubectl', args, { ...env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'kcache') });

  const del = await kubectl(commands[0]);
  assert.notEqual(del.code, 0);
  assert.match(del.stderr, /Error from server \(Forbidden\): Deleting namespaces is not allowed for agents\./);

  const secret = await kubectl(commands[1]);
  assert.equal(secret.code, 0, secret.stderr);
  const data = /^data:\n((?: {2}\S.*\n)+)/m.exec(secret.stdout)?.[1] ?? '';
  const values = [...data.matchAll(/: (\S+)$/gm)].map((m) => Buffer.from(m[1], 'base64').toString());
  assert.ok(values.length >= 3, secret.stdout);
  for (const v of values) assert.match(v, /REDACTED/);

  const scale = await kubectl(commands[2]);
  assert.notEqual(scale.code, 0);
  const id = /request (apr_\S+) is waiting for approver group "sre"/.exec(scale.stderr)?.[1];
  assert.ok(id, scale.stderr);

  // The approval, as printed: PORTCULLIS_ADMIN_URL=… PORTCULLIS_TOKEN=$(cat …/approver.token) npx portcullis approvals approve <id>
  const approveLine =
    /^ {2}PORTCULLIS_ADMIN_URL=(\S+) PORTCULLIS_TOKEN=\$\(cat (\S+)\) npx portcullis approvals approve <apr_id>$/m.exec(
      out,
    );
  assert.ok(approveLine, out);
  const approve = await run(process.execPath, [BIN, 'approvals', 'approve', id], {
    ...env,
    PORTCULLIS_ADMIN_URL: approveLine[1],
    PORTCULLIS_TOKEN: readFileSync(approveLine[2], 'utf8').trim(),
  });
  assert.equal(approve.code, 0, approve.stderr);
  assert.match(approve.stdout, /approved/);
  const again = await kubectl(commands[2]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /deployment.apps\/web scaled/);

  demo.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  assert.match(err, /portcullis demo: stopped/);
  // Its Redis went with it.
  const redisClosed = await new Promise<boolean>((resolve) => {
    const s = connect(redisPort, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  assert.ok(redisClosed, 'the demo stopped the redis-server it started');
  const refused = await kubectl(['get', 'pods', '-n', 'dev', '--request-timeout=3s']);
  assert.notEqual(refused.code, 0, 'the Envoy stand-in is gone');
});
