/**
 * Recorder throughput: sustained recorded events per second into a local Redis, with the caller-side cost of
 * record() (the data path's cost), beside raw pipelined XADD from this same process as the baseline.
 *
 * Redis runs with appendonly no for this run (the harness default is appendonly yes + appendfsync always, which
 * measures the disk, not the recorder). Run: node --import tsx bench/recording.bench.ts [seconds]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { createRecorder, type NewRecordingEvent } from '../extproc/recording/index.ts';
import { startRedis } from '../test/harness/redis.ts';

const SECONDS = Number(process.argv[2] ?? 5);
const SESSIONS = 1000;
const BURST = 500;
const BATCH = Number(process.env.BATCH ?? 2000);
const MAX_BUFFERED = 100_000;

function sampleEvents(): NewRecordingEvent[] {
  const out: NewRecordingEvent[] = [];
  for (let s = 0; s < SESSIONS; s++) {
    const base = {
      sessionId: `bench-${s}`,
      agent: `agent-${s % 50}`,
      target: `db-${s % 7}`,
      protocol: 'postgres' as const,
    };
    out.push({
      ...base,
      type: 'action',
      requestId: `r-${s}`,
      data: {
        sql: {
          text: `SELECT id, name, email FROM customers WHERE region = 'eu-west' AND id > ${s} LIMIT 100`,
          statements: ['SelectStmt'],
          readTables: ['customers'],
        },
      },
    });
    out.push({
      ...base,
      type: 'decision',
      requestId: `r-${s}`,
      data: {
        action: 'allow',
        rule: 'read-customers',
        policy: 'prod-db',
        policyVersion: 12,
        reason: 'rule',
        dryRun: false,
      },
    });
    out.push({
      ...base,
      type: 'output',
      requestId: `r-${s}`,
      data: {
        rows: 100,
        columns: ['id', 'name', 'email'],
        sample: [[1, 'A*** B***', 'a***@example.com']],
        bytes: 6120,
      },
    });
  }
  return out;
}

async function rawXadd(redis: Redis, payload: string, total: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < total; sent += BATCH) {
    const pipe = redis.pipeline();
    for (let i = 0; i < BATCH; i++) pipe.xadd(`raw:${(sent + i) % SESSIONS}`, '*', 'e', payload);
    await pipe.exec();
  }
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main(): Promise<void> {
  const server = await startRedis({ appendonly: false });
  const redis = new Redis(server.url);
  await redis.ping();
  try {
    const events = sampleEvents();
    const payload = JSON.stringify({
      ...events[0],
      v: 1,
      seq: 1,
      time: new Date().toISOString(),
      prevHash: '0'.repeat(64),
      hash: 'f'.repeat(64),
    });

    await rawXadd(redis, payload, 50_000); // warm-up
    const rawRate = await rawXadd(redis, payload, 400_000);
    await redis.flushall();

    const rec = createRecorder({
      redis,
      failureMode: () => 'best-effort',
      batchSize: BATCH,
      maxBuffered: MAX_BUFFERED,
    });
    for (let s = 0; s < SESSIONS; s++)
      rec.record({ ...events[s * 3], type: 'session.start', data: { client: 'bench' } });
    await rec.flush();

    const latencies = new Float64Array(Math.ceil(SECONDS * 400_000));
    let n = 0;
    let waitedTurns = 0;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const t0 = process.hrtime.bigint();
    const deadline = t0 + BigInt(SECONDS * 1e9);
    let i = 0;
    while (process.hrtime.bigint() < deadline) {
      // Keep the offered load just above what the writer drains, without filling the buffer (no drops).
      if (rec.stats().buffered > MAX_BUFFERED / 2) {
        waitedTurns++;
      } else {
        for (let b = 0; b < BURST; b++) {
          const e = events[i++ % events.length];
          const s = process.hrtime.bigint();
          rec.record(e);
          if (n < latencies.length) latencies[n++] = Number(process.hrtime.bigint() - s) / 1000;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    const recordedDuring = i;
    await rec.flush();
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    loop.disable();
    const { written, dropped } = rec.stats();
    const recRate = (written - SESSIONS) / elapsed;
    const sorted = latencies.slice(0, n).sort();

    const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
    console.log(
      `recording benchmark: ${SESSIONS} concurrent sessions, ${SECONDS}s, batch ${BATCH}, Redis appendonly no`,
    );
    console.log(`  raw pipelined XADD (baseline, same process): ${fmt(rawRate)} events/s`);
    console.log(
      `  recorder, sustained (acknowledged by Redis): ${fmt(recRate)} events/s  (${fmt(recordedDuring)} recorded, ${dropped} dropped, ${waitedTurns} producer turns yielded)`,
    );
    console.log(`  ratio recorder / raw XADD:                   ${(recRate / rawRate).toFixed(2)}`);
    console.log(
      `  record() call on the data path: p50 ${percentile(sorted, 0.5).toFixed(1)} µs, p99 ${percentile(sorted, 0.99).toFixed(1)} µs, p99.9 ${percentile(sorted, 0.999).toFixed(1)} µs, max ${sorted[sorted.length - 1].toFixed(0)} µs`,
    );
    console.log(
      `  event-loop delay during the run: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
    );
    console.log(`  goal ≥ 50,000 events/s: ${recRate >= 50_000 ? 'met' : 'NOT met'}`);
    await rec.close();
  } finally {
    redis.disconnect();
    await server.close();
  }
}

await main();
