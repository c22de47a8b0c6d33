/** The `portcullis` command: dispatch to one module per command word. Importable, so tests run it in-process. */
import { UsageError } from './admin-client.ts';
import type { CliCommand, CliIO } from './types.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  serve: { summary: 'run the gateway service', load: async () => (await import('./commands/serve.ts')).serveCommand },
  policy: {
    summary: 'lint, eval, test, schema, apply, history, diff, rollback',
    load: async () => (await import('./commands/policy.ts')).policyCommand,
  },
  agent: {
    summary: 'register and manage agents',
    load: async () => (await import('./commands/identity.ts')).agentCommand,
  },
  token: {
    summary: 'issue and revoke agent tokens',
    load: async () => (await import('./commands/identity.ts')).tokenCommand,
  },
  target: {
    summary: 'list and apply targets',
    load: async () => (await import('./commands/identity.ts')).targetCommand,
  },
  approvals: {
    summary: 'list, show, approve, deny and revoke approval requests',
    load: async () => (await import('./commands/approvals.ts')).approvalsCommand,
  },
  sessions: {
    summary: 'list, show, verify, export and tail recorded sessions (auditors)',
    load: async () => (await import('./commands/sessions.ts')).sessionsCommand,
  },
  mask: {
    summary: 'mask stdin to stdout with built-in or policy masking rules',
    load: async () => (await import('./commands/mask.ts')).maskCommand,
  },
  k8s: {
    summary: 'classify a Kubernetes API request offline (k8s classify METHOD PATH)',
    load: async () => (await import('./commands/k8s.ts')).k8sCommand,
  },
  sql: {
    summary: "classify SQL offline as the PostgreSQL path reads it (sql classify 'SQL')",
    load: async () => (await import('./commands/sql.ts')).sqlCommand,
  },
  ssh: {
    summary: "show the commands an SSH command line runs, as the gateway sees them (ssh classify 'CMD')",
    load: async () => (await import('./commands/ssh.ts')).sshCommand,
  },
  principal: {
    summary: 'create, revoke and rotate human principals (admins, policy authors, approvers, auditors)',
    load: async () => (await import('./commands/identity.ts')).principalCommand,
  },
  demo: {
    summary: 'try the Kubernetes path without Envoy (uses the test stand-ins by design)',
    load: async () => (await import('./commands/demo.ts')).demoCommand,
  },
};

export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    io.stderr.write(
      `usage: portcullis <command> [args]\n\ncommands:\n${Object.entries(COMMANDS)
        .map(([n, c]) => `  ${n.padEnd(11)}${c.summary}`)
        .join('\n')}\n`,
    );
    return name ? 2 : 0;
  }
  try {
    return await (await cmd.load())(rest, io);
  } catch (err) {
    io.stderr.write(`portcullis ${name}: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
