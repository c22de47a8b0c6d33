import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newHealthClient } from '../../extproc/envoy-api/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { startTestService, type TestService } from '../harness/service.ts';

let redis: TestRedis;
let svc: TestService;
before(async () => {
  redis = await startRedis();
  svc = await startTestService({ redisUrl: redis.url });
});
after(async () => {
  await redis.close();
});

function check(address: string): Promise<string> {
  const client = newHealthClient(address);
  return new Promise((resolve, reject) => {
    client.Check({ service: '' }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res?.status ?? 'UNKNOWN');
    });
  });
}

test('Envoy can health-check the gRPC server (grpc.health.v1)', async () => {
  assert.equal(await check(`127.0.0.1:${svc.grpcPort}`), 'SERVING');
});

test('Prometheus metrics are served on their own listener', async () => {
  const res = await fetch(svc.metricsUrl);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /# TYPE portcullis_decisions_total counter/);
  assert.match(text, /portcullis_process_cpu_seconds_total/);
  assert.match(text, /\nportcullis_recording_buffered_events \d+\n/);
  assert.match(text, /\nportcullis_recording_oldest_unacknowledged_seconds [\d.]+\n/);
});

test('stopping (what SIGTERM does) turns health NOT_SERVING for watchers, then closes every listener', async () => {
  const client = newHealthClient(`127.0.0.1:${svc.grpcPort}`) as unknown as {
    Watch(req: object): NodeJS.EventEmitter;
    close(): void;
  };
  const statuses: string[] = [];
  const watch = client.Watch({ service: '' });
  watch.on('data', (r: { status: string }) => statuses.push(r.status));
  watch.on('error', () => undefined);
  while (!statuses.length) await new Promise((r) => setTimeout(r, 10));
  await svc.close();
  client.close();
  assert.deepEqual(statuses.slice(0, 2), ['SERVING', 'NOT_SERVING']);
  await assert.rejects(fetch(`${svc.adminUrl}/v1/policies`));
  await assert.rejects(check(`127.0.0.1:${svc.grpcPort}`));
});
