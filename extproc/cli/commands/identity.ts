/** `portcullis agent|target|principal …`: identities through the admin API (role admin). */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { Principal } from '../../identity/principal.ts';
import type { Agent, Target } from '../../identity/registry.ts';
import { adminClient, CliFailure } from '../admin-client.ts';
import { formatOf, jsonAlias, outputOption, printData, printList, type OutputOptions } from '../output.ts';
import { EXIT, type CliContext, type CommandBuilder } from '../types.ts';

export const commaList = (v: string | undefined): string[] =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

function labels(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of commaList(v)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new CliFailure(`error: --labels: "${kv}" is not KEY=VALUE`, EXIT.usage);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** A `list` subcommand: GET `path`, printed under `columns` or as JSON/YAML. */
function listCommand<T>(
  { io, run }: CliContext,
  what: string,
  path: string,
  columns: { header: string; value(row: T): string }[],
): Command {
  return new Command('list')
    .description(`list ${what}`)
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (opts: OutputOptions) => {
        const items = (await adminClient(io.env).request('GET', path)) as T[];
        printList(io, formatOf(opts), items, items, columns, `no ${what}`);
        return EXIT.ok;
      }),
    );
}

export const agentCommand: CommandBuilder = (ctx) => {
  const { io, run } = ctx;
  const show = (v: unknown): number => {
    printData(io, 'json', v);
    return EXIT.ok;
  };
  const cmd = new Command('agent').description('register and manage agents (the identities tokens are issued to)');
  cmd.addCommand(
    listCommand<Agent>(ctx, 'agents', '/v1/agents', [
      { header: 'ID', value: (a) => a.id },
      { header: 'GROUPS', value: (a) => a.groups.join(',') },
      { header: 'OWNER', value: (a) => a.owner ?? '' },
      { header: 'DISABLED', value: (a) => String(a.disabled) },
      {
        header: 'LABELS',
        value: (a) =>
          Object.entries(a.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
      },
    ]),
  );
  cmd
    .command('get')
    .description('show an agent')
    .argument('<id>', 'agent id')
    .action(
      run(async (id: string) => show(await adminClient(io.env).request('GET', `/v1/agents/${encodeURIComponent(id)}`))),
    );
  cmd
    .command('create')
    .description('register an agent')
    .argument('<id>', 'agent id')
    .option('--groups <list>', 'comma-separated groups policies can match')
    .option('--labels <list>', 'comma-separated KEY=VALUE labels')
    .option('--owner <principal>', 'the principal this agent acts for (who then cannot approve its requests)')
    .action(
      run(async (id: string, opts: { groups?: string; labels?: string; owner?: string }) =>
        show(
          await adminClient(io.env).request('POST', '/v1/agents', {
            id,
            groups: commaList(opts.groups),
            labels: labels(opts.labels),
            ...(opts.owner ? { owner: opts.owner } : {}),
          }),
        ),
      ),
    );
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    cmd
      .command(name)
      .description(`${name} an agent (a disabled agent's tokens are refused)`)
      .argument('<id>', 'agent id')
      .action(
        run(async (id: string) =>
          show(await adminClient(io.env).request('PUT', `/v1/agents/${encodeURIComponent(id)}`, { id, disabled })),
        ),
      );
  }
  return cmd;
};

export const targetCommand: CommandBuilder = (ctx) => {
  const { io, run } = ctx;
  const cmd = new Command('target').description('the upstreams agents reach through Portcullis');
  cmd.addCommand(
    listCommand<Target>(ctx, 'targets', '/v1/targets', [
      { header: 'NAME', value: (t) => t.name },
      { header: 'KIND', value: (t) => t.kind },
      { header: 'ADDRESS', value: (t) => t.address },
      { header: 'DEFAULT', value: (t) => t.defaultAction },
      { header: 'RECORDING', value: (t) => t.recording },
    ]),
  );
  cmd
    .command('apply')
    .description('create or replace the targets in YAML files (`targets:`, as in examples/targets.yaml)')
    .argument('<file...>', 'target files')
    .action(
      run(async (files: string[]) => {
        const client = adminClient(io.env);
        for (const file of files) {
          let doc: { targets?: { name: string }[] } | null;
          try {
            doc = parseYaml(readFileSync(file, 'utf8')) as typeof doc;
          } catch (err) {
            const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
            throw new CliFailure(`error: cannot read targets from ${file}: ${reason}`);
          }
          if (!doc?.targets?.length) throw new CliFailure(`error: ${file} has no \`targets:\` list`);
          for (const t of doc.targets) {
            await client.request('PUT', `/v1/targets/${encodeURIComponent(t.name)}`, t);
            io.stdout.write(`target ${t.name} applied\n`);
          }
        }
        return EXIT.ok;
      }),
    );
  return cmd;
};

export const principalCommand: CommandBuilder = (ctx) => {
  const { io, run } = ctx;
  const cmd = new Command('principal').description(
    'humans who use the admin API: admins, policy authors, approvers, auditors',
  );
  cmd.addCommand(
    listCommand<Principal>(ctx, 'principals', '/v1/principals', [
      { header: 'ID', value: (p) => p.id },
      { header: 'NAME', value: (p) => p.name },
      { header: 'ROLES', value: (p) => p.roles.join(',') },
      { header: 'GROUPS', value: (p) => p.groups.join(',') },
    ]),
  );
  cmd
    .command('create')
    .description('create a principal; its token is printed once, on stdout')
    .argument('<name>', 'display name')
    .requiredOption('--roles <list>', 'comma-separated: admin, policy-author, approver, auditor')
    .option('--groups <list>', 'comma-separated approver groups (matched by approval rules)')
    .action(
      run(async (name: string, opts: { roles: string; groups?: string }) => {
        const r = (await adminClient(io.env).request('POST', '/v1/principals', {
          name,
          roles: commaList(opts.roles),
          groups: commaList(opts.groups),
        })) as { id: string; token: string; tokenExpiresAt: string };
        io.stdout.write(`${r.token}\n`);
        io.stderr.write(
          `principal ${r.id} created; the token above is shown only once and expires ${r.tokenExpiresAt}\n`,
        );
        return EXIT.ok;
      }),
    );
  cmd
    .command('revoke')
    .description('revoke every token of a principal')
    .argument('<principal-id>', 'principal id')
    .action(
      run(async (id: string) => {
        const r = (await adminClient(io.env).request('POST', `/v1/principals/${encodeURIComponent(id)}/revoke`)) as {
          revoked: number;
        };
        io.stdout.write(`revoked ${r.revoked} token(s) of principal ${id}\n`);
        return EXIT.ok;
      }),
    );
  cmd
    .command('rotate')
    .description('issue a principal a new token and revoke the earlier ones; the new token is printed once')
    .argument('<principal-id>', 'principal id')
    .action(
      run(async (id: string) => {
        const r = (await adminClient(io.env).request('POST', `/v1/principals/${encodeURIComponent(id)}/rotate`)) as {
          id: string;
          token: string;
          tokenExpiresAt: string;
          revoked: number;
        };
        // The new token alone on stdout, as for create.
        io.stdout.write(`${r.token}\n`);
        io.stderr.write(
          `principal ${r.id}: ${r.revoked} earlier token(s) revoked; the new token above is shown only once and expires ${r.tokenExpiresAt}\n`,
        );
        return EXIT.ok;
      }),
    );
  return cmd;
};
