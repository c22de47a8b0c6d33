#!/usr/bin/env node
// The portcullis command: runs the bundle `npm run build` makes (dist/portcullis.mjs; `npm ci` builds it through
// `prepare`). Contributors can run the TypeScript sources instead with PORTCULLIS_FROM_SOURCE=1 (needs the dev
// dependencies: tsx).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/portcullis.mjs', import.meta.url);
if (process.env.PORTCULLIS_FROM_SOURCE === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../extproc/cli/run.ts');
} else if (existsSync(bundle)) {
  await import(bundle.href);
} else {
  process.stderr.write(`portcullis: ${bundle.pathname} is missing: run \`npm run build\` (or \`npm ci\`) first\n`);
  process.exitCode = 1;
}
