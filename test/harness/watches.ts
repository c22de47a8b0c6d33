/**
 * Many Kubernetes watches opened at once, as Envoy meets them when many `kubectl get -w` start together: each on its
 * own TLS connection to the Envoy stand-in (no pooling), all requests sent before any answer is awaited. Each watch
 * collects what it receives, so a test can wait until every one has seen an event written after they all opened.
 */
import https from 'node:https';

export interface HeldWatches {
  /** Resolves once every watch has its answer's status line; rejects on a transport error before that. */
  opened: Promise<void>;
  /** Status codes, one per watch, as they arrive. */
  statuses: () => number[];
  /** Watches whose answer has ended (or failed) since it began: a held watch never ends on its own. */
  ended: () => number;
  /** How many watches have received text containing `needle` so far. */
  seen(needle: string): number;
  close(): void;
}

export function openWatches(opts: {
  url: string;
  ca: string;
  token: string;
  path: string;
  count: number;
}): HeldWatches {
  const statuses: number[] = [];
  const received: string[] = Array.from({ length: opts.count }, () => '');
  const requests: ReturnType<typeof https.request>[] = [];
  let ended = 0;
  let closing = false;
  const opened = Promise.all(
    Array.from(
      { length: opts.count },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = https.request(
            `${opts.url}${opts.path}`,
            {
              ca: opts.ca,
              agent: false,
              headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
            },
            (res) => {
              statuses.push(res.statusCode ?? 0);
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
          req.on('error', (err) => {
            if (closing) return;
            ended++;
            reject(err);
          });
          requests.push(req);
          req.end();
        }),
    ),
  ).then(() => undefined);
  return {
    opened,
    statuses: () => statuses,
    ended: () => ended,
    seen: (needle) => received.filter((r) => r.includes(needle)).length,
    close() {
      closing = true;
      for (const r of requests) r.destroy();
    },
  };
}
