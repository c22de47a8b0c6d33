#!/usr/bin/env node
// The portcullis command. The sources are TypeScript, run through tsx's loader (a dependency), so there is no build
// step between `npm ci` and `npx portcullis`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../extproc/cli/main.ts');
process.exitCode = await main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
