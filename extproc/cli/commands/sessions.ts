/**
 * `portcullis sessions list|show|verify|export|tail`: the auditor's side of session recording, over the admin API
 * (/v1/sessions).
 */
import { createWriteStream } from 'node:fs';
import type { RecordingEvent, SessionSummary, VerifyResult } from '../../recording/index.ts';
import { AdminClientError, adminClient, parseFlags, withAdminErrors } from '../admin-client.ts';
import type { CliCommand, CliIO } from '../types.ts';

const USAGE = `usage:
  portcullis sessions list [--agent A] [--target T] [--protocol kubernetes|postgres|ssh] [--from TIME] [--to TIME]
                           [--decision allow|deny|require_approval] [--q TEXT] [--limit N] [--cursor C] [--json]
  portcullis sessions show ID [--json]          the session and its events, in order
  portcullis sessions verify ID                 check the hash chain (exit 0 valid, 3 tampered)
  portcullis sessions export ID [--format jsonl|asciicast] [--out FILE]
  portcullis sessions tail ID [--from-seq N] [--json]   follow live until the session ends
TIME is RFC 3339 (2025-01-31T12:00:00Z) or milliseconds since the epoch.
`;

export const EXIT_TAMPERED = 3;

export const sessionsCommand: CliCommand = async (argv, io) => {
  const [sub, ...rest] = argv;
  const { flags, positional } = parseFlags(rest, ['json']);
  const json = flags.json === 'true';
  const client = (): ReturnType<typeof adminClient> => adminClient(io.env);
  const path = (id: string, tail = ''): string => `/v1/sessions/${encodeURIComponent(id)}${tail}`;

  switch (sub) {
    case 'list': {
      if (positional.length) return usage(io);
      const q = new URLSearchParams();
      for (const k of ['agent', 'target', 'protocol', 'from', 'to', 'decision', 'q', 'limit', 'cursor'])
        if (flags[k]) q.set(k, flags[k]);
      return withAdminErrors(io, async () => {
        const page = (await client().request('GET', `/v1/sessions${q.size ? `?${q}` : ''}`)) as {
          sessions: SessionSummary[];
          nextCursor: string | null;
        };
        if (json) io.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        else {
          io.stdout.write(table(page.sessions));
          if (page.nextCursor) io.stdout.write(`more: --cursor ${page.nextCursor}\n`);
        }
        return 0;
      });
    }
    case 'show': {
      if (positional.length !== 1) return usage(io);
      return withAdminErrors(io, async () => {
        const c = client();
        const s = (await c.request('GET', path(positional[0]))) as SessionSummary;
        const events: RecordingEvent[] = [];
        for (let from: number | null = 1; from !== null; ) {
          const page = (await c.request('GET', path(positional[0], `/events?fromSeq=${from}&limit=5000`))) as {
            events: RecordingEvent[];
            nextSeq: number | null;
          };
          events.push(...page.events);
          from = page.nextSeq;
        }
        if (json) io.stdout.write(`${JSON.stringify({ session: s, events }, null, 2)}\n`);
        else io.stdout.write(details(s) + events.map(eventLine).join(''));
        return 0;
      });
    }
    case 'verify': {
      if (positional.length !== 1) return usage(io);
      return withAdminErrors(io, async () => {
        const r = (await client().request('GET', path(positional[0], '/verify'))) as VerifyResult;
        const end = r.anchored
          ? 'end anchored'
          : 'end NOT anchored: truncation by someone who also rewrote the metadata is not detected';
        if (r.valid) {
          io.stdout.write(`${positional[0]}: chain valid (${r.events} events, ${end})\n`);
          return 0;
        }
        io.stdout.write(`${positional[0]}: chain BROKEN at seq ${r.firstBadSeq}: ${r.reason}\n`);
        return EXIT_TAMPERED;
      });
    }
    case 'export': {
      if (positional.length !== 1) return usage(io);
      const format = flags.format ?? 'jsonl';
      return withAdminErrors(io, async () => {
        const res = await streamed(client(), path(positional[0], `/export?format=${encodeURIComponent(format)}`));
        const body = res.body as unknown as AsyncIterable<Uint8Array>;
        if (!flags.out) {
          for await (const chunk of body) {
            if (!io.stdout.write(chunk)) await new Promise((r) => io.stdout.once('drain', r));
          }
          return 0;
        }
        const file = createWriteStream(flags.out);
        for await (const chunk of body) {
          if (!file.write(chunk))
            await new Promise<void>((r) => {
              file.once('drain', () => r());
            });
        }
        await new Promise<void>((resolve, reject) => {
          file.once('error', reject);
          file.end(() => resolve());
        });
        io.stderr.write(`wrote ${flags.out}\n`);
        return 0;
      });
    }
    case 'tail': {
      if (positional.length !== 1) return usage(io);
      const from = flags['from-seq'] ? `?fromSeq=${encodeURIComponent(flags['from-seq'])}` : '';
      return withAdminErrors(io, async () => {
        const res = await streamed(client(), path(positional[0], `/tail${from}`));
        for await (const line of lines(res.body as unknown as AsyncIterable<Uint8Array>)) {
          io.stdout.write(json ? `${line}\n` : eventLine(JSON.parse(line) as RecordingEvent));
        }
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

async function streamed(c: ReturnType<typeof adminClient>, p: string): Promise<Response> {
  const res = await c.fetch('GET', p);
  if (!res.ok) {
    const text = await res.text();
    let e: { code?: string; message?: string; details?: unknown } = {};
    try {
      e = JSON.parse(text) as typeof e;
    } catch {
      /* not an API error body */
    }
    throw new AdminClientError(res.status, e.code ?? 'internal', e.message ?? res.statusText, e.details);
  }
  if (!res.body) throw new AdminClientError(res.status, 'internal', 'empty reply', null);
  return res;
}

async function* lines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buf.trim()) yield buf;
}

function table(sessions: SessionSummary[]): string {
  if (sessions.length === 0) return 'no sessions\n';
  const rows = [['ID', 'STARTED', 'STATUS', 'AGENT', 'TARGET', 'PROTOCOL', 'EVENTS', 'DECISIONS']];
  for (const s of sessions) {
    rows.push([
      s.id,
      s.startedAt,
      s.status + (s.truncated ? ' (truncated)' : ''),
      s.agent,
      s.target,
      s.protocol,
      String(s.events),
      s.decisions.join(','),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return `${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

function details(s: SessionSummary): string {
  return `${[
    `session   ${s.id}`,
    `agent     ${s.agent}`,
    `target    ${s.target} (${s.protocol})`,
    `status    ${s.status}${s.truncated ? ', truncated' : ''}`,
    `started   ${s.startedAt}`,
    `ended     ${s.endedAt ?? '-'}`,
    `events    ${s.events}`,
    `decisions ${s.decisions.join(', ') || '-'}`,
    '',
  ].join('\n')}\n`;
}

/** One line per event: `#seq time type summary`. */
export function eventLine(e: RecordingEvent): string {
  return `#${e.seq} ${e.time} ${e.type.padEnd(18)} ${summarize(e)}\n`;
}

function summarize(e: RecordingEvent): string {
  const d = e.data;
  const str = (v: unknown): string =>
    typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
  switch (e.type) {
    case 'action': {
      const sql = (d.sql as { text?: unknown } | undefined)?.text ?? d.sql ?? d.text;
      if (sql) return oneLine(str(sql));
      if (d.command) return oneLine(`$ ${str(d.command)}`);
      if (d.method || d.path) return oneLine(`${str(d.method)} ${str(d.path)}`.trim());
      return oneLine(JSON.stringify(d));
    }
    case 'decision': {
      const dry = d.dryRun === true ? ' [dry-run]' : '';
      return `${str(d.action)}${dry} rule=${str(d.rule) || '-'} policy=${str(d.policy) || '-'}@${str(d.policyVersion) || '-'}${d.message ? ` "${oneLine(str(d.message))}"` : ''}`;
    }
    case 'output':
      return (
        oneLine(d.text !== undefined ? `${str(d.stream) || 'out'}: ${str(d.text)}` : JSON.stringify(d))
        + (d.truncated ? ' [truncated]' : '')
      );
    default:
      return oneLine(JSON.stringify(d));
  }
}

function oneLine(s: string, max = 160): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
