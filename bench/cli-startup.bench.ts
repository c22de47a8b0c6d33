/**
 * CLI start-up: `portcullis policy lint` on the bundled policy, run by the bundle (dist/, what `npm ci` builds and
 * the image ships) and by the TypeScript sources through tsx (how the CLI ran before it was bundled), alternately,
 * each a fresh process. Prints medians of wall time and peak RSS, and the ratio. Target: bundle ≤ 0.5× tsx.
 * Run: node --import tsx bench/cli-startup.bench.ts [rounds]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const ROUNDS = Number(process.argv[2] ?? 10);
const ARGS = ['policy', 'lint', join(ROOT, 'examples/policies/kubernetes-guardrails.yaml')];

spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });

const WAYS: Record<string, string[]> = {
  bundle: [join(ROOT, 'dist/portcullis.mjs'), ...ARGS],
  tsx: ['--import', 'tsx', join(ROOT, 'extproc/cli/run.ts'), ...ARGS],
};

/** One run: wall milliseconds, and the peak RSS in MB the child reports as it exits. */
function once(args: string[]): { ms: number; mb: number } {
  const start = process.hrtime.bigint();
  // The child prints its own peak RSS on exit, so the number is the command's, not this process's.
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      `data:text/javascript,process.on('exit',()=>process.stderr.write('rss='+process.resourceUsage().maxRSS+'\\n'))`,
      ...args,
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, mb: Number(/rss=(\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, { ms: number[]; mb: number[] }> = { bundle: { ms: [], mb: [] }, tsx: { ms: [], mb: [] } };
for (const way of Object.keys(WAYS)) once(WAYS[way]); // warm the file cache
for (let i = 0; i < ROUNDS; i++) {
  for (const way of i % 2 ? ['tsx', 'bundle'] : ['bundle', 'tsx']) {
    const r = once(WAYS[way]);
    results[way].ms.push(r.ms);
    results[way].mb.push(r.mb);
  }
}
for (const [way, r] of Object.entries(results))
  console.log(
    `${way.padEnd(7)} median ${median(r.ms).toFixed(0)} ms (range ${Math.min(...r.ms).toFixed(0)}–${Math.max(...r.ms).toFixed(0)}), peak RSS ${median(r.mb).toFixed(0)} MB`,
  );
const ratio = median(results.bundle.ms) / median(results.tsx.ms);
console.log(`bundle / tsx: ${ratio.toFixed(2)}× wall time (target ≤ 0.5×) — ${ratio <= 0.5 ? 'met' : 'NOT met'}`);
