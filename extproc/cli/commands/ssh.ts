/**
 * `portcullis ssh classify 'COMMAND LINE'`: what the SSH gateway sees in a command line, offline. Prints
 * `{"commands": [{"program", "args": [...]}], "redirects": [...]}` (exit 0), or `{"error": "..."}` (exit 1) when the
 * gateway would refuse the line as one it cannot inspect.
 */
import { classifyCommandLine } from '../../ssh/index.ts';
import type { CliCommand } from '../types.ts';

const USAGE = "usage: portcullis ssh classify 'COMMAND LINE'\n";

/** The JSON `ssh classify` prints for `line`, and its exit status. */
export function sshClassification(line: string): { json: Record<string, unknown>; exitCode: 0 | 1 } {
  const c = classifyCommandLine(line);
  if (!c.ok) return { json: { error: c.error }, exitCode: 1 };
  return {
    json: {
      commands: c.line.commands.map((cmd) => ({
        program: cmd.program,
        ...(cmd.path ? { path: cmd.path } : {}),
        args: cmd.args,
      })),
      redirects: c.line.redirects,
    },
    exitCode: 0,
  };
}

export const sshCommand: CliCommand = async (argv, io) => {
  if (argv[0] !== 'classify' || argv.length !== 2) {
    io.stderr.write(USAGE);
    return 2;
  }
  const { json, exitCode } = sshClassification(argv[1]);
  io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  return exitCode;
};
