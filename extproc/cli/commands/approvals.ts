/**
 * `portcullis approvals list|show|approve|deny|revoke`: the approver's side of just-in-time approval, over the admin
 * API (/v1/approvals).
 */
import type { ApprovalRequest } from '../../approvals/index.ts';
import { adminClient, parseFlags, withAdminErrors } from '../admin-client.ts';
import type { CliCommand, CliIO } from '../types.ts';

const USAGE = `usage:
  portcullis approvals list [--state pending|approved|denied|expired|revoked|consumed|all] [--agent A] [--target T] [--limit N] [--json]
  portcullis approvals show ID [--json]
  portcullis approvals approve ID [--reason R]
  portcullis approvals deny ID [--reason R]
  portcullis approvals revoke ID [--reason R]
`;

export const approvalsCommand: CliCommand = async (argv, io) => {
  const [sub, ...rest] = argv;
  const { flags, positional } = parseFlags(rest, ['json']);
  const json = flags.json === 'true';
  const client = (): ReturnType<typeof adminClient> => adminClient(io.env);

  switch (sub) {
    case 'list': {
      if (positional.length) return usage(io);
      const q = new URLSearchParams({ state: flags.state ?? 'pending' });
      for (const k of ['agent', 'target', 'limit']) if (flags[k]) q.set(k, flags[k]);
      return withAdminErrors(io, async () => {
        const { items } = (await client().request('GET', `/v1/approvals?${q}`)) as { items: ApprovalRequest[] };
        io.stdout.write(json ? `${JSON.stringify(items, null, 2)}\n` : table(items));
        return 0;
      });
    }
    case 'show': {
      if (positional.length !== 1) return usage(io);
      return withAdminErrors(io, async () => {
        const r = (await client().request(
          'GET',
          `/v1/approvals/${encodeURIComponent(positional[0])}`,
        )) as ApprovalRequest;
        io.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : details(r));
        return 0;
      });
    }
    case 'approve':
    case 'deny':
    case 'revoke': {
      if (positional.length !== 1) return usage(io);
      const body = flags.reason === undefined ? {} : { reason: flags.reason };
      return withAdminErrors(io, async () => {
        const r = (await client().request(
          'POST',
          `/v1/approvals/${encodeURIComponent(positional[0])}/${sub}`,
          body,
        )) as ApprovalRequest;
        const quorum =
          r.state === 'pending' && sub === 'approve' ? ` (${r.approvals.length} of ${r.minApprovals} approvals)` : '';
        io.stdout.write(`${r.id}: ${r.state}${quorum}\n`);
        return 0;
      });
    }
    default:
      return usage(io);
  }
};

function usage(io: CliIO): number {
  io.stderr.write(USAGE);
  return 2;
}

function table(items: ApprovalRequest[]): string {
  if (items.length === 0) return 'no approval requests\n';
  const rows = [['ID', 'STATE', 'AGENT', 'TARGET', 'GROUP', 'GRANT', 'VOTES', 'EXPIRES', 'SUMMARY']];
  for (const r of items) {
    rows.push([
      r.id,
      r.state,
      r.agent,
      r.target,
      r.group,
      r.grant,
      `${r.approvals.length}/${r.minApprovals}`,
      r.state === 'approved' ? (r.grantExpiresAt ?? '') : r.expiresAt,
      oneLine(r.summary, 60),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return `${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

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

function oneLine(s: string, max: number): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
