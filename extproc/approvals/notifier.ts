/**
 * Webhook notifications of new approval requests and every change of one. notify() only queues: delivery happens in
 * the background, each URL retried with exponential backoff up to maxAttempts, so a slow or dead receiver never
 * delays an agent's action or an approver's call.
 */
import type { Logger } from 'pino';
import type { ApprovalNotification, ApprovalRequest, Notifier } from './types.ts';

export interface WebhookTarget {
  url: string;
  /** `json`: `{type, request}`. `slack`: a Slack incoming-webhook body `{text, blocks}`. */
  format: 'json' | 'slack';
}

export interface WebhookNotifierOptions {
  urls: WebhookTarget[];
  /** The admin API as humans reach it, for approve/deny links. */
  adminBaseUrl: string;
  maxAttempts?: number;
  /** First retry delay; doubles per attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  /** Deliveries waiting or in flight beyond this are dropped (and logged) rather than growing memory without bound. */
  maxQueued?: number;
  logger?: Logger;
}

export function createWebhookNotifier(opts: WebhookNotifierOptions): Notifier & { pending(): number } {
  const maxAttempts = opts.maxAttempts ?? 6;
  const baseDelay = opts.baseDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const maxQueued = opts.maxQueued ?? 10_000;
  const base = opts.adminBaseUrl.replace(/\/$/, '');
  const timers = new Set<NodeJS.Timeout>();
  const inflight = new Set<AbortController>();
  let queued = 0;
  let closed = false;

  const deliver = (target: WebhookTarget, body: string, n: ApprovalNotification, attempt: number): void => {
    const abort = new AbortController();
    inflight.add(abort);
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    fetch(target.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      })
      .then(
        () => {
          queued--;
        },
        (err: unknown) => {
          const ctx = { approval: n.request.id, type: n.type, webhook: redact(target.url), attempt, err: String(err) };
          if (closed || attempt >= maxAttempts) {
            queued--;
            if (!closed) opts.logger?.error(ctx, 'approval webhook gave up');
            return;
          }
          opts.logger?.warn(ctx, 'approval webhook failed; retrying');
          const delay = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
          const t = setTimeout(() => {
            timers.delete(t);
            deliver(target, body, n, attempt + 1);
          }, delay);
          t.unref();
          timers.add(t);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        inflight.delete(abort);
      });
  };

  return {
    notify(n) {
      if (closed) return;
      for (const target of opts.urls) {
        if (queued >= maxQueued) {
          opts.logger?.error(
            { approval: n.request.id, type: n.type, webhook: redact(target.url) },
            'approval webhook queue full; dropped',
          );
          continue;
        }
        queued++;
        const body = JSON.stringify(
          target.format === 'slack' ? slackBody(n, base) : { type: n.type, request: n.request },
        );
        deliver(target, body, n, 1);
      }
    },
    pending: () => queued,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const a of inflight) a.abort();
    },
  };
}

/** Webhook URLs often carry a secret in their path (Slack's do): log the origin only. */
function redact(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

const HEADLINE: Record<ApprovalNotification['type'], string> = {
  'approval.requested': 'Approval requested',
  'approval.approved': 'Approved',
  'approval.denied': 'Denied',
  'approval.expired': 'Expired',
  'approval.revoked': 'Revoked',
  'approval.consumed': 'Used (once grant consumed)',
  'approval.used': 'Used (window grant)',
};

/** Slack mrkdwn needs &, < and > escaped in free text. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function approvalLinks(
  req: ApprovalRequest,
  adminBaseUrl: string,
): { show: string; approve: string; deny: string } {
  const u = `${adminBaseUrl}/v1/approvals/${encodeURIComponent(req.id)}`;
  return { show: u, approve: `${u}/approve`, deny: `${u}/deny` };
}

/** A Slack incoming-webhook body: `text` (also the fallback) and Block Kit blocks with approve/deny links. */
export function slackBody(n: ApprovalNotification, adminBaseUrl: string): { text: string; blocks: unknown[] } {
  const r = n.request;
  const links = approvalLinks(r, adminBaseUrl);
  let headline = HEADLINE[n.type];
  if (n.type === 'approval.approved' && r.state === 'pending')
    headline = `Approval ${r.approvals.length} of ${r.minApprovals}`;
  const who =
    n.type === 'approval.denied' ? r.denial : n.type === 'approval.revoked' ? r.revocation : r.approvals.at(-1);
  const by =
    who && n.type !== 'approval.requested' && n.type !== 'approval.expired' && n.type !== 'approval.consumed'
      ? ` by ${esc(who.name || who.by)}${who.reason ? `: ${esc(who.reason)}` : ''}`
      : '';
  const detail =
    `agent \`${esc(r.agent)}\` on \`${esc(r.target)}\` (${r.protocol}), rule \`${esc(r.policy)}/${esc(r.rule)}\`, `
    + `group \`${esc(r.group)}\`, grant ${r.grant}, request \`${r.id}\``;
  const actions =
    r.state === 'pending'
      ? ` <${links.approve}|Approve> · <${links.deny}|Deny> · <${links.show}|Details>`
      : ` <${links.show}|Details>`;
  const text = `*${headline}*${by}: ${esc(r.summary)} — ${detail}.${actions}`;
  const effect = r.effect?.length ? `\n\`\`\`${esc(r.effect.join('\n'))}\`\`\`` : '';
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${headline}*${by}\n${esc(r.summary)}${effect}` } },
    {
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: detail + (r.state === 'pending' ? `, expires ${r.expiresAt}` : `, state ${r.state}`) },
      ],
    },
  ];
  if (r.state === 'pending') {
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Approve' },
          style: 'primary',
          url: links.approve,
          action_id: 'approve',
        },
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Deny' },
          style: 'danger',
          url: links.deny,
          action_id: 'deny',
        },
      ],
    });
  }
  return { text, blocks };
}
