/** An SSH channel request as the spine's typed action: the `ssh` section, what the recording keeps, the fingerprint. */
import { EMPTY_SSH, type Action, type SshContext } from '../spine/index.ts';
import type { CommandLine } from './command-line.ts';

export type SshRequest = Partial<SshContext> & Pick<SshContext, 'kind' | 'user'>;

/** The `ssh` section of a command line that classified (`exec`, `shell-line`). */
export function commandSection(
  command: string,
  line: CommandLine,
): Pick<SshContext, 'command' | 'commands' | 'programs' | 'redirects'> {
  return {
    command,
    commands: line.commands.map((c) => ({ program: c.program, args: c.args })),
    programs: line.commands.map((c) => c.program),
    redirects: line.redirects,
  };
}

export function sshAction(target: string, req: SshRequest): Action {
  const ssh: SshContext = { ...EMPTY_SSH, ...req };
  const recorded: Record<string, unknown> = { kind: ssh.kind, user: ssh.user, pty: ssh.pty };
  if (ssh.command) {
    recorded.command = ssh.command;
    recorded.commands = ssh.commands;
  }
  if (ssh.subsystem) recorded.subsystem = ssh.subsystem;
  if (ssh.forwardHost) {
    recorded.forwardHost = ssh.forwardHost;
    recorded.forwardPort = Number(ssh.forwardPort);
  }
  return {
    section: { protocol: 'ssh', ssh },
    recorded,
    // An approval covers exactly this: the command line byte for byte (an exec), or the request's fields.
    canonical: () =>
      ssh.kind === 'exec' || ssh.kind === 'shell-line'
        ? `${ssh.kind}\n${ssh.user}\n${ssh.command}`
        : JSON.stringify([ssh.kind, ssh.user, ssh.pty, ssh.subsystem, ssh.forwardHost, String(ssh.forwardPort)]),
    summary: () => {
      const what =
        ssh.kind === 'exec' || ssh.kind === 'shell-line'
          ? `${ssh.kind} ${JSON.stringify(ssh.command.length > 300 ? `${ssh.command.slice(0, 300)}…` : ssh.command)}`
          : ssh.kind === 'subsystem'
            ? `subsystem ${ssh.subsystem}`
            : ssh.forwardHost
              ? `${ssh.kind} to ${ssh.forwardHost}:${ssh.forwardPort}`
              : ssh.kind;
      return `${what} as ${ssh.user} on ${target}`;
    },
  };
}
