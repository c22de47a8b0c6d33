/**
 * `portcullis token …`: agent tokens through the admin API. `issue` prints a token (or writes a kubeconfig for the
 * agent); `exec-credential` is a client-go credential plugin, so kubectl fetches a fresh token itself whenever the
 * last one expires (docs/cli.md, "kubectl with fresh tokens").
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { adminClient, CliFailure } from '../admin-client.ts';
import { printData } from '../output.ts';
import { EXIT, type CliIO, type CommandBuilder } from '../types.ts';
import { commaList } from './identity.ts';

interface IssueOptions {
  agent: string;
  target: string;
  ttl?: string;
  plan?: string;
}

interface Issued {
  token: string;
  jti: string;
  expiresAt: string;
}

async function issue(io: CliIO, opts: IssueOptions): Promise<Issued> {
  return (await adminClient(io.env).request('POST', '/v1/tokens', {
    agent: opts.agent,
    targets: commaList(opts.target),
    ...(opts.ttl ? { ttl: opts.ttl } : {}),
    ...(opts.plan ? { plan: opts.plan } : {}),
  })) as Issued;
}

const issueOptions = (cmd: Command): Command =>
  cmd
    .requiredOption('--agent <id>', 'the agent the token is for')
    .requiredOption('--target <names>', 'comma-separated targets the token admits')
    .option('--ttl <duration>', 'lifetime, e.g. 10m (default and maximum: the service config, tokens.*)')
    .option('--plan <text>', 'the task the agent declared (recorded with every action)');

interface KubeconfigOptions {
  kubeconfig?: string;
  server?: string;
  certificateAuthority?: string;
  exec?: boolean;
}

/** A kubeconfig for the agent: Envoy's Kubernetes listener as the cluster, the token (or the plugin) as the user. */
function kubeconfig(io: CliIO, opts: IssueOptions & KubeconfigOptions, issued: Issued | null): string {
  if (!opts.server)
    throw new CliFailure("error: --kubeconfig needs --server (the URL of Envoy's Kubernetes listener)", EXIT.usage);
  let ca: string | undefined;
  if (opts.certificateAuthority) {
    try {
      ca = readFileSync(opts.certificateAuthority).toString('base64');
    } catch (err) {
      throw new CliFailure(
        `error: cannot read the certificate authority file ${opts.certificateAuthority}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
  }
  const name = `portcullis-${opts.agent}`;
  // The plugin calls the admin API as whoever runs kubectl: it gets the address and a token *file*, never a token.
  const env = [
    { name: 'PORTCULLIS_ADMIN_URL', value: adminClient(io.env).baseUrl },
    ...(io.env.PORTCULLIS_TOKEN_FILE
      ? [{ name: 'PORTCULLIS_TOKEN_FILE', value: resolve(io.env.PORTCULLIS_TOKEN_FILE) }]
      : []),
  ];
  const user = issued
    ? { token: issued.token }
    : {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: 'portcullis',
          args: [
            'token',
            'exec-credential',
            '--agent',
            opts.agent,
            '--target',
            opts.target,
            ...(opts.ttl ? ['--ttl', opts.ttl] : []),
          ],
          env,
          interactiveMode: 'Never',
          provideClusterInfo: false,
        },
      };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: opts.server, ...(ca ? { 'certificate-authority-data': ca } : {}) } }],
    users: [{ name: opts.agent, user }],
    contexts: [{ name, context: { cluster: name, user: opts.agent } }],
    'current-context': name,
  });
}

export const tokenCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('token').description(
    'agent tokens: issue, show, revoke; kubeconfigs and kubectl credentials',
  );
  issueOptions(cmd.command('issue'))
    .description('issue an agent token: printed alone on stdout, or written into a kubeconfig with --kubeconfig')
    .option('--kubeconfig <file>', 'write a kubeconfig for the agent to FILE (mode 0600) instead of printing the token')
    .option('--server <url>', "with --kubeconfig: the URL of Envoy's Kubernetes listener")
    .option('--certificate-authority <file>', 'with --kubeconfig: CA certificate of that listener (PEM)')
    .option(
      '--exec',
      'with --kubeconfig: no token in the file; kubectl runs `portcullis token exec-credential` for fresh ones',
    )
    .action(
      run(async (opts: IssueOptions & KubeconfigOptions) => {
        if (!opts.kubeconfig) {
          const r = await issue(io, opts);
          // The token alone on stdout, so `TOKEN=$(portcullis token issue …)` works; its id and expiry on stderr.
          io.stdout.write(`${r.token}\n`);
          io.stderr.write(`token id ${r.jti}, expires ${r.expiresAt}\n`);
          return EXIT.ok;
        }
        const issued = opts.exec ? null : await issue(io, opts);
        const text = kubeconfig(io, opts, issued);
        try {
          writeFileSync(opts.kubeconfig, text, { mode: 0o600 });
        } catch (err) {
          throw new CliFailure(
            `error: cannot write the kubeconfig ${opts.kubeconfig}: ${(err as NodeJS.ErrnoException).code}`,
          );
        }
        io.stderr.write(
          `wrote ${opts.kubeconfig} for agent ${opts.agent}${issued ? ` (token id ${issued.jti}, expires ${issued.expiresAt})` : ' (kubectl fetches tokens with portcullis token exec-credential)'}\n`,
        );
        return EXIT.ok;
      }),
    );
  issueOptions(cmd.command('exec-credential'))
    .description('issue a token as a client-go ExecCredential (JSON): the kubectl credential plugin')
    .action(
      run(async (opts: IssueOptions) => {
        const r = await issue(io, opts);
        printData(io, 'json', {
          apiVersion: 'client.authentication.k8s.io/v1',
          kind: 'ExecCredential',
          status: { token: r.token, expirationTimestamp: new Date(r.expiresAt).toISOString().replace(/\.\d+Z$/, 'Z') },
        });
        return EXIT.ok;
      }),
    );
  cmd
    .command('show')
    .description('show a token by its id (jti)')
    .argument('<token-id>', 'the token id printed when it was issued')
    .action(
      run(async (id: string) => {
        printData(io, 'json', await adminClient(io.env).request('GET', `/v1/tokens/${encodeURIComponent(id)}`));
        return EXIT.ok;
      }),
    );
  cmd
    .command('revoke')
    .description('revoke a token at once, on every replica')
    .argument('<token-id>', 'the token id printed when it was issued')
    .action(
      run(async (id: string) => {
        await adminClient(io.env).request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
        io.stdout.write(`revoked ${id}\n`);
        return EXIT.ok;
      }),
    );
  return cmd;
};
