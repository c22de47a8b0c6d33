/**
 * `portcullis approvals list|show|approve|deny|revoke`: the approver's side of just-in-time approval, over the admin
 * API (/v1/approvals).
 */
import { Command, Option } from 'commander';
import type { ApprovalRequest } from '../../approvals/index.ts';
import { adminClient } from '../admin-client.ts';
import { formatOf, jsonAlias, oneLine, outputOption, printData, printList, type OutputOptions } from '../output.ts';
import { positiveInt } from '../parse.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

const STATES = ['pending', 'approved', 'denied', 'expired', 'revoked', 'consumed', 'all'];
const COLUMNS = [
  { header: 'ID', value: (r: ApprovalRequest) => r.id },
  { header: 'STATE', value: (r: ApprovalRequest) => r.state },
  { header: 'AGENT', value: (r: ApprovalRequest) => r.agent },
  { header: 'TARGET', value: (r: ApprovalRequest) => r.target },
  { header: 'GROUP', value: (r: ApprovalRequest) => r.group },
  { header: 'GRANT', value: (r: ApprovalRequest) => r.grant },
  { header: 'VOTES', value: (r: ApprovalRequest) => `${r.approvals.length}/${r.minApprovals}` },
  {
    header: 'EXPIRES',
    value: (r: ApprovalRequest) => (r.state === 'approved' ? (r.grantExpiresAt ?? '') : r.expiresAt),
  },
  { header: 'SUMMARY', value: (r: ApprovalRequest) => oneLine(r.summary, 60) },
];

export const approvalsCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('approvals').description("just-in-time approval requests, from the approver's side");
  const path = (id: string, tail = ''): string => `/v1/approvals/${encodeURIComponent(id)}${tail}`;
  cmd
    .command('list')
    .description('list approval requests')
    .addOption(new Option('--state <state>', 'which requests').choices(STATES).default('pending'))
    .option('--agent <id>', "only this agent's")
    .option('--target <name>', 'only for this target')
    .option('--limit <n>', 'at most N', positiveInt('--limit'))
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (opts: OutputOptions & { state: string; agent?: string; target?: string; limit?: number }) => {
        const q = new URLSearchParams({ state: opts.state });
        if (opts.agent) q.set('agent', opts.agent);
        if (opts.target) q.set('target', opts.target);
        if (opts.limit) q.set('limit', String(opts.limit));
        const { items } = (await adminClient(io.env).request('GET', `/v1/approvals?${q}`)) as {
          items: ApprovalRequest[];
        };
        printList(io, formatOf(opts), items, items, COLUMNS, 'no approval requests');
        return EXIT.ok;
      }),
    );
  cmd
    .command('show')
    .description('show one request, its votes and its grant')
    .argument('<id>', 'request id (apr_…)')
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (id: string, opts: OutputOptions) => {
        const r = (await adminClient(io.env).request('GET', path(id))) as ApprovalRequest;
        const format = formatOf(opts);
        if (format === 'table') io.stdout.write(details(r));
        else printData(io, format, r);
        return EXIT.ok;
      }),
    );
  for (const [verb, what] of [
    ['approve', 'approve a request (counts toward its quorum)'],
    ['deny', 'deny a request'],
    ['revoke', "revoke an approved request's grant"],
  ] as const) {
    cmd
      .command(verb)
      .description(what)
      .argument('<id>', 'request id (apr_…)')
      .option('--reason <text>', 'recorded with the vote')
      .action(
        run(async (id: string, opts: { reason?: string }) => {
          const r = (await adminClient(io.env).request(
            'POST',
            path(id, `/${verb}`),
            opts.reason === undefined ? {} : { reason: opts.reason },
          )) as ApprovalRequest;
          const quorum =
            r.state === 'pending' && verb === 'approve'
              ? ` (${r.approvals.length} of ${r.minApprovals} approvals)`
              : '';
          io.stdout.write(`${r.id}: ${r.state}${quorum}\n`);
          return EXIT.ok;
        }),
      );
  }
  return cmd;
};

function details(r: ApprovalRequest): string {
  const lines = [
    `id:          ${r.id}`,
    `state:       ${r.state}`,
    `summary:     ${r.summary}`,
    `agent:       ${r.agent}${r.agentOwner ? ` (acting for ${r.agentOwner})` : ''}`,
    `target:      ${r.target} (${r.protocol})`,
    `session:     ${r.sessionId}`,
    `rule:        ${r.policy}${r.policyVersion === null ? '' : ` v${r.policyVersion}`} / ${r.rule}`,
    `group:       ${r.group} (${r.minApprovals} approval${r.minApprovals === 1 ? '' : 's'} needed)`,
    `grant:       ${r.grant}${r.grant === 'window' ? ` for ${r.windowSeconds}s` : ''}`,
    `fingerprint: ${r.fingerprint}`,
    `created:     ${r.createdAt}`,
    `expires:     ${r.expiresAt}`,
  ];
  if (r.effect?.length) lines.push('effect:', ...r.effect.map((l) => `  ${l}`));
  if (r.grantExpiresAt) lines.push(`grant ends:  ${r.grantExpiresAt}`);
  if (r.consumedAt) lines.push(`consumed:    ${r.consumedAt}`);
  for (const v of r.approvals)
    lines.push(`approved by: ${v.name || v.by} at ${v.at}${v.reason ? ` — ${v.reason}` : ''}`);
  if (r.denial)
    lines.push(
      `denied by:   ${r.denial.name || r.denial.by} at ${r.denial.at}${r.denial.reason ? ` — ${r.denial.reason}` : ''}`,
    );
  if (r.revocation)
    lines.push(
      `revoked by:  ${r.revocation.name || r.revocation.by} at ${r.revocation.at}${r.revocation.reason ? ` — ${r.revocation.reason}` : ''}`,
    );
  return `${lines.join('\n')}\n`;
}
