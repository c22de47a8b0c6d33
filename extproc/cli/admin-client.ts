/**
 * The CLI's client for the admin API. The server address and the human's bearer token come from
 * PORTCULLIS_ADMIN_URL (default http://127.0.0.1:8081) and PORTCULLIS_TOKEN, or from PORTCULLIS_TOKEN_FILE
 * (default .portcullis/admin.token, which `portcullis serve` writes on first start).
 */
import { readFileSync } from 'node:fs';
import type { CliIO } from './types.ts';

export interface AdminClient {
  baseUrl: string;
  request(method: string, path: string, body?: unknown): Promise<unknown>;
  /** For streamed endpoints (tail, export): the raw response. */
  fetch(method: string, path: string): Promise<Response>;
}

export class AdminClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

export function adminClient(env: NodeJS.ProcessEnv): AdminClient {
  const baseUrl = (env.PORTCULLIS_ADMIN_URL ?? 'http://127.0.0.1:8081').replace(/\/$/, '');
  const token = env.PORTCULLIS_TOKEN ?? readTokenFile(env.PORTCULLIS_TOKEN_FILE ?? '.portcullis/admin.token');
  const headers = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
  return {
    baseUrl,
    async fetch(method, path) {
      return fetch(baseUrl + path, { method, headers: headers() });
    },
    async request(method, path, body) {
      const res = await fetch(baseUrl + path, {
        method,
        headers: { ...headers(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const parsed: unknown = text ? JSON.parse(text) : null;
      if (!res.ok) {
        const e = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
        throw new AdminClientError(res.status, e.code ?? 'internal', e.message ?? res.statusText, e.details);
      }
      return parsed;
    },
  };
}

function readTokenFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Runs a CLI action that calls the admin API, printing AdminClientErrors as `error: <code>: <message>`. */
export async function withAdminErrors(io: CliIO, action: () => Promise<number>): Promise<number> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof AdminClientError) {
      io.stderr.write(`error: ${err.code}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof TypeError && String(err.message).includes('fetch failed')) {
      io.stderr.write(
        'error: the admin API is not reachable (is `portcullis serve` running? set PORTCULLIS_ADMIN_URL)\n',
      );
      return 1;
    }
    throw err;
  }
}

/** A command line that does not parse; the dispatcher prints it and exits 2. */
export class UsageError extends Error {}

/** Parses `--flag value` and `--flag=value` pairs and positional arguments. Booleans are `--flag` alone. */
export function parseFlags(
  argv: string[],
  booleans: readonly string[] = [],
): { flags: Record<string, string>; positional: string[] } {
  const flags: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      flags[a.slice(2, eq)] = a.slice(eq + 1);
      continue;
    }
    const name = a.slice(2);
    if (booleans.includes(name)) {
      flags[name] = 'true';
      continue;
    }
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = v;
    i++;
  }
  return { flags, positional };
}
