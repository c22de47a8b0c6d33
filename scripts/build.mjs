#!/usr/bin/env node
// The production build: esbuild compiles the TypeScript service and CLI into dist/portcullis.mjs (plus chunks for
// the commands loaded on demand), so nothing is compiled at run time. npm packages stay external: `npm ci
// --omit=dev` supplies them, with the files some read at run time (libpg-query's .wasm, the Envoy protos in
// @grpc/grpc-js-xds). Files of our own read at run time are copied into dist/ (extproc/common/package-files.ts finds
// them there): the masking core and the project's protos; the proxy-wasm filter too, for the image's Envoy.
// Builds into a fresh directory and swaps it in, so a run of the bundle never sees half a build.
import { cpSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const next = join(root, `dist.${process.pid}.tmp`);
const wasm = join(root, 'wasm-filter', 'build', 'masking.wasm');
// The proxy-wasm filter is not run by the service; it ships in the image so Envoy loads the same build (deploy/).
const filterWasm = join(root, 'wasm-filter', 'build', 'filter.wasm');
for (const file of [wasm, filterWasm]) {
  if (!existsSync(file)) {
    console.error(`build: ${file} is missing; build the wasm first (npm run build:wasm)`);
    process.exit(1);
  }
}

rmSync(next, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { portcullis: 'extproc/cli/run.ts' },
  outdir: next,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.6',
  packages: 'external',
  define: { PORTCULLIS_BUNDLED: 'true' },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
cpSync(wasm, join(next, 'masking.wasm'));
cpSync(filterWasm, join(next, 'filter.wasm'));
cpSync(join(root, 'extproc', 'envoy-api', 'protos'), join(next, 'protos'), { recursive: true });
rmSync(dist, { recursive: true, force: true });
renameSync(next, dist);
