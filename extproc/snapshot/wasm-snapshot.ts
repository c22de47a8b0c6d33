/**
 * The policy snapshot the proxy-wasm filter enforces without CEL, and its wire text. The filter (AssemblyScript, no
 * allocation) reads line-based text, so this module is the one place that writes it; wasm-filter/assembly/filter/
 * snapshot.ts is the one place that reads it.
 */

/** A request the filter refuses with a Kubernetes Status, whatever else the request carries. */
export interface StaticDenyRule {
  /** 401 or 403: the HTTP status (Unauthorized / Forbidden) the API server itself would use. */
  code: 401 | 403;
  /** An HTTP method, or `*` for any. */
  method: string;
  /** An absolute path; `*` stands for exactly one non-empty segment. Compared with the path before `?`. */
  pattern: string;
  /** What kubectl prints after `Error from server (Forbidden):`. */
  message: string;
}

export type FilterStrategy = 'redact' | 'mask' | 'partial';

export interface StreamMasking {
  /** Entity id of the masking core, 0..31 (bit i of its entity mask; extproc/masking/types.ts BUILTIN_ENTITIES). */
  entity: number;
  strategy: FilterStrategy;
  keep: number;
}

export interface WasmSnapshot {
  /** Changes whenever the snapshot's content does (the filter logs it; admins compare it). */
  version: string;
  /** Refuse requests without a bearer token shaped like an agent token (401). */
  tokenRequired: boolean;
  /** Token ids (`jti`) refused with 401 before ext_proc is asked. */
  revokedTokenIds: string[];
  denies: StaticDenyRule[];
  masking: StreamMasking[];
}

export const SNAPSHOT_MAGIC = 'portcullis-wasm-snapshot 1';
/** The filter's limits (wasm-filter/assembly/filter/snapshot.ts): a snapshot over them is refused whole. */
export const SNAPSHOT_LIMITS = { bytes: 64 * 1024, revokedTokenIds: 1024, denies: 128 } as const;
const TOKEN_LIKE = /^[A-Za-z0-9._-]{1,128}$/;
const PATTERN = /^\/[!-~]*$/;
const METHOD = /^(\*|[A-Z]{1,16})$/;

export class SnapshotError extends Error {}

/** A message as one line of printable text (the filter JSON-escapes it); control characters become blanks. */
function oneLine(message: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is being replaced
  const flat = message.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return Buffer.byteLength(flat) > 1024 ? `${flat.slice(0, 1000)}…` : flat;
}

/** The snapshot as the filter reads it. Throws SnapshotError on a value the format cannot carry. */
export function renderSnapshot(s: WasmSnapshot): string {
  if (!TOKEN_LIKE.test(s.version)) throw new SnapshotError(`snapshot version ${JSON.stringify(s.version)}`);
  const lines = [SNAPSHOT_MAGIC, `version ${s.version}`];
  if (s.tokenRequired) lines.push('token-required');
  for (const jti of s.revokedTokenIds) {
    if (!TOKEN_LIKE.test(jti)) throw new SnapshotError(`revoked token id ${JSON.stringify(jti)}`);
    lines.push(`revoked ${jti}`);
  }
  for (const d of s.denies) {
    if (!METHOD.test(d.method) || !PATTERN.test(d.pattern) || (d.code !== 401 && d.code !== 403))
      throw new SnapshotError(`deny rule ${JSON.stringify(d)}`);
    const message = oneLine(d.message) || 'denied by policy';
    lines.push(`deny ${d.code} ${d.method} ${d.pattern} ${message}`);
  }
  for (const m of s.masking) {
    if (!Number.isInteger(m.entity) || m.entity < 0 || m.entity > 31 || !Number.isInteger(m.keep) || m.keep < 0)
      throw new SnapshotError(`masking ${JSON.stringify(m)}`);
    lines.push(`mask ${m.entity} ${m.strategy} ${Math.min(m.keep, 64)}`);
  }
  lines.push('end', '');
  const text = lines.join('\n');
  if (Buffer.byteLength(text) > SNAPSHOT_LIMITS.bytes) throw new SnapshotError('snapshot over 64 KiB');
  return text;
}

/** Where the filter fetches a fresh snapshot, and with which credential (plugin configuration `refresh-*`). */
export interface RefreshSettings {
  cluster: string;
  authority: string;
  path: string;
  /** The admin API credential (a principal token with the auditor role), or the VM environment variable holding it. */
  token: { value: string } | { env: string };
  periodMs: number;
  timeoutMs?: number;
  /** Where refused requests are reported (same cluster and credential), and the target the listener fronts. */
  report?: { path: string; target: string };
}

/** The filter's plugin configuration: refresh settings and, optionally, the snapshot to start with. */
export function renderPluginConfiguration(refresh: RefreshSettings | undefined, snapshot?: WasmSnapshot): string {
  const lines: string[] = [];
  if (refresh) {
    lines.push(
      `refresh-cluster ${refresh.cluster}`,
      `refresh-authority ${refresh.authority}`,
      `refresh-path ${refresh.path}`,
      'value' in refresh.token ? `refresh-token ${refresh.token.value}` : `refresh-token-env ${refresh.token.env}`,
      `refresh-period-ms ${refresh.periodMs}`,
    );
    if (refresh.timeoutMs) lines.push(`refresh-timeout-ms ${refresh.timeoutMs}`);
    if (refresh.report) lines.push(`report-path ${refresh.report.path}`, `report-target ${refresh.report.target}`);
  }
  return `${lines.map((l) => `${l}\n`).join('')}${snapshot ? renderSnapshot(snapshot) : ''}`;
}
