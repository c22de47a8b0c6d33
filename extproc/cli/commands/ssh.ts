/**
 * `portcullis ssh classify 'COMMAND LINE'`: what the SSH gateway sees in a command line, offline. Prints
 * `{"commands": [{"program", "args": [...]}], "redirects": [...]}` (exit 0), or `{"error": "..."}` (exit 1) when the
 * gateway would refuse the line as one it cannot inspect.
 */
import { Command } from 'commander';
import { classifyCommandLine } from '../../ssh/index.ts';
import type { CommandBuilder } from '../types.ts';

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

export const sshCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('ssh').description('SSH tools');
  cmd
    .command('classify')
    .description('print the commands an SSH command line runs, as the gateway sees them, offline (docs/ssh.md)')
    .argument('<command-line>', "e.g. 'ls /srv; rm -rf /srv/data'")
    .action(
      run((line: string) => {
        const { json, exitCode } = sshClassification(line);
        io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        return exitCode;
      }),
    );
  return cmd;
};
