/** The process entry of the `portcullis` command (bundled into dist/portcullis.mjs): main() on the real streams. */
import { main } from './main.ts';

// A reader that stops early (`portcullis … | head`) is not an error of ours: stop quietly, as other CLIs do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

process.exitCode = await main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
