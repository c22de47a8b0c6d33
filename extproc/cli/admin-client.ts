/**
 * The CLI's client for the admin API. The server is PORTCULLIS_ADMIN_URL (default http://127.0.0.1:8081); the human's
 * bearer token is PORTCULLIS_TOKEN, or the file PORTCULLIS_TOKEN_FILE names, or else the `.portcullis/admin.token`
 * that `portcullis serve` writes on first start, looked for in the working directory and each directory above it
 * (as git finds .git), so the CLI works from anywhere inside the checkout that runs the service.
 * Every failure is a CliFailure whose message names the URL, file or value at fault.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EXIT } from './types.ts';

export interface AdminClient {
  baseUrl: string;
  request(method: string, path: string, body?: unknown): Promise<unknown>;
  /** For streamed endpoints (tail, export): the response, once its status is a success. */
  stream(path: string): Promise<Response>;
}

/** A failure the CLI reports as one line (already worded for the user) with its exit code. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

/** An error the admin API answered with: its status, its code and its details (e.g. a policy's problems). */
export class AdminClientError extends CliFailure {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly apiMessage: string,
    readonly details: unknown,
    where: string,
  ) {
    super(`error: ${code}: ${apiMessage} (${where} answered ${status})`);
  }
}

const DEFAULT_URL = 'http://127.0.0.1:8081';
const TOKEN_FILE = join('.portcullis', 'admin.token');

interface FoundToken {
  token: string | undefined;
  /** Where it came from, or where it was looked for: said when the server refuses the request. */
  source: string;
}

function findToken(env: NodeJS.ProcessEnv, cwd: string): FoundToken {
  if (env.PORTCULLIS_TOKEN) return { token: env.PORTCULLIS_TOKEN, source: 'PORTCULLIS_TOKEN' };
  if (env.PORTCULLIS_TOKEN_FILE) {
    const file = resolve(cwd, env.PORTCULLIS_TOKEN_FILE);
    return { token: readToken(file, 'PORTCULLIS_TOKEN_FILE'), source: `${file} (PORTCULLIS_TOKEN_FILE)` };
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, TOKEN_FILE);
    if (existsSync(file)) return { token: readToken(file, 'found above the working directory'), source: file };
    if (dirname(dir) === dir) break;
  }
  return {
    token: undefined,
    source: `no token: set PORTCULLIS_TOKEN or PORTCULLIS_TOKEN_FILE (no ${TOKEN_FILE} in ${resolve(cwd)} or above)`,
  };
}

function readToken(file: string, how: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliFailure(`error: cannot read the token file ${file} (${how}): ${(err as NodeJS.ErrnoException).code}`);
  }
  const token = text.trim();
  if (!token) throw new CliFailure(`error: the token file ${file} (${how}) is empty`);
  return token;
}

export function adminClient(env: NodeJS.ProcessEnv, cwd = process.cwd()): AdminClient {
  const baseUrl = (env.PORTCULLIS_ADMIN_URL ?? DEFAULT_URL).replace(/\/$/, '');
  if (!/^https?:\/\/[^/]/.test(baseUrl))
    throw new CliFailure(`error: PORTCULLIS_ADMIN_URL must be an http(s) URL, got "${baseUrl}"`);
  let found: FoundToken | undefined;
  const headers = (): Record<string, string> => {
    found ??= findToken(env, cwd);
    return found.token ? { authorization: `Bearer ${found.token}` } : {};
  };
  const send = async (method: string, path: string, init: RequestInit = {}): Promise<Response> => {
    const url = baseUrl + path;
    try {
      return await fetch(url, { method, ...init, headers: { ...headers(), ...(init.headers as object) } });
    } catch (err) {
      if (err instanceof CliFailure) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliFailure(
        `error: the admin API at ${baseUrl} is not reachable (${cause?.code ?? cause?.message ?? (err as Error).message}); is \`portcullis serve\` running? set PORTCULLIS_ADMIN_URL`,
      );
    }
  };
  const failure = async (res: Response, method: string, path: string): Promise<AdminClientError> => {
    const text = await res.text();
    let e: { code?: string; message?: string; details?: unknown } = {};
    try {
      e = JSON.parse(text) as typeof e;
    } catch {
      // not an API error body (a proxy's page, say): the status says enough
    }
    let message = e.message ?? res.statusText;
    if (res.status === 401) message += `; token from ${found?.source}`;
    return new AdminClientError(res.status, e.code ?? 'internal', message, e.details, `${method} ${baseUrl}${path}`);
  };
  return {
    baseUrl,
    async request(method, path, body) {
      const res = await send(method, path, {
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      if (!res.ok) throw await failure(res, method, path);
      const text = await res.text();
      return text ? JSON.parse(text) : null;
    },
    async stream(path) {
      const res = await send('GET', path);
      if (!res.ok) throw await failure(res, 'GET', path);
      if (!res.body) throw new CliFailure(`error: GET ${baseUrl}${path} answered ${res.status} with no body`);
      return res;
    },
  };
}
