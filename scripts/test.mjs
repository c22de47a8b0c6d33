#!/usr/bin/env node
// The whole test suite: type-check, lint, format check, then every test/**/*.test.ts under Node's test runner (tsx as
// loader).
// Extra arguments are passed to `node --test` (e.g. a file list to run a subset).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

const tsc = spawnSync('npx', ['tsc', '-p', '.'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('typecheck failed');
  process.exit(1);
}
console.error('typecheck ok');

// Lint and formatting, after the types and before the tests: a finding fails the suite.
const biomeChecks = [
  [['biome', 'lint', '.'], 'lint failed: fix the findings above (`npm run lint` lists them again)'],
  [['biome', 'format', '.'], 'format check failed: run `npm run format` and commit the result'],
];
for (const [cmd, failure] of biomeChecks) {
  const r = spawnSync('npx', cmd, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(failure);
    process.exit(1);
  }
}
console.error('lint and format ok');

const files = args.filter((a) => a.endsWith('.ts'));
const flags = args.filter((a) => !a.endsWith('.ts'));
const tests = files.length
  ? files
  : walk(join(root, 'test'))
      .map((f) => relative(root, f))
      .sort();
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...flags, ...tests],
  { cwd: root, stdio: 'inherit' },
);
process.exit(run.status ?? 1);
