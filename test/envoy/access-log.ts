/**
 * The HCM's JSON access log as the stand-in writes it: each field's Envoy format string filled from what the stream
 * saw. The command operators the bootstrap uses are filled like Envoy fills them; any other is null (the stand-in does
 * not play it), and so is a value the stream did not have (Envoy's "-", which json_format writes as null).
 */
import { get, type HeaderList } from './header-mutation.ts';

export type AccessLogEntry = Record<string, string | number | null>;

export interface LoggedStream {
  startMs: number;
  endMs: number;
  /** Request headers as the filter chain first saw them (pseudo-headers included). */
  requestHeaders: HeaderList;
  status: number;
  /** Dynamic metadata by namespace (what the ext_proc filter accepted from the processor). */
  metadata: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

const OPERATOR = /^%([A-Z_]+)(?:\(([^)]*)\))?%$/;

function fill(format: string, s: LoggedStream): string | number | null {
  const m = OPERATOR.exec(format);
  if (!m) return format;
  const [, op, arg = ''] = m;
  switch (op) {
    case 'DYNAMIC_METADATA': {
      const [ns, key] = arg.split(':');
      return s.metadata.get(ns)?.[key] ?? null;
    }
    case 'REQ':
      return get(s.requestHeaders, arg.toLowerCase()) ?? null;
    case 'RESPONSE_CODE':
      return s.status;
    case 'START_TIME':
      return new Date(s.startMs).toISOString();
    case 'DURATION':
      return s.endMs - s.startMs;
    case 'PROTOCOL':
      return 'HTTP/1.1';
    default:
      return null;
  }
}

export function accessLogEntry(format: Readonly<Record<string, string>>, s: LoggedStream): AccessLogEntry {
  return Object.fromEntries(Object.entries(format).map(([field, f]) => [field, fill(f, s)]));
}
