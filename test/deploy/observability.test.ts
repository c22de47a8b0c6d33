/**
 * The Grafana dashboard and the Prometheus alert rules in deploy/observability/ refer only to metrics the service
 * exports (a renamed metric turns this red instead of a dashboard going blank in production).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { createMetrics, registerRecorderGauges, registerServiceGauges } from '../../extproc/service/metrics.ts';

const DIR = new URL('../../deploy/observability/', import.meta.url);

async function exported(): Promise<Map<string, string>> {
  const metrics = createMetrics();
  registerRecorderGauges(metrics, () => ({ buffered: 0, oldestUnacknowledgedMs: 0 }));
  registerServiceGauges(metrics, {
    redisUp: () => true,
    recorder: () => ({ written: 0, dropped: 0, refused: 0 }),
    policies: () => [],
    pendingApprovals: async () => 0,
  });
  const all = await metrics.registry.getMetricsAsJSON();
  return new Map(all.map((m) => [m.name, String(m.type)]));
}

/** The metric a series name belongs to (`x_bucket` of histogram `x` is `x`). */
function metricOf(series: string, known: Map<string, string>): string | undefined {
  if (known.has(series)) return series;
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return known.get(base) === 'histogram' || known.get(base) === 'summary' ? base : undefined;
}

function referenced(exprs: string[]): Set<string> {
  return new Set(exprs.flatMap((e) => [...e.matchAll(/\bportcullis_[a-z0-9_]+/g)].map((m) => m[0])));
}

test('every metric the alert rules use is exported; every rule has a severity and a summary', async () => {
  const known = await exported();
  const rules = parse(readFileSync(new URL('prometheus-rules.yaml', DIR), 'utf8')) as {
    groups: {
      rules: { alert: string; expr: string; labels: { severity: string }; annotations: { summary: string } }[];
    }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);
  assert.ok(all.length >= 8);
  for (const r of all) {
    assert.ok(['warning', 'critical'].includes(r.labels.severity), r.alert);
    assert.ok(r.annotations.summary, r.alert);
  }
  const names = referenced(all.map((r) => r.expr));
  for (const n of names) assert.ok(metricOf(n, known), `${n} (alert rules) is not exported`);
});

test('every metric the Grafana dashboard queries is exported, and the issue-20 areas all have a panel', async () => {
  const known = await exported();
  const dash = JSON.parse(readFileSync(new URL('grafana-dashboard.json', DIR), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const names = referenced(dash.panels.flatMap((p) => p.targets.map((t) => t.expr)));
  for (const n of names) assert.ok(metricOf(n, known), `${n} (dashboard) is not exported`);
  for (const m of [
    'portcullis_decisions_total',
    'portcullis_approvals_pending',
    'portcullis_approval_decision_seconds_bucket',
    'portcullis_recording_buffered_events',
    'portcullis_recording_dropped_events_total',
    'portcullis_recording_oldest_unacknowledged_seconds',
    'portcullis_redis_up',
    'portcullis_policy_version',
    'portcullis_policy_reload_failures_total',
    'portcullis_masking_findings_total',
  ])
    assert.ok(names.has(m), `no panel shows ${m}`);
});
