/** `-o table|json|yaml` for every list, and the aligned tables the CLI prints. */
import { Option } from 'commander';
import { stringify } from 'yaml';
import type { CliIO } from './types.ts';

export type OutputFormat = 'table' | 'json' | 'yaml';

export interface OutputOptions {
  output: OutputFormat;
  /** The older spelling of `-o json`, kept for scripts written against it. */
  json?: boolean;
}

export const outputOption = (): Option =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table');
export const jsonAlias = (): Option => new Option('--json', 'same as -o json').hideHelp();

export function formatOf(opts: OutputOptions): OutputFormat {
  return opts.json ? 'json' : opts.output;
}

export interface Column<T> {
  header: string;
  value(row: T): string;
}

/** Prints `data` as JSON or YAML, or, for a table, the rows of `items` under `columns` (`empty` when there are none). */
export function printList<T>(
  io: CliIO,
  format: OutputFormat,
  data: unknown,
  items: readonly T[],
  columns: readonly Column<T>[],
  empty: string,
): void {
  if (format !== 'table') {
    printData(io, format, data);
    return;
  }
  if (items.length === 0) {
    io.stdout.write(`${empty}\n`);
    return;
  }
  io.stdout.write(table([columns.map((c) => c.header), ...items.map((r) => columns.map((c) => c.value(r)))]));
}

export function printData(io: CliIO, format: Exclude<OutputFormat, 'table'>, data: unknown): void {
  io.stdout.write(format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : stringify(data));
}

/** Columns padded to their widest cell (the last one not padded), two spaces apart. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return `${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

export function oneLine(s: string, max = 160): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
