/** Prometheus metrics, served on their own loopback listener (scrapers do not carry admin credentials). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApprovalAuditEvent } from '../approvals/index.ts';
import { CounterTally, HistogramTally } from '../common/tallies.ts';
import type { DataPathMetrics } from '../spine/index.ts';

export interface Metrics extends DataPathMetrics {
  registry: Registry;
  policyReloadFailures: Counter;
  approvalDecisionSeconds: Histogram<'outcome'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'portcullis_' });
  return {
    registry,
    decisions: new CounterTally({
      name: 'portcullis_decisions_total',
      help: 'Policy decisions by protocol, action and reason',
      labelNames: ['protocol', 'action', 'reason'],
      registers: [registry],
    }),
    decisionSeconds: new HistogramTally({
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
    maskingFindings: new CounterTally({
      name: 'portcullis_masking_findings_total',
      help: 'Values masked in responses to agents, by protocol and entity',
      labelNames: ['protocol', 'entity'],
      registers: [registry],
    }),
    policyReloadFailures: new Counter({
      name: 'portcullis_policy_reload_failures_total',
      help: 'Policy reloads that failed (store unreachable or unreadable); the last good policies stay in force',
      registers: [registry],
    }),
    approvalDecisionSeconds: new Histogram({
      name: 'portcullis_approval_decision_seconds',
      help: 'Time from an approval request to its outcome (approved, denied, expired), by outcome',
      labelNames: ['outcome'],
      buckets: [5, 15, 30, 60, 120, 300, 900, 1800, 3600, 14400],
      registers: [registry],
    }),
  };
}

/** What the scrape-time gauges read: each source is asked when Prometheus scrapes, never on the data path. */
export interface ServiceSources {
  redisUp(): boolean;
  recorder(): { written: number; dropped: number; refused: number };
  policies(): readonly { name: string; version: number | null; degraded: boolean }[];
  pendingApprovals(): Promise<number>;
}

/** A counter that mirrors a monotonic total kept elsewhere (the recorder's own counts). */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > seen) this.inc(now - seen);
      seen = Math.max(seen, now);
    },
  });
}

/** An approval request's outcome: how long the agent's action waited for a human (or for the request to expire). */
export function observeApprovalOutcome(metrics: Metrics, e: ApprovalAuditEvent): void {
  const outcome = APPROVAL_OUTCOMES[e.type];
  // A vote short of the quorum is reported as approved with quorumMet false: the request is still pending.
  // An approved grant running out is also reported as expired (`was: approved`): not a wait for a human.
  if (!outcome || e.data.quorumMet === false || (outcome === 'expired' && e.data.was !== 'pending')) return;
  if (typeof e.data.createdAt !== 'string') return;
  const seconds = (Date.now() - Date.parse(e.data.createdAt)) / 1000;
  if (Number.isFinite(seconds) && seconds >= 0) metrics.approvalDecisionSeconds.observe({ outcome }, seconds);
}

const APPROVAL_OUTCOMES: Partial<Record<ApprovalAuditEvent['type'], string>> = {
  'approval.approved': 'approved',
  'approval.denied': 'denied',
  'approval.expired': 'expired',
};

export function registerServiceGauges(metrics: Metrics, sources: ServiceSources): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'portcullis_redis_up',
    help: '1 when the main Redis connection is ready, 0 while it is down or reconnecting',
    registers,
    collect() {
      this.set(sources.redisUp() ? 1 : 0);
    },
  });
  mirroredCounter(
    metrics.registry,
    'portcullis_recording_written_events_total',
    'Recorded events acknowledged by Redis',
    () => sources.recorder().written,
  );
  mirroredCounter(
    metrics.registry,
    'portcullis_recording_dropped_events_total',
    'Recorded events dropped (best-effort targets, buffer full or Redis away)',
    () => sources.recorder().dropped,
  );
  mirroredCounter(
    metrics.registry,
    'portcullis_recording_refused_events_total',
    'Events refused by the recorder, which refused the action on fail-closed targets',
    () => sources.recorder().refused,
  );
  // One series per policy (policies are few, named by their authors): the version this replica enforces.
  new Gauge({
    name: 'portcullis_policy_version',
    help: 'The version of each policy this replica enforces',
    labelNames: ['policy'],
    registers,
    collect() {
      this.reset();
      for (const p of sources.policies()) if (p.version !== null) this.set({ policy: p.name }, p.version);
    },
  });
  new Gauge({
    name: 'portcullis_policy_degraded',
    help: '1 for a policy whose current version does not compile (an earlier one, or nothing in its scope, is enforced)',
    labelNames: ['policy'],
    registers,
    collect() {
      this.reset();
      for (const p of sources.policies()) this.set({ policy: p.name }, p.degraded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'portcullis_approvals_pending',
    help: 'Approval requests waiting for a human (all replicas: read from Redis at scrape)',
    registers,
    async collect() {
      this.set(await sources.pendingApprovals().catch(() => Number.NaN));
    },
  });
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
