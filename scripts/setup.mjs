#!/usr/bin/env node
// Set-up shared by `npm start`, `npm test` and `npm run demo` on a fresh machine: npm packages, then the Debian
// packages the step needs (installed when running as root, otherwise named in a message). Plain Node, no
// dependencies, because it runs before `npm ci`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv[2] ?? 'start';
// command on PATH → Debian package that provides it
const NEEDS = {
  start: { 'redis-server': 'redis-server' },
  demo: { 'redis-server': 'redis-server', openssl: 'openssl', kubectl: 'kubernetes-client' },
  test: {
    'redis-server': 'redis-server',
    openssl: 'openssl',
    kubectl: 'kubernetes-client',
    // PostgreSQL path: a real server (started by the tests in their own data dir), psql, pgbench, and JDBC on a JDK
    pg_ctlcluster: 'postgresql',
    psql: 'postgresql-client',
    '/usr/share/java/postgresql.jar': 'libpostgresql-jdbc-java',
    javac: 'default-jdk-headless',
    // SSH path: a real sshd and OpenSSH's clients; asciinema replays recorded casts; tmux drives a pty
    sshd: 'openssh-server',
    ssh: 'openssh-client',
    asciinema: 'asciinema',
    tmux: 'tmux',
  },
};

// A key that is an absolute path is a file the package installs; any other key is a command on PATH.
function have(cmd) {
  if (cmd.startsWith('/')) return existsSync(cmd);
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function npmPackages() {
  const lock = join(root, 'package-lock.json');
  const installed = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  console.error('setup: installing npm packages (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

function debianPackages() {
  const missing = Object.entries(NEEDS[purpose] ?? {})
    .filter(([cmd]) => !have(cmd))
    .map(([, pkg]) => pkg);
  if (!missing.length) return;
  if (process.getuid?.() !== 0) {
    console.error(
      `setup: missing Debian packages: ${missing.join(' ')}\n  install them with: sudo apt-get install -y ${missing.join(' ')}`,
    );
    process.exit(1);
  }
  console.error(`setup: installing Debian packages: ${missing.join(' ')}`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** Newest modification time of the files below dir (AssemblyScript sources and build settings). */
function newestBelow(dir) {
  return readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = join(dir, e.name);
    return Math.max(t, e.isDirectory() ? newestBelow(p) : statSync(p).mtimeMs);
  }, 0);
}

/** Builds the wasm modules when one is missing or older than its sources (a pull or merge changed them). */
function wasm() {
  const dir = join(root, 'wasm-filter');
  if (!existsSync(join(dir, 'build.mjs'))) return;
  const outputs = ['masking.wasm', 'filter.wasm'].map((f) => join(dir, 'build', f));
  const sources = Math.max(newestBelow(join(dir, 'assembly')), statSync(join(dir, 'build.mjs')).mtimeMs);
  if (outputs.every((f) => existsSync(f) && statSync(f).mtimeMs >= sources)) return;
  execFileSync('node', ['wasm-filter/build.mjs'], { cwd: root, stdio: 'inherit' });
}

// The bundle the commands run (dist/), rebuilt each time so it matches the sources (esbuild takes well under a second).
function bundle() {
  execFileSync('node', ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
}

npmPackages();
debianPackages();
wasm();
bundle();
