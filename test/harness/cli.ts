/** Runs a CLI command in-process with captured output, as a user's shell would see it. */
import { PassThrough } from 'node:stream';
import type { CliCommand } from '../../extproc/cli/types.ts';

export async function runCommand(
  command: CliCommand,
  argv: string[],
  env: NodeJS.ProcessEnv,
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
  const code = await command(argv, { stdin: new PassThrough(), stdout, stderr, env });
  return { code, out, err };
}
