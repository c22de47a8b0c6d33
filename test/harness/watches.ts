/**
 * Many Kubernetes watches opened at once, as Envoy meets them when many `kubectl get -w` start together. Each watch
 * has its own TLS connection to the Envoy stand-in; the connections are made first (a few hundred handshakes at a time,
 * as a listener's accept queue would take them), then every request is sent in the same turn of the event loop, so
 * the proxy opens all the ext_proc streams together. Each watch collects what it receives, so a test can wait until
 * every one has seen an event written after they all opened.
 */
import https from 'node:https';
import tls from 'node:tls';

export interface HeldWatches {
  /** Resolves once every watch has its answer's status line, or a transport error in its place. */
  opened: Promise<void>;
  /** Status codes, one per watch, as they arrive ("200"), or "<phase> <error code>" for a transport error. */
  statuses: () => string[];
  /** Watches whose answer has ended (or failed) since it began: a held watch never ends on its own. */
  ended: () => number;
  /** How many watches have received text containing `needle` so far. */
  seen(needle: string): number;
  close(): void;
}

const HANDSHAKES_AT_ONCE = 200;

export function openWatches(opts: {
  url: string;
  ca: string;
  token: string;
  path: string;
  count: number;
}): HeldWatches {
  const url = new URL(opts.url);
  const statuses: string[] = [];
  const received: string[] = Array.from({ length: opts.count }, () => '');
  const sockets: tls.TLSSocket[] = [];
  let ended = 0;
  let closing = false;
  const failed = (phase: string, err: NodeJS.ErrnoException): void => {
    statuses.push(`${phase} ${err.code ?? err.message}`);
  };
  const connect = (): Promise<tls.TLSSocket | null> =>
    new Promise((resolve) => {
      const s = tls.connect({ host: url.hostname, port: Number(url.port), ca: opts.ca, servername: 'localhost' });
      sockets.push(s);
      s.once('secureConnect', () => resolve(s));
      s.once('error', (err) => {
        failed('connect', err);
        resolve(null);
      });
    });
  const watch = (socket: tls.TLSSocket, i: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const req = https.request(
        `${opts.url}${opts.path}`,
        {
          ca: opts.ca,
          agent: false,
          createConnection: () => socket,
          headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
        },
        (res) => {
          statuses.push(String(res.statusCode));
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            received[i] += c;
          });
          const end = (): void => {
            if (!closing) ended++;
          };
          res.once('end', end);
          res.on('error', end);
          resolve();
        },
      );
      let answered = false;
      req.once('response', () => {
        answered = true;
      });
      req.on('error', (err) => {
        if (closing || answered) return;
        failed('request', err);
        resolve();
      });
      req.end();
    });
  const opened = (async () => {
    const connected: (tls.TLSSocket | null)[] = [];
    for (let i = 0; i < opts.count; i += HANDSHAKES_AT_ONCE)
      connected.push(
        ...(await Promise.all(Array.from({ length: Math.min(HANDSHAKES_AT_ONCE, opts.count - i) }, connect))),
      );
    await Promise.all(connected.flatMap((s, i) => (s ? [watch(s, i)] : [])));
  })();
  return {
    opened,
    statuses: () => statuses,
    ended: () => ended,
    seen: (needle) => received.filter((r) => r.includes(needle)).length,
    close() {
      closing = true;
      for (const s of sockets) s.destroy();
    },
  };
}
