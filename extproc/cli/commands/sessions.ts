/**
 * `portcullis sessions list|show|verify|export|tail`: the auditor's side of session recording, over the admin API
 * (/v1/sessions).
 */
import { createWriteStream } from 'node:fs';
import { Command, Option } from 'commander';
import type { RecordingEvent, SessionSummary, VerifyResult } from '../../recording/index.ts';
import { adminClient, CliFailure } from '../admin-client.ts';
import { formatOf, jsonAlias, oneLine, outputOption, printData, printList, type OutputOptions } from '../output.ts';
import { positiveInt } from '../parse.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

export const EXIT_TAMPERED = EXIT.tampered;

const COLUMNS = [
  { header: 'ID', value: (s: SessionSummary) => s.id },
  { header: 'STARTED', value: (s: SessionSummary) => s.startedAt },
  { header: 'STATUS', value: (s: SessionSummary) => s.status + (s.truncated ? ' (truncated)' : '') },
  { header: 'AGENT', value: (s: SessionSummary) => s.agent },
  { header: 'TARGET', value: (s: SessionSummary) => s.target },
  { header: 'PROTOCOL', value: (s: SessionSummary) => s.protocol },
  { header: 'EVENTS', value: (s: SessionSummary) => String(s.events) },
  { header: 'DECISIONS', value: (s: SessionSummary) => s.decisions.join(',') },
];

interface ListOptions extends OutputOptions {
  agent?: string;
  target?: string;
  protocol?: string;
  from?: string;
  to?: string;
  decision?: string;
  q?: string;
  limit?: number;
  cursor?: string;
}

export const sessionsCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('sessions')
    .description('recorded sessions, for auditors')
    .addHelpText('after', '\nTIME is RFC 3339 (2025-01-31T12:00:00Z) or milliseconds since the epoch.');
  const path = (id: string, tail = ''): string => `/v1/sessions/${encodeURIComponent(id)}${tail}`;
  cmd
    .command('list')
    .description('list sessions, newest first')
    .option('--agent <id>', "only this agent's")
    .option('--target <name>', 'only for this target')
    .addOption(new Option('--protocol <protocol>', 'only this protocol').choices(['kubernetes', 'postgres', 'ssh']))
    .option('--from <time>', 'started at or after TIME')
    .option('--to <time>', 'started before TIME')
    .addOption(
      new Option('--decision <decision>', 'with at least one such decision').choices([
        'allow',
        'deny',
        'require_approval',
      ]),
    )
    .option('--q <text>', 'full-text search in the recorded actions')
    .option('--limit <n>', 'at most N per page', positiveInt('--limit'))
    .option('--cursor <cursor>', 'the next page, as printed after a full page')
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (opts: ListOptions) => {
        const q = new URLSearchParams();
        for (const k of ['agent', 'target', 'protocol', 'from', 'to', 'decision', 'q', 'limit', 'cursor'] as const)
          if (opts[k] !== undefined) q.set(k, String(opts[k]));
        const page = (await adminClient(io.env).request('GET', `/v1/sessions${q.size ? `?${q}` : ''}`)) as {
          sessions: SessionSummary[];
          nextCursor: string | null;
        };
        const format = formatOf(opts);
        printList(io, format, page, page.sessions, COLUMNS, 'no sessions');
        if (format === 'table' && page.nextCursor) io.stdout.write(`more: --cursor ${page.nextCursor}\n`);
        return EXIT.ok;
      }),
    );
  cmd
    .command('show')
    .description('the session and its events, in order')
    .argument('<id>', 'session id')
    .addOption(outputOption())
    .addOption(jsonAlias())
    .action(
      run(async (id: string, opts: OutputOptions) => {
        const c = adminClient(io.env);
        const s = (await c.request('GET', path(id))) as SessionSummary;
        const events: RecordingEvent[] = [];
        for (let from: number | null = 1; from !== null; ) {
          const page = (await c.request('GET', path(id, `/events?fromSeq=${from}&limit=5000`))) as {
            events: RecordingEvent[];
            nextSeq: number | null;
          };
          events.push(...page.events);
          from = page.nextSeq;
        }
        const format = formatOf(opts);
        if (format === 'table') io.stdout.write(details(s) + events.map(eventLine).join(''));
        else printData(io, format, { session: s, events });
        return EXIT.ok;
      }),
    );
  cmd
    .command('verify')
    .description(`check the recording's hash chain (exit 0 valid, ${EXIT.tampered} tampered)`)
    .argument('<id>', 'session id')
    .action(
      run(async (id: string) => {
        const r = (await adminClient(io.env).request('GET', path(id, '/verify'))) as VerifyResult;
        const end = r.anchored
          ? 'end anchored'
          : 'end NOT anchored: truncation by someone who also rewrote the metadata is not detected';
        if (r.valid) {
          io.stdout.write(`${id}: chain valid (${r.events} events, ${end})\n`);
          return EXIT.ok;
        }
        io.stdout.write(`${id}: chain BROKEN at seq ${r.firstBadSeq}: ${r.reason}\n`);
        return EXIT.tampered;
      }),
    );
  cmd
    .command('export')
    .description('export a recording')
    .argument('<id>', 'session id')
    .addOption(
      new Option('--format <format>', 'jsonl events or an asciicast v2 replay')
        .choices(['jsonl', 'asciicast'])
        .default('jsonl'),
    )
    .option('--out <file>', 'write to FILE instead of stdout')
    .action(
      run(async (id: string, opts: { format: string; out?: string }) => {
        const res = await adminClient(io.env).stream(path(id, `/export?format=${encodeURIComponent(opts.format)}`));
        const body = res.body as unknown as AsyncIterable<Uint8Array>;
        if (!opts.out) {
          for await (const chunk of body) {
            if (!io.stdout.write(chunk)) await new Promise((r) => io.stdout.once('drain', r));
          }
          return EXIT.ok;
        }
        const file = createWriteStream(opts.out);
        const failed = new Promise<never>((_, reject) =>
          file.once('error', (err: NodeJS.ErrnoException) =>
            reject(new CliFailure(`error: cannot write ${opts.out}: ${err.code ?? err.message}`)),
          ),
        );
        const copy = (async (): Promise<void> => {
          for await (const chunk of body) {
            if (!file.write(chunk))
              await new Promise<void>((r) => {
                file.once('drain', () => r());
              });
          }
          await new Promise<void>((r) => file.end(() => r()));
        })();
        await Promise.race([copy, failed]);
        io.stderr.write(`wrote ${opts.out}\n`);
        return EXIT.ok;
      }),
    );
  cmd
    .command('tail')
    .description('follow a session live until it ends')
    .argument('<id>', 'session id')
    .option('--from-seq <n>', 'start at event N', positiveInt('--from-seq'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .addOption(jsonAlias())
    .action(
      run(async (id: string, opts: OutputOptions & { fromSeq?: number }) => {
        const from = opts.fromSeq ? `?fromSeq=${opts.fromSeq}` : '';
        const res = await adminClient(io.env).stream(path(id, `/tail${from}`));
        const json = formatOf(opts) === 'json';
        for await (const line of lines(res.body as unknown as AsyncIterable<Uint8Array>)) {
          io.stdout.write(json ? `${line}\n` : eventLine(JSON.parse(line) as RecordingEvent));
        }
        return EXIT.ok;
      }),
    );
  return cmd;
};

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

/** A recorded value as text: strings as they are, nothing for an absent one, anything else as JSON. */
function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

/** What an action was, in one line: its statement, command or request. */
function actionSummary(d: RecordingEvent['data']): string {
  const sql = (d.sql as { text?: unknown } | undefined)?.text ?? d.sql ?? d.text ?? d.statement;
  if (sql) return oneLine(str(sql));
  if (d.command) return oneLine(`$ ${str(d.command)}`);
  if (d.method || d.path) return oneLine(`${str(d.method)} ${str(d.path)}`.trim());
  return oneLine(JSON.stringify(d));
}

function summarize(e: RecordingEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'action':
      return actionSummary(d);
    case 'decision': {
      const dry = d.dryRun === true ? ' [dry-run]' : '';
      // A statement recorded with its decision names the statement first.
      const request = d.request && typeof d.request === 'object' ? `${actionSummary(d.request as typeof d)} → ` : '';
      // …and its output last, when the recorder folded it into the decision.
      const output = d.output && typeof d.output === 'object' ? ` → output ${oneLine(JSON.stringify(d.output))}` : '';
      return `${request}${str(d.action)}${dry} rule=${str(d.rule) || '-'} policy=${str(d.policy) || '-'}@${str(d.policyVersion) || '-'}${d.message ? ` "${oneLine(str(d.message))}"` : ''}${output}`;
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
