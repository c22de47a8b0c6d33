/**
 * The CLI's habits (issue 20): --help at every level on stdout with exit 0, --version, misspelt flags and commands
 * named with a suggestion, -o on lists, completion, and each listed defect fixed; `token issue --kubeconfig` and the
 * exec credential plugin, driven by a real kubectl.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from '../../extproc/cli/main.ts';
import { makeThrowawayCert } from '../envoy/tls-cert.ts';
import { freePort } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
let redis: TestRedis;
let svc: TestService;
let env: NodeJS.ProcessEnv;

before(async () => {
  redis = await startRedis();
  svc = await startTestService({ redisUrl: redis.url });
  env = { PORTCULLIS_ADMIN_URL: svc.adminUrl, PORTCULLIS_TOKEN: svc.adminToken };
});
after(async () => {
  await svc.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(
  argv: string[],
  e: NodeJS.ProcessEnv = env,
  cwd?: string,
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const stdin = new PassThrough();
  stdin.end();
  const before = process.cwd();
  if (cwd) process.chdir(cwd);
  try {
    const code = await main(argv, { stdin, stdout, stderr, env: e });
    return { code, out, err };
  } finally {
    process.chdir(before);
  }
}

/** Every command path, from the root's help down (so a new command is covered without editing this test). */
async function commandPaths(prefix: string[] = []): Promise<string[][]> {
  const r = await cli([...prefix, '--help']);
  assert.equal(r.code, 0, `${prefix.join(' ')} --help: ${r.err}`);
  assert.equal(r.err, '');
  assert.match(r.out, /^Usage: portcullis/);
  const section = r.out.split('\nCommands:\n')[1];
  if (!section) return [prefix];
  const names = [...section.matchAll(/^ {2}([a-z0-9-]+)/gm)].map((m) => m[1]).filter((n) => n !== 'help');
  const nested = await Promise.all(names.map((n) => commandPaths([...prefix, n])));
  return [prefix, ...nested.flat()];
}

test('--help at every level prints usage on stdout and exits 0', async () => {
  const paths = await commandPaths();
  for (const expected of [
    ['policy', 'lint'],
    ['serve'],
    ['token', 'issue'],
    ['token', 'exec-credential'],
    ['sessions', 'tail'],
  ])
    assert.ok(
      paths.some((p) => p.join(' ') === expected.join(' ')),
      expected.join(' '),
    );
  assert.ok(paths.length > 30, `${paths.length} command paths`);
  const lint = await cli(['policy', 'lint', '--help']);
  assert.match(lint.out, /Usage: portcullis policy lint \[options\] <file\.\.\.>/);
  assert.equal((await cli(['help', 'serve'])).code, 0);
});

test('--version prints the package version', async () => {
  const r = await cli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.out, `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

test('a misspelt flag or command is named, with a suggestion; exit 2', async () => {
  const flag = await cli(['token', 'issue', '--agnet', 'planner-1', '--target', 'kube-dev']);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /unknown option '--agnet'\n\(Did you mean --agent\?\)/);
  const cmd = await cli(['polcy', 'list']);
  assert.equal(cmd.code, 2);
  assert.match(cmd.err, /unknown command 'polcy'\n\(Did you mean policy\?\)/);
  const missing = await cli(['token', 'issue', '--agent', 'planner-1']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /required option '--target <names>' not specified/);
  const value = await cli(['policy', 'rollback', 'p', '--version', 'two']);
  assert.equal(value.code, 2);
  assert.match(value.err, /--version must be a positive integer, got "two"/);
});

test('lists print as a table, JSON or YAML', async () => {
  const table = await cli(['target', 'list']);
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^NAME +KIND +ADDRESS +DEFAULT +RECORDING\nkube-dev +kubernetes /);
  const json = JSON.parse((await cli(['target', 'list', '-o', 'json'])).out) as { name: string }[];
  assert.deepEqual(
    json.map((t) => t.name),
    ['kube-dev'],
  );
  const yaml = parseYaml((await cli(['policy', 'list', '-o', 'yaml'])).out) as { name: string }[];
  assert.ok(yaml.some((p) => p.name === 'kubernetes-guardrails'));
  for (const list of [['agent'], ['principal'], ['approvals'], ['sessions'], ['policy']]) {
    const r = await cli([...list, 'list', '-o', 'json']);
    assert.equal(r.code, 0, `${list} list: ${r.err}`);
    JSON.parse(r.out);
  }
  const bad = await cli(['agent', 'list', '-o', 'xml']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /argument 'xml' is invalid\. Allowed choices are table, json, yaml/);
});

test('policy apply: no file is a usage error; an invalid file prints FILE:LINE:COL from the API and exits 1', async () => {
  const none = await cli(['policy', 'apply']);
  assert.equal(none.code, 2);
  assert.match(none.err, /missing required argument 'file'/);
  const file = join(dir, 'broken.yaml');
  writeFileSync(file, 'name: broken\nrules:\n  - name: r\n    when: k8s.namespace == 1\n    action: deny\n');
  const r = await cli(['policy', 'apply', file]);
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    new RegExp(`^${file}:4:11: CEL: no such overload: string == int\nerror: ${file} was not applied: `),
  );
});

test('policy diff without --from compares the current version with the one before', async () => {
  const file = join(dir, 'p.yaml');
  const source = (action: string): string =>
    `name: diffed\nscope:\n  targets:\n    kinds: [kubernetes]\nrules:\n  - name: r\n    when: k8s.verb == "get"\n    action: ${action}\n`;
  writeFileSync(file, source('allow'));
  assert.equal((await cli(['policy', 'apply', file])).code, 0);
  const only = await cli(['policy', 'diff', 'diffed']);
  assert.equal(only.code, 1);
  assert.match(only.err, /policy diffed has no version before 1 to diff against \(give --from\)/);
  writeFileSync(file, source('deny'));
  assert.equal((await cli(['policy', 'apply', file])).code, 0);
  const r = await cli(['policy', 'diff', 'diffed']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^- {4}action: allow$/m);
  assert.match(r.out, /^\+ {4}action: deny$/m);
  const history = await cli(['policy', 'history', 'diffed']);
  assert.match(history.out, /^NAME +VERSION +TIME +AUTHOR +NOTE\ndiffed +1 .*\ndiffed +2 /);
});

test('k8s classify PATCH …/scale without a body classifies it as kubectl scale sends it', async () => {
  const r = await cli(['k8s', 'classify', 'PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale']);
  assert.equal(r.code, 0, r.err);
  const ctx = JSON.parse(r.out) as { verb: string; subresource: string; namespace: string; name: string };
  assert.deepEqual([ctx.verb, ctx.subresource, ctx.namespace, ctx.name], ['patch', 'scale', 'prod', 'web']);
  const missing = await cli(['k8s', 'classify', 'PATCH', '/api/v1/namespaces/x', '--body', join(dir, 'none.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, new RegExp(`cannot read the body file ${join(dir, 'none.json')}: ENOENT`));
});

test('the admin token file is found above the working directory; a missing one is named', async () => {
  const project = join(dir, 'project');
  mkdirSync(join(project, '.portcullis'), { recursive: true });
  mkdirSync(join(project, 'deep', 'er'), { recursive: true });
  writeFileSync(join(project, '.portcullis', 'admin.token'), `${svc.adminToken}\n`);
  const url = { PORTCULLIS_ADMIN_URL: svc.adminUrl };
  const found = await cli(['agent', 'list'], url, join(project, 'deep', 'er'));
  assert.equal(found.code, 0, found.err);
  assert.match(found.out, /planner-1/);
  const named = await cli(['agent', 'list'], { ...url, PORTCULLIS_TOKEN_FILE: 'nope/admin.token' }, project);
  assert.equal(named.code, 1);
  assert.equal(
    named.err,
    `error: cannot read the token file ${join(project, 'nope/admin.token')} (PORTCULLIS_TOKEN_FILE): ENOENT\n`,
  );
  const nowhere = mkdtempSync(join(tmpdir(), 'portcullis-notoken-'));
  const refused = await cli(['agent', 'list'], url, nowhere);
  assert.equal(refused.code, 1);
  assert.match(
    refused.err,
    /^error: unauthenticated: .*no token: set PORTCULLIS_TOKEN or PORTCULLIS_TOKEN_FILE .*\(GET http:\/\/127\.0\.0\.1:\d+\/v1\/agents answered 401\)/,
  );
  const closed = await freePort();
  const down = await cli(['agent', 'list'], {
    PORTCULLIS_ADMIN_URL: `http://127.0.0.1:${closed}`,
    PORTCULLIS_TOKEN: 'x',
  });
  assert.equal(down.code, 1);
  assert.match(
    down.err,
    new RegExp(`the admin API at http://127\\.0\\.0\\.1:${closed} is not reachable \\(ECONNREFUSED\\)`),
  );
});

test('completion bash offers the commands and flags the parser accepts', async () => {
  const r = await cli(['completion', 'bash']);
  assert.equal(r.code, 0);
  const script = join(dir, 'completion.bash');
  writeFileSync(script, r.out);
  const complete = (...words: string[]): string =>
    execFileSync(
      'bash',
      [
        '-c',
        `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _portcullis; echo "\${COMPREPLY[*]}"`,
      ],
      { encoding: 'utf8' },
    ).trim();
  assert.equal(complete('portcullis', 'pol'), 'policy');
  assert.equal(complete('portcullis', 'policy', 'l'), 'lint list');
  assert.equal(complete('portcullis', 'token', 'issue', '--ag'), '--agent');
  assert.equal((await cli(['completion', 'fish'])).code, 2);
});

/** kubectl run asynchronously: the server it talks to lives in this process. */
async function kubectl(
  args: string[],
  e: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)('kubectl', args, { encoding: 'utf8', env: e, timeout: 60_000 });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const x = err as { code?: number; stdout?: string; stderr?: string };
    return { status: x.code ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** A stand-in for Envoy's Kubernetes listener that only records the Authorization header kubectl sends. */
async function recordingServer(): Promise<{ url: string; seen: string[]; server: Server; caPath: string }> {
  const seen: string[] = [];
  // TLS, as Envoy's listener serves it: kubectl sends no bearer token over plain HTTP.
  const cert = makeThrowawayCert();
  const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    seen.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"major":"1","minor":"31","gitVersion":"v1.31.0"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server, caPath: cert.certPath };
}

const jwtClaims = (token: string): { sub?: string; agent?: string; jti: string } =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string };

test('token issue --kubeconfig writes a kubeconfig kubectl uses, with the token in it (mode 0600)', async () => {
  const api = await recordingServer();
  try {
    const file = join(dir, 'agent.kubeconfig');
    const r = await cli([
      'token',
      'issue',
      '--agent',
      'planner-1',
      '--target',
      'kube-dev',
      '--ttl',
      '10m',
      '--kubeconfig',
      file,
      '--server',
      api.url,
      '--certificate-authority',
      api.caPath,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '', 'the token is in the file, not on stdout');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const out = await kubectl(['--kubeconfig', file, 'get', '--raw', '/version']);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /v1\.31\.0/);
    const token = api.seen[0].replace(/^Bearer /, '');
    const shown = await svc.call(svc.adminToken, 'GET', `/v1/tokens/${jwtClaims(token).jti}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.agent, 'planner-1');
  } finally {
    api.server.close();
  }
});

test('token issue --kubeconfig --exec: kubectl runs `portcullis token exec-credential` for a fresh token', async () => {
  const api = await recordingServer();
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  // `portcullis` on kubectl's PATH, running these sources.
  writeFileSync(
    join(bin, 'portcullis'),
    `#!/bin/sh\ncd ${ROOT} && exec ${process.execPath} --import tsx extproc/cli/run.ts "$@"\n`,
  );
  chmodSync(join(bin, 'portcullis'), 0o755);
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, `${svc.adminToken}\n`, { mode: 0o600 });
  try {
    const file = join(dir, 'exec.kubeconfig');
    const r = await cli(
      [
        'token',
        'issue',
        '--agent',
        'planner-1',
        '--target',
        'kube-dev',
        '--kubeconfig',
        file,
        '--server',
        api.url,
        '--certificate-authority',
        api.caPath,
        '--exec',
      ],
      { PORTCULLIS_ADMIN_URL: svc.adminUrl, PORTCULLIS_TOKEN_FILE: tokenFile },
    );
    assert.equal(r.code, 0, r.err);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, new RegExp(svc.adminToken), 'the admin token itself is never written');
    assert.match(text, /command: portcullis/);
    const run = await kubectl(['--kubeconfig', file, 'get', '--raw', '/version'], {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
    });
    assert.equal(run.status, 0, run.stderr);
    const token = api.seen[0].replace(/^Bearer /, '');
    const shown = await svc.call(svc.adminToken, 'GET', `/v1/tokens/${jwtClaims(token).jti}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.agent, 'planner-1');
  } finally {
    api.server.close();
  }
});

test('sessions show: a statement recorded with its decision shows the statement, the decision and its folded output', async () => {
  const { eventLine } = await import('../../extproc/cli/commands/sessions.ts');
  const line = eventLine({
    v: 1,
    type: 'decision',
    sessionId: 's',
    agent: 'a',
    target: 'db',
    protocol: 'postgres',
    seq: 3,
    time: '2026-01-01T00:00:00.000Z',
    prevHash: '0'.repeat(64),
    hash: '1'.repeat(64),
    data: {
      action: 'allow',
      rule: null,
      policy: 'p',
      policyVersion: 2,
      message: '',
      request: { statement: 'SELECT 1' },
      output: { commands: ['SELECT 1'], rows: 1 },
    },
  });
  assert.equal(
    line,
    '#3 2026-01-01T00:00:00.000Z decision           SELECT 1 → allow rule=- policy=p@2 → output {"commands":["SELECT 1"],"rows":1}\n',
  );
});
