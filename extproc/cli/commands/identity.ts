/** `portcullis agent|token|target|principal …`: identities through the admin API (role admin). */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { adminClient, parseFlags, withAdminErrors } from '../admin-client.ts';
import type { CliCommand } from '../types.ts';

const list = (v: string | undefined): string[] =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
const labels = (v: string | undefined): Record<string, string> =>
  Object.fromEntries(list(v).map((kv) => kv.split('=', 2) as [string, string]));

export const agentCommand: CliCommand = (argv, io) =>
  withAdminErrors(io, async () => {
    const client = adminClient(io.env);
    const [sub, ...rest] = argv;
    const { flags, positional } = parseFlags(rest);
    const out = (v: unknown): number => {
      io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
      return 0;
    };
    switch (sub) {
      case 'list':
        return out(await client.request('GET', '/v1/agents'));
      case 'get':
        return out(await client.request('GET', `/v1/agents/${encodeURIComponent(positional[0])}`));
      case 'create':
        return out(
          await client.request('POST', '/v1/agents', {
            id: positional[0],
            groups: list(flags.groups),
            labels: labels(flags.labels),
            ...(flags.owner ? { owner: flags.owner } : {}),
          }),
        );
      case 'disable':
      case 'enable':
        return out(
          await client.request('PUT', `/v1/agents/${encodeURIComponent(positional[0])}`, {
            id: positional[0],
            disabled: sub === 'disable',
          }),
        );
      default:
        io.stderr.write(
          'usage: portcullis agent list | get ID | create ID [--groups a,b] [--labels k=v,…] [--owner PRINCIPAL_ID] | disable ID | enable ID\n',
        );
        return 2;
    }
  });

export const tokenCommand: CliCommand = (argv, io) =>
  withAdminErrors(io, async () => {
    const client = adminClient(io.env);
    const [sub, ...rest] = argv;
    const { flags, positional } = parseFlags(rest);
    switch (sub) {
      case 'issue': {
        if (!flags.agent || !flags.target) break;
        const r = (await client.request('POST', '/v1/tokens', {
          agent: flags.agent,
          targets: list(flags.target),
          ...(flags.ttl ? { ttl: flags.ttl } : {}),
          ...(flags.plan ? { plan: flags.plan } : {}),
        })) as { token: string; jti: string; expiresAt: string };
        // The token alone on stdout, so `TOKEN=$(portcullis token issue …)` works; its id and expiry on stderr.
        io.stdout.write(`${r.token}\n`);
        io.stderr.write(`token id ${r.jti}, expires ${r.expiresAt}\n`);
        return 0;
      }
      case 'revoke':
        await client.request('DELETE', `/v1/tokens/${encodeURIComponent(positional[0])}`);
        io.stdout.write(`revoked ${positional[0]}\n`);
        return 0;
      case 'show':
        io.stdout.write(
          `${JSON.stringify(await client.request('GET', `/v1/tokens/${encodeURIComponent(positional[0])}`), null, 2)}\n`,
        );
        return 0;
    }
    io.stderr.write(
      'usage: portcullis token issue --agent A --target T[,T2] [--ttl 10m] [--plan P] | revoke TOKEN_ID | show TOKEN_ID\n',
    );
    return 2;
  });

export const targetCommand: CliCommand = (argv, io) =>
  withAdminErrors(io, async () => {
    const client = adminClient(io.env);
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'list':
        io.stdout.write(`${JSON.stringify(await client.request('GET', '/v1/targets'), null, 2)}\n`);
        return 0;
      case 'apply': {
        // A YAML file with `targets:` (the same shape as examples/targets.yaml); existing targets are replaced.
        for (const file of rest) {
          const doc = parseYaml(readFileSync(file, 'utf8')) as { targets?: { name: string }[] };
          for (const t of doc.targets ?? []) {
            await client.request('PUT', `/v1/targets/${encodeURIComponent(t.name)}`, t);
            io.stdout.write(`target ${t.name} applied\n`);
          }
        }
        return 0;
      }
    }
    io.stderr.write('usage: portcullis target list | apply FILE...\n');
    return 2;
  });

export const principalCommand: CliCommand = (argv, io) =>
  withAdminErrors(io, async () => {
    const client = adminClient(io.env);
    const [sub, ...rest] = argv;
    const { flags, positional } = parseFlags(rest);
    if (sub === 'list') {
      io.stdout.write(`${JSON.stringify(await client.request('GET', '/v1/principals'), null, 2)}\n`);
      return 0;
    }
    if (sub === 'create' && positional[0] && flags.roles) {
      const r = (await client.request('POST', '/v1/principals', {
        name: positional[0],
        roles: list(flags.roles),
        groups: list(flags.groups),
      })) as { id: string; token: string; tokenExpiresAt: string };
      io.stdout.write(`${r.token}\n`);
      io.stderr.write(
        `principal ${r.id} created; the token above is shown only once and expires ${r.tokenExpiresAt}\n`,
      );
      return 0;
    }
    if (sub === 'revoke' && positional[0]) {
      const r = (await client.request('POST', `/v1/principals/${encodeURIComponent(positional[0])}/revoke`)) as {
        revoked: number;
      };
      io.stdout.write(`revoked ${r.revoked} token(s) of principal ${positional[0]}\n`);
      return 0;
    }
    if (sub === 'rotate' && positional[0]) {
      const r = (await client.request('POST', `/v1/principals/${encodeURIComponent(positional[0])}/rotate`)) as {
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
      return 0;
    }
    io.stderr.write(
      'usage: portcullis principal list | create NAME --roles admin,policy-author,approver,auditor [--groups sre,dba]\n'
        + '       | revoke PRINCIPAL_ID | rotate PRINCIPAL_ID\n',
    );
    return 2;
  });
