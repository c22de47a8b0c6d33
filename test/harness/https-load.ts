/**
 * A bounded load generator for the Kubernetes path: N requests from C concurrent keep-alive HTTPS clients (one
 * node:https Agent, maxSockets C), trusting the Envoy stand-in's CA. Every request ends as a status code or a
 * transport error; nothing is retried, so a failure counted here is one a client would have seen.
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  /** https://host:port of the Envoy stand-in. */
  url: string;
  ca: string;
  token: string;
  requests: number;
  concurrency: number;
  /** Request path (default GET /api/v1/namespaces/dev/pods), or a function of the request's index. */
  path?: string | ((i: number) => string);
  method?: string;
  /** Called as each request ends (e.g. to stop Redis mid-load). */
  onDone?: (done: number) => void | Promise<void>;
}

export interface LoadResult {
  /** How many requests ended with each status code ("error:<code>" for transport errors). */
  outcomes: Map<string, number>;
  /** Latencies in ms of the requests answered with 200, sorted. */
  okLatencies: number[];
  /** Requests not answered with 200. */
  failures: number;
  /** Wall time of the whole run in ms. */
  elapsedMs: number;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: opts.concurrency, ca: opts.ca });
  const outcomes = new Map<string, number>();
  const okLatencies: number[] = [];
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  const pathOf =
    typeof opts.path === 'function'
      ? opts.path
      : () => (opts.path as string | undefined) ?? '/api/v1/namespaces/dev/pods';
  const once = (i: number) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = https.request(
        `${opts.url}${pathOf(i)}`,
        {
          agent,
          method: opts.method ?? 'GET',
          headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            count(String(res.statusCode));
            if (res.statusCode === 200) okLatencies.push(performance.now() - t0);
            resolve();
          });
          res.on('error', (err: NodeJS.ErrnoException) => {
            count(`error:${err.code ?? err.message}`);
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        count(`error:${err.code ?? err.message}`);
        resolve();
      });
      req.end();
    });
  const start = performance.now();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < opts.requests) {
        await once(next++);
        await opts.onDone?.(++done);
      }
    }),
  );
  agent.destroy();
  okLatencies.sort((a, b) => a - b);
  return {
    outcomes,
    okLatencies,
    failures: opts.requests - (outcomes.get('200') ?? 0),
    elapsedMs: performance.now() - start,
  };
}

/** The p-th percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** "200×2990 500×10" */
export function formatOutcomes(outcomes: Map<string, number>): string {
  return [...outcomes]
    .sort()
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
}
