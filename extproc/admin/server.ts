/**
 * The admin HTTP server: one place that authenticates every call, checks the route's roles, parses JSON (with a size
 * cap) and turns errors into `{code, message, details}`. Concerns contribute routes (route.ts); nothing else here
 * knows what a policy or a session is.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { Logger } from 'pino';
import type { Principal } from '../identity/principal.ts';
import { AdminError, isStoreUnavailable, STORE_UNAVAILABLE_MESSAGE } from './errors.ts';
import type { AdminReply, AdminRoute } from './route.ts';
import { buildOpenApi } from './openapi.ts';

export type Authenticate = (bearer: string | undefined) => Promise<Principal>;

export interface AdminServerOptions {
  routes: AdminRoute[];
  authenticate: Authenticate;
  host?: string;
  port?: number;
  logger?: Logger;
  /** Largest JSON body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Deepest nesting of arrays and objects accepted in a JSON body (default 64). */
  maxJsonDepth?: number;
}

export interface AdminServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface CompiledRoute {
  route: AdminRoute;
  pattern: RegExp;
  names: string[];
  validateBody: ValidateFunction | null;
}

const ajv = new Ajv2020({ allErrors: true, strict: false });

function compileRoute(route: AdminRoute): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return {
    route,
    pattern: new RegExp(`^${source}$`),
    names,
    validateBody: route.request ? ajv.compile(route.request) : null,
  };
}

function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new AdminError('unauthenticated', 'the Authorization header must be "Bearer <token>"');
  return m[1];
}

/**
 * The deepest nesting of arrays and objects in a JSON text, stopping as soon as it passes `limit`. Checked before
 * parsing: a body nested thousands deep parses, but then overflows the stack of whatever walks it (schema
 * validation, policy evaluation), which would be a 500 instead of a 400.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** A path segment, percent-decoded; malformed escapes are the caller's mistake, not a server fault. */
function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new AdminError('invalid_request', `path parameter "${name}" is not valid percent-encoding`, {
      parameter: name,
    });
  }
}

async function readJson(req: IncomingMessage, limit: number, maxDepth: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new AdminError('invalid_request', `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new AdminError('invalid_request', `request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\b/i.test(type)) {
    throw new AdminError('invalid_request', 'request bodies must be application/json');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (jsonDepthExceeds(text, maxDepth)) {
    throw new AdminError('invalid_request', `request body nests deeper than ${maxDepth} levels`, {
      maxDepth,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AdminError('invalid_request', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

async function sendReply(res: ServerResponse, reply: AdminReply, signal: AbortSignal): Promise<void> {
  if (!('stream' in reply)) {
    sendJson(res, reply.status ?? 200, reply.body);
    return;
  }
  const headers: Record<string, string> = { 'content-type': reply.contentType, 'cache-control': 'no-store' };
  if (reply.filename) headers['content-disposition'] = `attachment; filename="${reply.filename}"`;
  res.writeHead(reply.status ?? 200, headers);
  for await (const chunk of reply.stream) {
    if (signal.aborted) break;
    if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
  }
  res.end();
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const compiled = opts.routes.map(compileRoute);
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const maxDepth = opts.maxJsonDepth ?? 64;
  const openapi = buildOpenApi(opts.routes);

  const handle = async (req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    // Authenticate before routing so an unauthenticated caller learns nothing about which paths exist.
    const principal = await opts.authenticate(bearerOf(req));
    if (req.method === 'GET' && url.pathname === '/openapi.json') {
      sendJson(res, 200, openapi);
      return;
    }
    let pathMatched = false;
    for (const c of compiled) {
      const m = c.pattern.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (c.route.method !== req.method) continue;
      if (!c.route.roles.some((r) => principal.roles.includes(r))) {
        throw new AdminError(
          'forbidden',
          `${c.route.method} ${c.route.path} requires one of the roles: ${c.route.roles.join(', ')}`,
        );
      }
      const params: Record<string, string> = {};
      c.names.forEach((n, i) => {
        params[n] = decodeParam(n, m[i + 1]);
      });
      const body = await readJson(req, maxBody, maxDepth);
      if (c.validateBody && !c.validateBody(body ?? {})) {
        const problems = (c.validateBody.errors ?? []).map((e) => `${e.instancePath || 'body'} ${e.message}`);
        throw new AdminError('invalid_request', `invalid request body: ${problems.join('; ')}`, { problems });
      }
      const reply = await c.route.handler({ principal, params, query: url.searchParams, body, signal, raw: req });
      await sendReply(res, reply, signal);
      return;
    }
    if (pathMatched) throw new AdminError('invalid_request', `method ${req.method} is not allowed on ${url.pathname}`);
    throw new AdminError('not_found', `no such endpoint: ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    handle(req, res, abort.signal).catch((err: unknown) => {
      const path = req.url?.split('?')[0];
      let e: AdminError;
      if (err instanceof AdminError) e = err;
      else if (isStoreUnavailable(err)) {
        // Not a fault of this service or of the caller: Redis is away (or too slow). The caller should retry.
        e = new AdminError('unavailable', STORE_UNAVAILABLE_MESSAGE);
        opts.logger?.warn({ err: (err as Error).message, path }, 'admin request: the store is unreachable');
      } else {
        e = new AdminError('internal', 'internal error');
        opts.logger?.error({ err, path }, 'admin request failed');
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Redis reconnects within a second or so (the service's retry strategy); say when trying again is worthwhile.
      sendJson(res, e.status, e.toJSON(), e.code === 'unavailable' ? { 'retry-after': '1' } : {});
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
