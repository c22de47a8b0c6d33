/** Runs a CLI command in-process with captured output, as a user's shell would see it. */
import { PassThrough } from 'node:stream';
import { runCommandModule } from '../../extproc/cli/main.ts';
import type { CommandBuilder } from '../../extproc/cli/types.ts';

export async function runCommand(
  command: CommandBuilder,
  argv: string[],
  env: NodeJS.ProcessEnv,
  stdinText?: string,
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
  stdin.end(stdinText ?? '');
  const code = await runCommandModule(command, argv, { stdin, stdout, stderr, env });
  return { code, out, err };
}
