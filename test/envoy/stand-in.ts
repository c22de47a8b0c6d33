/**
 * THE ENVOY STAND-IN — test code only, never in the product's data path. An HTTP/1.1-over-TLS proxy that plays the
 * Kubernetes listener of envoy/portcullis.yaml: HCM (request headers as Envoy builds them, upgrades, route timeouts)
 * → the HTTP ext_proc filter (ext-proc-filter.ts) → router to one upstream. Settings come from the same YAML a real
 * Envoy loads. See README.md for what is and is not implemented.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { newExtProcClient } from '../../extproc/envoy-api/index.ts';
import { realClock } from './clock.ts';
import type { Clock, Disarm } from './clock.ts';
import { accessLogEntry, type AccessLogEntry } from './access-log.ts';
import { Counters } from './counters.ts';
import { ExtProcFilter } from './ext-proc-filter.ts';
import type { Dir, DirectionSink, FilterHost, FlowControl, LocalReply } from './ext-proc-filter.ts';
import { get } from './header-mutation.ts';
import type { HeaderList } from './header-mutation.ts';
import { loadExtProcSettings, matchRoute } from './stand-in-config.ts';
import type { ExtProcSettings, RouteMatch, SettingsOverrides } from './stand-in-config.ts';
import { makeThrowawayCert } from './tls-cert.ts';
import { WasmFilterChain, type WasmFilterOptions } from '../wasm-host/stand-in-wasm.ts';

export interface StandInOptions {
  /** Bootstrap YAML (default envoy/portcullis.yaml). */
  config?: string;
  /** Listener whose HCM and ext_proc filter to play (default 'kubernetes'). */
  listener?: string;
  /** host:port of the ExternalProcessor. */
  processorAddress: string;
  /** Where the router sends requests: http:// or https:// (with `ca` to trust). The Host header is kept. */
  upstream: { url: string; ca?: string | Buffer };
  /** Test-only changes to the settings read from the YAML (e.g. short timeouts, gracefulClose: false). */
  overrides?: SettingsOverrides;
  /** Run the proxy-wasm filter (test/wasm-host) before ext_proc, as envoy/portcullis.yaml does. */
  wasm?: WasmFilterOptions;
  /** What Envoy's timers (message, graceful close, route, idle) run on: the real clock unless a test moves its own. */
  clock?: Clock;
}

export interface EnvoyStandIn {
  url: string;
  port: number;
  caCertPath: string;
  caPem: string;
  counters: Counters;
  settings: ExtProcSettings;
  wasm?: WasmFilterChain;
  /** The listener's access log (its json_format), one entry per finished plain request, oldest first. */
  accessLog: AccessLogEntry[];
  close(): Promise<void>;
}

const DEFAULT_CONFIG = new URL('../../envoy/portcullis.yaml', import.meta.url).pathname;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

export async function startEnvoyStandIn(opts: StandInOptions): Promise<EnvoyStandIn> {
  const settings = loadExtProcSettings(opts.config ?? DEFAULT_CONFIG, opts.listener ?? 'kubernetes', opts.overrides);
  const counters = new Counters();
  // Envoy's gRPC client makes no transparent retries (docs/envoy-behaviour.md B.15): a stream the processor refuses
  // (REFUSED_STREAM, or opened as a GOAWAY crosses it) is a gRPC error for that request. grpc-js clients retry those on
  // their own unless retries are off, and grpc-js 1.14 turns them off only for the number 0 (not `false`).
  const client = newExtProcClient(opts.processorAddress, undefined, { 'grpc.enable_retries': 0 });
  const cert = makeThrowawayCert();
  const upstreamUrl = new URL(opts.upstream.url);
  const upstreamTls = upstreamUrl.protocol === 'https:';
  const agent = upstreamTls
    ? new https.Agent({ keepAlive: true, ca: opts.upstream.ca })
    : new http.Agent({ keepAlive: true });

  const wasm = opts.wasm ? await WasmFilterChain.start(opts.wasm) : undefined;
  const ctx: StreamContext = {
    settings,
    counters,
    clock: opts.clock ?? realClock,
    client,
    upstreamUrl,
    upstreamTls,
    agent,
    ca: opts.upstream.ca,
    wasm,
    accessLog: [],
  };
  const server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => handleRequest(ctx, req, res));
  // Upgraded sockets leave the HTTP server's bookkeeping: close() must end them itself.
  const upgraded = new Set<Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket as Socket);
    socket.on('close', () => upgraded.delete(socket as Socket));
    handleUpgrade(ctx, req, socket as Socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    caCertPath: cert.certPath,
    caPem: cert.cert.toString(),
    counters,
    settings,
    wasm,
    accessLog: ctx.accessLog,
    close: async () => {
      wasm?.close();
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
      client.close();
      cert.remove();
    },
  };
}

interface StreamContext {
  settings: ExtProcSettings;
  counters: Counters;
  clock: Clock;
  client: ReturnType<typeof newExtProcClient>;
  upstreamUrl: URL;
  upstreamTls: boolean;
  agent: http.Agent;
  ca: string | Buffer | undefined;
  wasm: WasmFilterChain | undefined;
  accessLog: AccessLogEntry[];
}

// ------------------------------------------------------------------------------------------------ HCM behaviour

/** Request headers as the HCM hands them to the filter chain (B.8): pseudo-headers, lower case, HCM additions. */
function requestHeaders(req: http.IncomingMessage, upgrade: boolean): HeaderList {
  const h: HeaderList = [
    [':authority', req.headers.host ?? ''],
    [':path', req.url ?? '/'],
    [':method', req.method ?? 'GET'],
    [':scheme', 'https'],
  ];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i].toLowerCase();
    if (k === 'x-request-id' || k === 'x-forwarded-proto') continue;
    if (HOP_BY_HOP.has(k) && !(upgrade && (k === 'connection' || k === 'upgrade'))) continue;
    if (k === 'te' && req.rawHeaders[i + 1].toLowerCase() !== 'trailers') continue;
    h.push([k, req.rawHeaders[i + 1]]);
  }
  // use_remote_address: true
  const xff = h.find(([k]) => k === 'x-forwarded-for');
  const remote = req.socket.remoteAddress ?? '';
  if (xff) xff[1] = `${xff[1]},${remote}`;
  else h.push(['x-forwarded-for', remote]);
  h.push(['x-forwarded-proto', 'https'], ['x-request-id', randomUUID()]);
  return h;
}

/** True if an HTTP/1.1 request has no body (Envoy's codec then ends the stream with the headers). */
function requestEndsAtHeaders(req: http.IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  return te === undefined && (cl === undefined || cl === '0');
}

function responseHeaders(res: http.IncomingMessage, startMs: number): HeaderList {
  const h: HeaderList = [[':status', String(res.statusCode ?? 502)]];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const k = res.rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(k) && !(res.statusCode === 101 && (k === 'connection' || k === 'upgrade'))) continue;
    h.push([k, res.rawHeaders[i + 1]]);
  }
  h.push(['x-envoy-upstream-service-time', String(Date.now() - startMs)]);
  return h;
}

function flat(h: HeaderList): string[] {
  return h.filter(([k]) => !k.startsWith(':')).flat();
}

function trailersObject(t: HeaderList): Record<string, string> {
  return Object.fromEntries(t);
}

function trailerList(raw: string[]): HeaderList {
  const t: HeaderList = [];
  for (let i = 0; i < raw.length; i += 2) t.push([raw[i].toLowerCase(), raw[i + 1]]);
  return t;
}

/** pause()/resume() of a readable with several independent reasons to pause. */
function gate(stream: { pause(): unknown; resume(): unknown } | undefined) {
  const reasons = new Set<string>();
  return {
    stream,
    pause(reason: string) {
      reasons.add(reason);
      this.stream?.pause();
    },
    resume(reason: string) {
      reasons.delete(reason);
      if (reasons.size === 0) this.stream?.resume();
    },
  };
}

function upstreamRequest(ctx: StreamContext, h: HeaderList, extraHeaders: string[] = []): http.ClientRequest {
  const authority = get(h, ':authority') ?? '';
  const options: https.RequestOptions = {
    hostname: ctx.upstreamUrl.hostname,
    port: ctx.upstreamUrl.port || (ctx.upstreamTls ? 443 : 80),
    method: get(h, ':method'),
    path: get(h, ':path'),
    headers: [...flat(h), ...extraHeaders, 'host', authority],
    agent: extraHeaders.length > 0 ? false : ctx.agent,
  };
  if (ctx.upstreamTls) {
    options.ca = ctx.ca;
    // SNI and certificate name from the upstream URL, not the kept Host header (as Envoy's `sni`).
    options.servername = /^[\d.]+$|:/.test(ctx.upstreamUrl.hostname) ? '' : ctx.upstreamUrl.hostname;
  }
  return (ctx.upstreamTls ? https : http).request(options);
}

// ------------------------------------------------------------------------------------------------ plain requests

function handleRequest(ctx: StreamContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const { settings, counters } = ctx;
  const startMs = Date.now();
  const route = matchRoute(settings.routes, req.url ?? '/');
  let upReq: http.ClientRequest | undefined;
  let responseStarted = false;
  let routeTimer: Disarm | undefined;
  let idleTimer: Disarm | undefined;
  const reqGate = gate(req);
  const resGate = gate(undefined as http.IncomingMessage | undefined);
  let filter: ExtProcFilter | undefined;

  let replied = false;
  const localReply = (r: LocalReply) => {
    // One reply per stream: the upstream request we abort below reports an error of its own, which is ours, not the
    // upstream's; and once the response is complete the stream is gone (see endResponse).
    if (replied) return;
    replied = true;
    counters.localReplies.push({ status: r.status, details: r.details });
    routeTimer?.();
    idleTimer?.();
    upReq?.destroy();
    if (responseStarted || res.headersSent) {
      res.destroy(); // too late for a reply: reset the stream
      return;
    }
    responseStarted = true;
    const headers = [...r.headers];
    if (r.body.length > 0 && !headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'text/plain']);
    res.writeHead(r.status, [...flat(headers), 'content-length', String(r.body.length)]);
    res.end(r.body);
  };

  if (!route) {
    localReply({ status: 404, body: Buffer.alloc(0), headers: [], details: 'route_not_found' });
    return;
  }

  // Router-generated replies (timeouts, upstream failures) skip ext_proc (Envoy >= 1.34).
  const routerReply = (status: number, details: string, body: string) => {
    filter?.onDestroy();
    localReply({ status, body: Buffer.from(body), headers: [], details });
  };
  const touch = () => {
    if (route.idleTimeoutMs <= 0) return;
    idleTimer?.();
    idleTimer = ctx.clock.after(route.idleTimeoutMs, () => routerReply(504, 'stream_idle_timeout', 'stream timeout'));
  };
  const armRouteTimeout = (r: RouteMatch) => {
    if (r.timeoutMs > 0)
      routeTimer = ctx.clock.after(r.timeoutMs, () =>
        routerReply(504, 'upstream_response_timeout', 'upstream request timeout'),
      );
  };
  let currentRoute = route;

  const requestSink: DirectionSink = {
    headers(h, endStream) {
      upReq = upstreamRequest(ctx, h);
      upReq.on('response', (upRes) => onUpstreamResponse(upRes));
      upReq.on('error', () =>
        routerReply(
          503,
          'upstream_reset_before_response_started',
          'upstream connect error or disconnect/reset before headers',
        ),
      );
      if (endStream) {
        upReq.end();
        armRouteTimeout(currentRoute);
      }
    },
    data(chunk, endStream) {
      if (!upReq) return;
      if (chunk.length > 0 && !upReq.write(chunk)) {
        reqGate.pause('upstream');
        upReq.once('drain', () => reqGate.resume('upstream'));
      }
      if (endStream) {
        upReq.end();
        armRouteTimeout(currentRoute);
      }
    },
    trailers(t) {
      if (!upReq) return;
      upReq.addTrailers(trailersObject(t));
      upReq.end();
      armRouteTimeout(currentRoute);
    },
  };

  // The response is complete: Envoy's HCM ends the HTTP stream and destroys its filters there and then (the ext_proc
  // stream is closed, a late gRPC error can no longer touch the response), not when the socket has flushed it.
  const endResponse = () => {
    res.end();
    replied = true;
    routeTimer?.();
    idleTimer?.();
    filter!.onDestroy();
  };
  const responseSink: DirectionSink = {
    headers(h, endStream) {
      responseStarted = true;
      res.writeHead(Number(get(h, ':status') ?? 200), flat(h));
      if (endStream) endResponse();
    },
    data(chunk, endStream) {
      if (chunk.length > 0 && !res.write(chunk)) {
        resGate.pause('client');
        res.once('drain', () => resGate.resume('client'));
      }
      if (endStream) endResponse();
    },
    trailers(t) {
      res.addTrailers(trailersObject(t));
      endResponse();
    },
  };

  // The wasm filter comes first in the chain: a request it answers never reaches ext_proc.
  const wasm = ctx.wasm?.requestHeaders(requestHeaders(req, false), requestEndsAtHeaders(req));
  if (wasm?.reply) {
    localReply(wasm.reply);
    return;
  }
  const metadata = new Map<string, Record<string, string>>();
  const loggedHeaders = wasm?.headers ?? requestHeaders(req, false);
  const flow: Record<Dir, FlowControl> = {
    request: { pause: () => reqGate.pause('filter'), resume: () => reqGate.resume('filter') },
    response: { pause: () => resGate.pause('filter'), resume: () => resGate.resume('filter') },
  };
  const host: FilterHost = {
    settings,
    counters,
    clock: ctx.clock,
    client: ctx.client,
    sinks: {
      request: requestSink,
      response: wasm ? ctx.wasm!.responseSink(wasm.stream, responseSink, localReply) : responseSink,
    },
    flow,
    sendLocalReply: localReply,
    clearRouteCache: (h) => {
      currentRoute = matchRoute(settings.routes, get(h, ':path') ?? '/') ?? currentRoute;
    },
    setDynamicMetadata: (ns, fields) => metadata.set(ns, { ...metadata.get(ns), ...fields }),
  };
  filter = new ExtProcFilter(host);

  const onUpstreamResponse = (upRes: http.IncomingMessage) => {
    routeTimer?.();
    resGate.stream = upRes;
    const noBody =
      req.method === 'HEAD'
      || upRes.statusCode === 204
      || upRes.statusCode === 304
      || upRes.headers['content-length'] === '0';
    filter!.onHeaders('response', responseHeaders(upRes, startMs), noBody);
    upRes.on('data', (c: Buffer) => {
      touch();
      if (!noBody) filter!.onData('response', c, false);
    });
    upRes.on('end', () => {
      routeTimer?.();
      if (noBody) return;
      const t = trailerList(upRes.rawTrailers);
      if (t.length > 0) filter!.onTrailers('response', t);
      else filter!.onData('response', Buffer.alloc(0), true);
    });
  };

  res.on('close', () => {
    routeTimer?.();
    idleTimer?.();
    if (!res.writableFinished) upReq?.destroy();
    filter!.onDestroy();
    wasm?.stream.finish();
    if (settings.accessLogFormat)
      ctx.accessLog.push(
        accessLogEntry(settings.accessLogFormat, {
          startMs,
          endMs: Date.now(),
          requestHeaders: loggedHeaders,
          status: res.statusCode,
          metadata,
        }),
      );
  });

  const endsAtHeaders = requestEndsAtHeaders(req);
  touch();
  filter.onHeaders('request', wasm?.headers ?? requestHeaders(req, false), endsAtHeaders);
  req.on('data', (c: Buffer) => {
    touch();
    if (!endsAtHeaders) filter!.onData('request', c, false);
  });
  req.on('end', () => {
    if (endsAtHeaders) return;
    const t = trailerList(req.rawTrailers);
    if (t.length > 0) filter!.onTrailers('request', t);
    else filter!.onData('request', Buffer.alloc(0), true);
  });
}

// ------------------------------------------------------------------------------------------------ upgrades

function rawResponse(status: number, h: HeaderList, body?: Buffer): Buffer {
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`];
  for (const [k, v] of h) if (!k.startsWith(':')) lines.push(`${k}: ${v}`);
  if (body) lines.push(`content-length: ${body.length}`, 'connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

/**
 * Connection: Upgrade (WebSocket, SPDY/3.1 from kubectl exec/attach/port-forward). The request headers go to
 * ext_proc; an immediate_response is written back as a plain HTTP/1.1 reply; if the processor lets it through, the
 * upgrade goes upstream and, on 101 (after the response headers went through ext_proc), the sockets are spliced.
 * The upgraded bytes are not sent to ext_proc (see README).
 */
function handleUpgrade(ctx: StreamContext, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  const { settings, counters } = ctx;
  const startMs = Date.now();
  const kind = (req.headers.upgrade ?? '').toLowerCase();
  let closed = false;
  let upSocket: Socket | undefined;
  let upHead: Buffer = Buffer.alloc(0);
  let upReq: http.ClientRequest | undefined;
  let pendingBody: Buffer[] = [];
  let responseStatus = 0;
  let responseHead: HeaderList = [];
  let filter: ExtProcFilter | undefined;

  const finish = () => {
    if (closed) return;
    closed = true;
    filter?.onDestroy();
    socket.end();
    socket.destroySoon();
    upSocket?.destroy();
  };
  const localReply = (r: LocalReply) => {
    counters.localReplies.push({ status: r.status, details: r.details });
    upReq?.destroy();
    const headers = [...r.headers];
    if (r.body.length > 0 && !headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'text/plain']);
    socket.write(rawResponse(r.status, headers, r.body));
    finish();
  };
  if (!settings.upgradeTypes.includes(kind) || !matchRoute(settings.routes, req.url ?? '/')) {
    localReply({ status: 403, body: Buffer.alloc(0), headers: [], details: 'upgrade_failed' });
    return;
  }
  socket.on('error', () => finish());
  socket.on('close', () => finish());

  const requestSink: DirectionSink = {
    headers(h) {
      upReq = upstreamRequest(ctx, h, ['connection', 'Upgrade', 'upgrade', req.headers.upgrade ?? '']);
      upReq.on('upgrade', (upRes: http.IncomingMessage, s: Socket, uh: Buffer) => {
        upSocket = s;
        upHead = uh;
        s.on('error', () => finish());
        // end_of_stream=true (Envoy: false, the upgraded bytes would be body): see the note at the end.
        filter!.onHeaders('response', responseHeaders(upRes, startMs), true);
      });
      upReq.on('response', (upRes: http.IncomingMessage) => {
        filter!.onHeaders('response', responseHeaders(upRes, startMs), false);
        upRes.on('data', (c: Buffer) => filter!.onData('response', c, false));
        upRes.on('end', () => filter!.onData('response', Buffer.alloc(0), true));
      });
      upReq.on('error', () =>
        localReply({
          status: 503,
          body: Buffer.from('upstream connect error'),
          headers: [],
          details: 'upstream_reset_before_response_started',
        }),
      );
      upReq.end();
    },
    data() {
      /* the upgrade request has no body of its own */
    },
    trailers() {
      /* none */
    },
  };
  const responseSink: DirectionSink = {
    headers(h, endStream) {
      responseStatus = Number(get(h, ':status'));
      responseHead = h;
      if (responseStatus === 101 && upSocket) {
        socket.write(rawResponse(101, h));
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        socket.pipe(upSocket);
        upSocket.pipe(socket);
        upSocket.on('close', () => finish());
        return;
      }
      if (endStream) {
        socket.write(rawResponse(responseStatus, responseHead, Buffer.alloc(0)));
        finish();
      }
    },
    data(chunk, endStream) {
      if (responseStatus === 101) return;
      pendingBody.push(chunk);
      if (endStream) {
        socket.write(
          rawResponse(
            responseStatus,
            responseHead.filter(([k]) => k !== 'content-length'),
            Buffer.concat(pendingBody),
          ),
        );
        pendingBody = [];
        finish();
      }
    },
    trailers() {
      socket.write(
        rawResponse(
          responseStatus,
          responseHead.filter(([k]) => k !== 'content-length'),
          Buffer.concat(pendingBody),
        ),
      );
      finish();
    },
  };
  const noFlow: FlowControl = { pause: () => {}, resume: () => {} };
  filter = new ExtProcFilter({
    settings,
    counters,
    clock: ctx.clock,
    client: ctx.client,
    sinks: { request: requestSink, response: responseSink },
    flow: { request: noFlow, response: noFlow },
    sendLocalReply: localReply,
    clearRouteCache: () => {},
    // Upgraded streams are not access-logged by the stand-in (test/envoy/README.md).
    setDynamicMetadata: () => {},
  });
  // Envoy sends an upgrade's headers with end_of_stream=false and then treats the upgraded bytes as body, so with
  // BUFFERED body modes a real Envoy holds the upgrade until the processor overrides the body modes to NONE. The
  // stand-in instead ends the request body at once (empty) and marks the 101 as end of stream, and splices raw.
  const wasm = ctx.wasm?.requestHeaders(requestHeaders(req, true), false);
  if (wasm?.reply) {
    localReply(wasm.reply);
    return;
  }
  filter.onHeaders('request', wasm?.headers ?? requestHeaders(req, true), false);
  filter.onData('request', Buffer.alloc(0), true);
}
