/**
 * A Kubernetes API server stand-in (test code only) that the real kubectl works against: discovery, Tables, watches,
 * followed logs, the scale subresource, TokenRequest, and errors as real `Status` objects. It records every request and
 * every Authorization header it sees, so a test can assert what the upstream was (and was not) shown.
 *
 * Programmed by the request (docs/architecture.md, "How we test"): a request carrying `x-standin-forbid-authorization: <substring>` is
 * answered 400 when its Authorization header contains that substring — so one table row can state "the upstream must
 * never see the agent's token" and the failure shows where it happened.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { rmSync } from 'node:fs';
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersionOf,
  apiVersions,
  findResource,
  versionInfo,
  type ResourceDef,
} from './discovery.ts';
import { ObjectStore, type KubeObject, type WatchEvent } from './objects.ts';
import { jsonPatch, mergePatch, PatchError } from './patching.ts';
import { decodeProtobufObject } from './protobuf.ts';
import { alreadyExists, failure, notFound, success, type KubeStatus } from './status.ts';
import { toTable, wantsTable, type IncludeObject } from './tables.ts';
import { makeSelfSignedCert } from './tls.ts';

export interface KubeApiServerOptions {
  /** Serve HTTPS with a fresh self-signed certificate (default true; kubectl sends tokens only over TLS). */
  tls?: boolean;
  /** The bearer token every request must carry (besides tokenRequestToken and minted tokens). */
  expectedToken?: string;
  /** The long-lived credential allowed to call TokenRequest; tokens it mints become acceptable bearer tokens. */
  tokenRequestToken?: string;
  /** Lines written by `logs?follow=true` before the server ends the stream (default 10). */
  logFollowLines?: number;
  /** Milliseconds between followed log lines (default 100). */
  logIntervalMs?: number;
  /**
   * Write each watch event in two chunks (two HTTP/1.1 chunks, which a proxy's parser delivers as two body callbacks
   * however TCP coalesces them), split at the index this returns for the event's line (e.g. mid-value), the second a
   * few milliseconds later. Default: one write per event.
   */
  watchSplitAt?: (line: string) => number;
}

export interface SeenRequest {
  method: string;
  /** The raw request target, query included. */
  path: string;
  authorization?: string;
  contentType?: string;
  accept?: string;
  upgrade?: string;
  contentEncoding?: string;
  /** The request body as UTF-8 text, when there was one and it was UTF-8. */
  body?: string;
  /** The request body in base64 when it was not UTF-8 (kubectl sends protobuf for some typed commands). */
  bodyBase64?: string;
}

export interface KubeApiServer {
  url: string;
  port: number;
  /** PEM of the self-signed certificate (its own CA); "" without TLS. */
  caPem: string;
  caPath: string;
  seenAuthorizations: string[];
  requests: SeenRequest[];
  /** Tokens minted by TokenRequest, newest last. */
  mintedTokens: string[];
  store: ObjectStore;
  close(): Promise<void>;
}

const MAX_BODY = 3 * 1024 * 1024;

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const tls = opts.tls ?? true;
  const cert = tls ? makeSelfSignedCert() : undefined;
  const store = new ObjectStore();
  const seenAuthorizations: string[] = [];
  const requests: SeenRequest[] = [];
  const minted = new Map<string, number>();
  const mintedTokens: string[] = [];
  const sockets = new Set<Socket>();
  const followLines = opts.logFollowLines ?? 10;
  const interval = opts.logIntervalMs ?? 100;
  let serverAddress = '127.0.0.1:0';

  const authRequired = opts.expectedToken !== undefined || opts.tokenRequestToken !== undefined;
  const bearerOf = (req: IncomingMessage): string | undefined => {
    const h = req.headers.authorization;
    return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (!authRequired) return true;
    const t = bearerOf(req);
    if (t === undefined) return false;
    if (t === opts.expectedToken || t === opts.tokenRequestToken) return true;
    const exp = minted.get(t);
    return exp !== undefined && exp > Date.now();
  };
  const record = (req: IncomingMessage): SeenRequest => {
    const r: SeenRequest = { method: req.method ?? '', path: req.url ?? '' };
    if (req.headers.authorization !== undefined) {
      r.authorization = req.headers.authorization;
      seenAuthorizations.push(req.headers.authorization);
    }
    if (req.headers['content-type'] !== undefined) r.contentType = req.headers['content-type'];
    if (req.headers.accept !== undefined) r.accept = req.headers.accept;
    if (req.headers.upgrade !== undefined) r.upgrade = req.headers.upgrade;
    if (req.headers['content-encoding'] !== undefined) r.contentEncoding = req.headers['content-encoding'];
    requests.push(r);
    return r;
  };
  /** A programmed-expectation violation, or undefined. */
  const violation = (req: IncomingMessage): KubeStatus | undefined => {
    const forbid = req.headers['x-standin-forbid-authorization'];
    if (typeof forbid === 'string' && forbid !== '' && (req.headers.authorization ?? '').includes(forbid)) {
      return failure(
        400,
        'BadRequest',
        'stand-in: the upstream saw an Authorization header it was told must never arrive',
      );
    }
    return undefined;
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const seen = record(req);
    const bad = violation(req);
    if (bad) return sendJson(res, bad.code, bad);
    if (!authorized(req)) return sendJson(res, 401, failure(401, 'Unauthorized', 'Unauthorized'));
    readBody(req).then(
      (body) => {
        if (body === undefined) return sendJson(res, 413, failure(413, 'BadRequest', 'request entity too large'));
        if (body.length > 0) {
          try {
            seen.body = new TextDecoder('utf-8', { fatal: true }).decode(body);
          } catch {
            seen.bodyBase64 = body.toString('base64');
          }
        }
        route(req, res, body);
      },
      () => res.destroy(),
    );
  };

  const route = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const url = new URL(req.url ?? '/', 'https://standin');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;
    // Programmed by the request: a dry run whose body names this marker fails as an overloaded API server's would.
    if (isDryRun(q) && body.includes('standin-fail-dry-run'))
      return sendJson(res, 503, failure(503, 'ServiceUnavailable', 'the stand-in was told to fail this dry run'));

    const discovery = discoveryDoc(path);
    if (discovery !== undefined) {
      if (method !== 'GET' && method !== 'HEAD')
        return sendJson(
          res,
          405,
          failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'),
        );
      return sendJson(res, 200, discovery);
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.+)$/.exec(path);
    if (!m) return sendJson(res, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
    const group = m[1] ? '' : m[2];
    const version = m[1] ?? m[3];
    let parts = m[4].split('/');
    let namespace = '';
    if (parts[0] === 'namespaces' && parts.length > 2 && parts[2] !== 'status' && parts[2] !== 'finalize') {
      namespace = parts[1];
      parts = parts.slice(2);
    }
    const [resource, name = '', sub = ''] = parts;
    const def = findResource(group, version, resource);
    if (!def || parts.length > 3)
      return sendJson(res, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
    if (def.resource === 'namespaces' && name !== '') namespace = '';
    if (def.namespaced && method === 'POST' && name === '' && !store.get(nsDef, '', namespace)) {
      return sendJson(res, 404, notFound('namespaces', '', namespace));
    }
    try {
      if (sub !== '') return subresource(req, res, def, namespace, name, sub, body, q);
      if (name === '') return collection(req, res, def, namespace, body, q);
      return item(req, res, def, namespace, name, body, q);
    } catch (err) {
      if (err instanceof BadRequest) return sendJson(res, 400, failure(400, 'BadRequest', err.message));
      if (err instanceof PatchError) return sendJson(res, 422, failure(422, 'Invalid', err.message));
      throw err;
    }
  };

  const nsDef = findResource('', 'v1', 'namespaces')!;

  const discoveryDoc = (path: string): object | undefined => {
    switch (path) {
      case '/version':
        return versionInfo();
      case '/api':
        return apiVersions(serverAddress);
      case '/apis':
        return apiGroupList();
      case '/api/v1':
        return apiResourceList('v1');
      default: {
        const g = /^\/apis\/([^/]+)$/.exec(path);
        if (g) return apiGroup(g[1]);
        const gv = /^\/apis\/([^/]+\/[^/]+)$/.exec(path);
        if (gv) return apiResourceList(gv[1]);
        return undefined;
      }
    }
  };

  const render = (
    req: IncomingMessage,
    def: ResourceDef,
    objects: KubeObject[],
    q: URLSearchParams,
    single?: KubeObject,
  ): object => {
    if (wantsTable(req.headers.accept)) return toTable(def, objects, store.resourceVersion(), includeObject(q));
    if (single) return single;
    return {
      kind: `${def.kind}List`,
      apiVersion: apiVersionOf(def),
      metadata: { resourceVersion: store.resourceVersion() },
      items: objects,
    };
  };

  const collection = (
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    namespace: string,
    body: Buffer,
    q: URLSearchParams,
  ): void => {
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        const watch = q.get('watch');
        if (watch !== null && watch !== '0' && watch.toLowerCase() !== 'false')
          return startWatch(req, res, def, namespace, q);
        return sendJson(res, 200, render(req, def, select(store.list(def, namespace), q), q));
      }
      case 'POST': {
        const obj = decodeObject(req, body, def);
        if (def.namespaced) obj.metadata.namespace = namespace || obj.metadata.namespace || 'default';
        if (!obj.metadata.name) throw new BadRequest('metadata.name: Required value: name is required');
        if (store.get(def, namespace, obj.metadata.name))
          return sendJson(res, 409, alreadyExists(def.resource, def.group, obj.metadata.name));
        if (isDryRun(q)) return sendJson(res, 201, obj);
        return sendJson(res, 201, store.put(def, obj));
      }
      case 'DELETE': {
        const items = select(store.list(def, namespace), q);
        if (!isDryRun(q)) for (const o of items) store.delete(def, o.metadata.namespace ?? '', o.metadata.name);
        return sendJson(res, 200, {
          kind: `${def.kind}List`,
          apiVersion: apiVersionOf(def),
          metadata: { resourceVersion: store.resourceVersion() },
          items,
        });
      }
      default:
        return sendJson(
          res,
          405,
          failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'),
        );
    }
  };

  const item = (
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    namespace: string,
    name: string,
    body: Buffer,
    q: URLSearchParams,
  ): void => {
    const current = store.get(def, namespace, name);
    if (!current && req.method !== 'PUT') return sendJson(res, 404, notFound(def.resource, def.group, name));
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return sendJson(res, 200, render(req, def, [current!], q, current));
      case 'PUT': {
        if (!current) return sendJson(res, 404, notFound(def.resource, def.group, name));
        const obj = decodeObject(req, body, def);
        if (obj.metadata.name !== name)
          throw new BadRequest('the name of the object does not match the name on the URL');
        if (def.namespaced) obj.metadata.namespace = namespace;
        return sendJson(res, 200, isDryRun(q) ? obj : store.put(def, withSyncedStatus(def, obj)));
      }
      case 'PATCH': {
        const patched = applyPatch(req, body, current!) as KubeObject;
        patched.metadata = { ...patched.metadata, name, namespace: current!.metadata.namespace };
        return sendJson(res, 200, isDryRun(q) ? patched : store.put(def, withSyncedStatus(def, patched)));
      }
      case 'DELETE': {
        if (isDryRun(q) || dryRunInBody(body)) return sendJson(res, 200, current);
        const gone = store.delete(def, namespace, name)!;
        if (def.resource === 'namespaces') return sendJson(res, 200, { ...gone, status: { phase: 'Terminating' } });
        if (def.resource === 'pods')
          return sendJson(res, 200, {
            ...gone,
            metadata: {
              ...gone.metadata,
              deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
              deletionGracePeriodSeconds: 30,
            },
          });
        return sendJson(res, 200, success({ name, group: def.group || undefined, kind: def.resource }));
      }
      default:
        return sendJson(
          res,
          405,
          failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'),
        );
    }
  };

  const subresource = (
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    namespace: string,
    name: string,
    sub: string,
    body: Buffer,
    q: URLSearchParams,
  ): void => {
    const current = store.get(def, namespace, name);
    const key = `${def.resource}/${sub}`;
    if (key === 'serviceaccounts/token' && req.method === 'POST')
      return tokenRequest(req, res, namespace, name, body, current);
    if (!current) return sendJson(res, 404, notFound(def.resource, def.group, name));
    switch (key) {
      case 'deployments/scale':
        return scale(req, res, def, current, body, q);
      case 'pods/log':
        return podLog(res, current, q);
      case 'pods/exec':
      case 'pods/attach':
      case 'pods/portforward':
        return sendJson(
          res,
          400,
          failure(400, 'BadRequest', `${sub} requires a connection upgrade (websocket or SPDY)`),
        );
      case 'pods/status':
      case 'deployments/status':
      case 'namespaces/status':
        if (req.method === 'GET') return sendJson(res, 200, current);
        break;
    }
    return sendJson(res, 404, failure(404, 'NotFound', 'the server could not find the requested resource'));
  };

  const scale = (
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    dep: KubeObject,
    body: Buffer,
    q: URLSearchParams,
  ): void => {
    const toScale = (d: KubeObject): object => ({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: d.metadata.name,
        namespace: d.metadata.namespace,
        uid: d.metadata.uid,
        resourceVersion: d.metadata.resourceVersion,
        creationTimestamp: d.metadata.creationTimestamp,
      },
      spec: { replicas: (d as any).spec?.replicas ?? 1 },
      status: {
        replicas: (d as any).status?.replicas ?? 0,
        selector: Object.entries((d as any).spec?.selector?.matchLabels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      },
    });
    let next: unknown;
    if (req.method === 'GET') return sendJson(res, 200, toScale(dep));
    if (req.method === 'PUT') next = decodeJson(body);
    else if (req.method === 'PATCH') next = applyPatch(req, body, toScale(dep));
    else
      return sendJson(
        res,
        405,
        failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'),
      );
    const replicas = (next as any)?.spec?.replicas;
    if (!Number.isInteger(replicas) || replicas < 0)
      return sendJson(
        res,
        422,
        failure(422, 'Invalid', `Scale.autoscaling "${dep.metadata.name}" is invalid: spec.replicas: Invalid value`),
      );
    const updated = structuredClone(dep) as any;
    updated.spec.replicas = replicas;
    if (isDryRun(q)) return sendJson(res, 200, toScale(updated));
    return sendJson(res, 200, toScale(store.put(def, withSyncedStatus(def, updated))));
  };

  const podLog = (res: ServerResponse, p: KubeObject, q: URLSearchParams): void => {
    const line = (i: number): string => {
      const ts = new Date().toISOString();
      return i % 3 === 2
        ? `${ts} INFO checkout completed order=${1000 + i} customer=jane.doe@example.com card=4111111111111111\n`
        : `${ts} INFO GET /healthz 200 pod=${p.metadata.name} line=${i}\n`;
    };
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    if (q.get('follow') !== 'true') {
      const tail = Number(q.get('tailLines') ?? 5);
      for (let i = 0; i < Math.min(5, tail); i++) res.write(line(i));
      return void res.end();
    }
    let i = 0;
    const tick = (): void => {
      if (res.destroyed) return;
      res.write(line(i++));
      if (i >= followLines) return void res.end();
      timer = setTimeout(tick, interval);
    };
    let timer = setTimeout(tick, 0);
    res.on('close', () => clearTimeout(timer));
  };

  const tokenRequest = (
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    sa: string,
    body: Buffer,
    current: KubeObject | undefined,
  ): void => {
    if (opts.tokenRequestToken === undefined || bearerOf(req) !== opts.tokenRequestToken) {
      return sendJson(
        res,
        403,
        failure(
          403,
          'Forbidden',
          `serviceaccounts "${sa}" is forbidden: User "system:anonymous" cannot create resource "serviceaccounts/token" in API group "" in the namespace "${namespace}"`,
          { name: sa, kind: 'serviceaccounts' },
        ),
      );
    }
    if (!current) return sendJson(res, 404, notFound('serviceaccounts', '', sa));
    const tr = (body.length > 0 ? decodeJson(body) : {}) as {
      spec?: { audiences?: string[]; expirationSeconds?: number };
    };
    const ttl = Math.max(600, tr.spec?.expirationSeconds ?? 3600);
    const token = `standin-${namespace}-${sa}.${randomBytes(24).toString('base64url')}`;
    const expires = Date.now() + ttl * 1000;
    minted.set(token, expires);
    mintedTokens.push(token);
    return sendJson(res, 201, {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: sa, namespace, creationTimestamp: null },
      spec: {
        audiences: tr.spec?.audiences ?? ['https://kubernetes.default.svc'],
        expirationSeconds: ttl,
        boundObjectRef: null,
      },
      status: { token, expirationTimestamp: new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z') },
    });
  };

  const startWatch = (
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    namespace: string,
    q: URLSearchParams,
  ): void => {
    const table = wantsTable(req.headers.accept);
    const include = includeObject(q);
    let first = true;
    const encode = (type: string, o: KubeObject): string => {
      const object = table ? toTable(def, [o], o.metadata.resourceVersion ?? '', include, first) : o;
      first = false;
      return `${JSON.stringify({ type, object })}\n`;
    };
    const matches = (o: KubeObject): boolean =>
      (!def.namespaced || namespace === '' || o.metadata.namespace === namespace) && select([o], q).length === 1;
    // Writes stay in order when an event is split: each waits for the one before it.
    let written = Promise.resolve();
    const send = (line: string): void => {
      const splitAt = opts.watchSplitAt;
      if (!splitAt) return void res.write(line);
      written = written.then(
        () =>
          new Promise<void>((resolve) => {
            const at = splitAt(line);
            if (res.destroyed) return resolve();
            if (at <= 0 || at >= line.length) {
              res.write(line);
              return resolve();
            }
            res.write(line.slice(0, at));
            setTimeout(() => {
              if (!res.destroyed) res.write(line.slice(at));
              resolve();
            }, 20);
          }),
      );
    };
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const rv = q.get('resourceVersion');
    if (rv === null || rv === '' || rv === '0')
      for (const o of select(store.list(def, namespace), q)) send(encode('ADDED', o));
    const unsubscribe = store.subscribe((e: WatchEvent) => {
      if (e.def === def && matches(e.object)) send(encode(e.type, e.object));
    });
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      unsubscribe();
      clearTimeout(timer);
    });
  };

  const applyPatch = (req: IncomingMessage, body: Buffer, target: unknown): unknown => {
    const ct = (req.headers['content-type'] ?? '').split(';')[0];
    // kubectl sends server-side apply patches as JSON, which is also YAML.
    const doc = decodeJson(body);
    switch (ct) {
      case 'application/json-patch+json':
        return jsonPatch(target, doc);
      case 'application/merge-patch+json':
      case 'application/strategic-merge-patch+json':
      case 'application/apply-patch+yaml':
        return mergePatch(target, doc);
      default:
        throw new BadRequest(`unsupported patch content type ${ct}`);
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Socket): void => {
    record(req);
    const status = !authorized(req)
      ? failure(401, 'Unauthorized', 'Unauthorized')
      : failure(403, 'Forbidden', 'the stand-in does not serve exec, attach or port-forward streams');
    const text = JSON.stringify(status);
    socket.end(
      `HTTP/1.1 ${status.code} ${status.code === 401 ? 'Unauthorized' : 'Forbidden'}\r\nContent-Type: application/json\r\n`
        + `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  };

  const server: Server = cert
    ? createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, handler)
    : createHttpServer(handler);
  server.on('upgrade', onUpgrade);
  // Idle keep-alive connections are kept far longer than Node's 5 s default, as kube-apiserver's Go server keeps them.
  // With 5 s, a pooled connection that the stand-in reuses just as this server closes it is reset before the response
  // (Envoy and the stand-in answer 503): a race a loaded machine widens to its event loop's lag, and the likely cause of
  // one 503 seen after the Redis outage in load-fault.test.ts, whose pauses outlast 5 s.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  serverAddress = `127.0.0.1:${port}`;

  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    caPem: cert?.certPem ?? '',
    caPath: cert?.certPath ?? '',
    seenAuthorizations,
    requests,
    mintedTokens,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          if (cert) rmSync(cert.dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

class BadRequest extends Error {}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decodeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new BadRequest('the request body is not valid JSON');
  }
}

function decodeObject(req: IncomingMessage, body: Buffer, def: ResourceDef): KubeObject {
  const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
  let obj: KubeObject;
  if (ct === 'application/vnd.kubernetes.protobuf') {
    const decoded = decodeProtobufObject(body);
    if (decoded instanceof Error) throw new BadRequest(decoded.message);
    obj = decoded as unknown as KubeObject;
  } else if (ct === 'application/json') obj = decodeJson(body) as KubeObject;
  else throw new BadRequest(`the stand-in decodes application/json and protobuf bodies, not ${ct}`);
  if (typeof obj !== 'object' || obj === null || typeof obj.metadata !== 'object' || obj.metadata === null)
    throw new BadRequest('Object has no metadata');
  if (obj.kind !== undefined && obj.kind !== def.kind)
    throw new BadRequest(`the body is a ${String(obj.kind)}, not a ${def.kind}`);
  return obj;
}

function isDryRun(q: URLSearchParams): boolean {
  const v = q.getAll('dryRun');
  return v.length > 0 && v.every((x) => x === 'All');
}

function dryRunInBody(body: Buffer): boolean {
  if (body.length === 0) return false;
  const d = (decodeJson(body) as { dryRun?: unknown }).dryRun;
  return Array.isArray(d) && d.length > 0 && d.every((x) => x === 'All');
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

/** A deployment's status follows its spec at once: no controllers here, and kubectl waits on readiness. */
function withSyncedStatus(def: ResourceDef, obj: KubeObject): KubeObject {
  if (def.resource !== 'deployments') return obj;
  const r = (obj as any).spec?.replicas ?? 1;
  return {
    ...obj,
    status: { ...((obj as any).status ?? {}), replicas: r, updatedReplicas: r, readyReplicas: r, availableReplicas: r },
  };
}

/** `fieldSelector` (metadata.name / metadata.namespace, = == !=) and equality-based `labelSelector`. */
function select(objects: KubeObject[], q: URLSearchParams): KubeObject[] {
  const fs = (q.get('fieldSelector') ?? '').split(',').filter(Boolean).map(parseTerm);
  const ls = (q.get('labelSelector') ?? '').split(',').filter(Boolean).map(parseTerm);
  return objects.filter(
    (o) =>
      fs.every((t) => {
        const v =
          t.key === 'metadata.name'
            ? o.metadata.name
            : t.key === 'metadata.namespace'
              ? (o.metadata.namespace ?? '')
              : undefined;
        if (v === undefined) throw new BadRequest(`field label not supported: ${t.key}`);
        return t.neg ? v !== t.value : v === t.value;
      })
      && ls.every((t) => {
        const v = o.metadata.labels?.[t.key];
        if (t.value === undefined) return t.neg ? v === undefined : v !== undefined;
        return t.neg ? v !== t.value : v === t.value;
      }),
  );
}

function parseTerm(term: string): { key: string; value?: string; neg: boolean } {
  const m = /^(!?)([^!=]+?)\s*(?:(!=|==|=)\s*(.*))?$/.exec(term.trim());
  if (!m) throw new BadRequest(`invalid selector term ${term}`);
  if (m[3] === undefined) return { key: m[2], neg: m[1] === '!' };
  return { key: m[2], value: m[4], neg: m[3] === '!=' };
}
