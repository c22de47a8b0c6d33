/**
 * The `portcullis` command, on commander. One registry entry per command word; a command's module is loaded only
 * when that word is run (or for `completion` and `help`), so an offline command does not load the service.
 * Importable: tests run main() in-process with their own streams.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, type Option } from 'commander';
import { PACKAGE_ROOT } from '../common/package-files.ts';
import { CliFailure } from './admin-client.ts';
import { EXIT, type CliContext, type CliIO, type CommandBuilder } from './types.ts';

/** A command word: its one-line summary for `portcullis --help`, and how to load its builder. */
interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<CommandBuilder>;
}

// Adding a command is one entry here.
const COMMANDS: CommandEntry[] = [
  {
    name: 'serve',
    summary: 'run the gateway service',
    load: async () => (await import('./commands/serve.ts')).serveCommand,
  },
  {
    name: 'policy',
    summary: 'lint, eval, test and manage policies',
    load: async () => (await import('./commands/policy.ts')).policyCommand,
  },
  {
    name: 'agent',
    summary: 'register and manage agents',
    load: async () => (await import('./commands/identity.ts')).agentCommand,
  },
  {
    name: 'token',
    summary: 'issue, show and revoke agent tokens; kubeconfigs and kubectl credentials',
    load: async () => (await import('./commands/token.ts')).tokenCommand,
  },
  {
    name: 'target',
    summary: 'list and apply targets',
    load: async () => (await import('./commands/identity.ts')).targetCommand,
  },
  {
    name: 'principal',
    summary: 'create, revoke and rotate human principals',
    load: async () => (await import('./commands/identity.ts')).principalCommand,
  },
  {
    name: 'approvals',
    summary: 'list, show, approve, deny and revoke approval requests',
    load: async () => (await import('./commands/approvals.ts')).approvalsCommand,
  },
  {
    name: 'sessions',
    summary: 'list, show, verify, export and tail recorded sessions',
    load: async () => (await import('./commands/sessions.ts')).sessionsCommand,
  },
  {
    name: 'mask',
    summary: 'mask stdin to stdout with built-in or policy masking rules',
    load: async () => (await import('./commands/mask.ts')).maskCommand,
  },
  {
    name: 'k8s',
    summary: 'classify a Kubernetes API request offline',
    load: async () => (await import('./commands/k8s.ts')).k8sCommand,
  },
  {
    name: 'sql',
    summary: 'classify SQL offline as the PostgreSQL path reads it',
    load: async () => (await import('./commands/sql.ts')).sqlCommand,
  },
  {
    name: 'ssh',
    summary: 'classify an SSH command line offline as the SSH gateway reads it',
    load: async () => (await import('./commands/ssh.ts')).sshCommand,
  },
  {
    name: 'demo',
    summary: 'try the Kubernetes path without Envoy (uses the test stand-ins)',
    load: async () => (await import('./commands/demo.ts')).demoCommand,
  },
  {
    name: 'health',
    summary: "check a running service's gRPC health",
    load: async () => (await import('./commands/health.ts')).healthCommand,
  },
  {
    name: 'completion',
    summary: 'print a shell completion script (bash)',
    load: async () => (await import('./completion.ts')).completionCommand(allCommands),
  },
];

export function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

async function build(entry: CommandEntry, ctx: CliContext): Promise<Command> {
  return (await entry.load())(ctx);
}

/** The whole tree (for completion): every command loaded. */
async function allCommands(ctx: CliContext): Promise<Command[]> {
  return Promise.all(COMMANDS.map((e) => build(e, ctx)));
}

/** The root command; the command word being run (and, for `help X`, X) is loaded, the others are listed by summary. */
async function program(argv: string[], ctx: CliContext): Promise<Command> {
  const root = new Command('portcullis')
    .description('Policy-as-code gateway for AI agents: the service, and the tools to run it.')
    .version(version(), '-V, --version', 'print the version')
    .helpCommand('help [command]', 'show help for a command')
    // Options after a command word belong to that command (`policy rollback --version 3` is not the root's --version).
    .enablePositionalOptions()
    .addHelpText('after', '\nExit codes: 0 ok, 1 the command failed, 2 usage error, 3 a recording was tampered with.');
  const wanted = new Set(argv[0] === 'help' ? argv.slice(1, 2) : argv.slice(0, 1));
  for (const entry of COMMANDS) {
    root.addCommand(wanted.has(entry.name) ? await build(entry, ctx) : new Command(entry.name).summary(entry.summary));
  }
  return root;
}

/**
 * Settings every level shares: streams, no process.exit, the help hint after a usage error. Required options are
 * checked after unknown ones (commander checks them first), so `--agnet x` is named as the misspelling it is rather
 * than reported as a missing --agent.
 */
function configure(cmd: Command, io: CliIO): void {
  const required = (cmd.options as readonly Option[]).filter((o) => o.mandatory);
  for (const o of required) o.makeOptionMandatory(false);
  if (required.length)
    cmd.hook('preAction', () => {
      for (const o of required)
        if (cmd.getOptionValue(o.attributeName()) === undefined)
          cmd.error(`error: required option '${o.flags}' not specified`, {
            code: 'commander.missingMandatoryOptionValue',
          });
    });
  cmd
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showSuggestionAfterError()
    .showHelpAfterError(`(run '${fullName(cmd)} --help' for usage)`);
  for (const sub of cmd.commands) configure(sub, io);
}

function fullName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function main(argv: string[], io: CliIO): Promise<number> {
  return execute((ctx) => program(argv, ctx), argv, io);
}

/** Runs one command as `portcullis NAME argv…` would, for tests that hold a command module, not the registry. */
export function runCommandModule(builder: CommandBuilder, argv: string[], io: CliIO): Promise<number> {
  let name = '';
  return execute(
    async (ctx) => {
      const cmd = builder(ctx);
      name = cmd.name();
      return new Command('portcullis').addCommand(cmd);
    },
    () => [name, ...argv],
    io,
  );
}

async function execute(
  build: (ctx: CliContext) => Promise<Command>,
  args: string[] | (() => string[]),
  io: CliIO,
): Promise<number> {
  let code: number = EXIT.ok;
  const ctx: CliContext = {
    io,
    run:
      (action) =>
      async (...a) => {
        code = await action(...a);
      },
  };
  let argv: string[] = [];
  try {
    const root = await build(ctx);
    argv = typeof args === 'function' ? args() : args;
    configure(root, io);
    await root.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; a command word without its subcommand shows help and is a
      // usage error, like any other command line that does not parse.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliFailure) {
      io.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`${argv[0] ? `portcullis ${argv[0]}` : 'portcullis'}: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}
