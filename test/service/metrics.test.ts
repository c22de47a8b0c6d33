/**
 * The metrics operators run on (issue 20), read from the service's own /metrics as Prometheus would: Redis health,
 * the enforced policy versions, approvals pending and how long they waited, the recorder's totals, masking findings.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createMetrics } from '../../extproc/service/metrics.ts';
import { DecisionMetrics } from '../../extproc/spine/decision-metrics.ts';
import { sqlAction } from '../approvals/fixtures.ts';
import { waitFor } from '../harness/ports.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;
before(async () => {
  redis = await startRedis();
  svc = await startTestService({ redisUrl: redis.url });
});
after(async () => {
  await svc.close();
  await redis.close();
});

const scrape = async (): Promise<string> => (await fetch(svc.metricsUrl)).text();
const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('Redis health, the enforced policy version, the recorder totals', async () => {
  const text = await scrape();
  assert.equal(value(text, 'portcullis_redis_up'), 1);
  assert.equal(value(text, 'portcullis_policy_version{policy="kubernetes-guardrails"}'), 1);
  assert.equal(value(text, 'portcullis_policy_degraded{policy="kubernetes-guardrails"}'), 0);
  assert.equal(value(text, 'portcullis_policy_reload_failures_total'), 0);
  for (const name of ['written', 'dropped', 'refused'])
    assert.ok(value(text, `portcullis_recording_${name}_events_total`) !== undefined, name);
});

test('approvals pending, then the time a request waited for its approver', async () => {
  const bob = await svc.principal('bob', ['approver'], ['db-owners']);
  const check = await svc.core.approvals.check(sqlAction('DELETE FROM orders WHERE id = 1'));
  assert.equal(check.status, 'pending');
  assert.equal(value(await scrape(), 'portcullis_approvals_pending'), 1);
  const approved = await svc.call(bob.token, 'POST', `/v1/approvals/${check.requestId}/approve`, {});
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const text = await scrape();
  assert.equal(value(text, 'portcullis_approvals_pending'), 0);
  assert.equal(value(text, 'portcullis_approval_decision_seconds_count{outcome="approved"}'), 1);
});

test('masking findings are counted by protocol and entity', async () => {
  const metrics = createMetrics();
  const spine = new DecisionMetrics(metrics);
  spine.masked('kubernetes', [
    { entity: 'EMAIL_ADDRESS', count: 2 },
    { entity: 'CREDIT_CARD', count: 1 },
  ]);
  spine.masked('kubernetes', [{ entity: 'EMAIL_ADDRESS', count: 1 }]);
  const text = await metrics.registry.metrics();
  assert.equal(value(text, 'portcullis_masking_findings_total{protocol="kubernetes",entity="EMAIL_ADDRESS"}'), 3);
  assert.equal(value(text, 'portcullis_masking_findings_total{protocol="kubernetes",entity="CREDIT_CARD"}'), 1);
});

test('decisions are counted by protocol, action and reason, and timed in cumulative buckets', async () => {
  const metrics = createMetrics();
  const spine = new DecisionMetrics(metrics);
  spine.decided('postgres', 'allow', 'policy');
  spine.decided('postgres', 'allow', 'policy');
  spine.decided('postgres', 'deny', 'policy-deny');
  spine.took('postgres', 0.00005);
  spine.took('postgres', 0.002);
  spine.took('postgres', 0.002);
  spine.took('postgres', 3);
  const text = await metrics.registry.metrics();
  assert.match(text, /# TYPE portcullis_decisions_total counter/);
  assert.match(text, /# TYPE portcullis_decision_seconds histogram/);
  assert.equal(value(text, 'portcullis_decisions_total{protocol="postgres",action="allow",reason="policy"}'), 2);
  assert.equal(value(text, 'portcullis_decisions_total{protocol="postgres",action="deny",reason="policy-deny"}'), 1);
  const bucket = (le: string) => value(text, `portcullis_decision_seconds_bucket{le="${le}",protocol="postgres"}`);
  assert.equal(bucket('0.0001'), 1);
  assert.equal(bucket('0.001'), 1);
  assert.equal(bucket('0.005'), 3);
  assert.equal(bucket('0.5'), 3);
  assert.equal(bucket('+Inf'), 4);
  assert.equal(value(text, 'portcullis_decision_seconds_count{protocol="postgres"}'), 4);
  assert.equal(value(text, 'portcullis_decision_seconds_sum{protocol="postgres"}'), 3.00405);
});

test('Redis down: redis_up drops to 0 and comes back', async () => {
  await redis.stop();
  await waitFor(async () => value(await scrape(), 'portcullis_redis_up') === 0, 20_000, 'redis_up 0');
  await redis.start();
  await waitFor(async () => value(await scrape(), 'portcullis_redis_up') === 1, 20_000, 'redis_up 1');
});
