/** Prometheus metrics, served on their own loopback listener (scrapers do not carry admin credentials). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataPathMetrics } from '../spine/index.ts';

export interface Metrics extends DataPathMetrics {
  registry: Registry;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'portcullis_' });
  return {
    registry,
    decisions: new Counter({
      name: 'portcullis_decisions_total',
      help: 'Policy decisions by protocol, action and reason',
      labelNames: ['protocol', 'action', 'reason'],
      registers: [registry],
    }),
    decisionSeconds: new Histogram({
      name: 'portcullis_decision_seconds',
      help: 'Time from request to decision',
      labelNames: ['protocol'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    extprocStreams: new Counter({
      name: 'portcullis_extproc_streams_total',
      help: 'ext_proc streams by service and outcome',
      labelNames: ['service', 'outcome'],
      registers: [registry],
    }),
  };
}

/** The recorder's backlog, read when scraped: how many events wait for Redis and how long the oldest has waited. */
export function registerRecorderGauges(
  metrics: Metrics,
  stats: () => { buffered: number; oldestUnacknowledgedMs: number },
): void {
  new Gauge({
    name: 'portcullis_recording_buffered_events',
    help: 'Recorded events not yet acknowledged by Redis',
    registers: [metrics.registry],
    collect() {
      this.set(stats().buffered);
    },
  });
  new Gauge({
    name: 'portcullis_recording_oldest_unacknowledged_seconds',
    help: 'How long the oldest event not yet acknowledged by Redis has waited (fail-closed targets refuse new actions past recording.maxUnacknowledged)',
    registers: [metrics.registry],
    collect() {
      this.set(stats().oldestUnacknowledgedMs / 1000);
    },
  });
}

export async function startMetricsServer(
  metrics: Metrics,
  host: string,
  port: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host}:${addr.port}/metrics`,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
