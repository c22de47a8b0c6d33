/**
 * Recorder throughput: sustained recorded events per second into a local Redis, with the caller-side cost of
 * record() (the data path's cost), beside raw pipelined XADD from this same process as the baseline; with one
 * writer, then with two writers appending to the same sessions (as two replicas serving the same agents would).
 *
 * Redis runs with appendonly no for this run (the harness default is appendonly yes + appendfsync always, which
 * measures the disk, not the recorder). Run: node --import tsx bench/recording.bench.ts [seconds]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { createRecorder, type NewRecordingEvent, verifySession } from '../extproc/recording/index.ts';
import { startRedis } from '../test/harness/redis.ts';

const SECONDS = Number(process.argv[2] ?? 5);
const SESSIONS = 1000;
const BURST = 500;
const BATCH = Number(process.env.BATCH ?? 2000);
const MAX_BUFFERED = 100_000;
const ANCHOR_KEY = Buffer.from('recording-benchmark-anchor-key!!');

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

interface RunResult {
  rate: number;
  recorded: number;
  dropped: number;
  rebased: number;
  waitedTurns: number;
  latencies: Float64Array;
  loopP99Ms: number;
  loopMaxMs: number;
}

/**
 * `writers` recorders (each its own Redis connection, as replicas would have) share the offered load. `shared`: it is
 * spread round-robin, so every session is appended to by every writer (Kubernetes requests of one agent spread over
 * replicas: the contended case); else each session has one writer (a PostgreSQL or SSH connection stays on one
 * replica).
 */
async function runRecorders(
  url: string,
  events: NewRecordingEvent[],
  writers: number,
  shared: boolean,
): Promise<RunResult> {
  const conns = Array.from({ length: writers }, () => new Redis(url));
  const recs = conns.map((redis) =>
    createRecorder({
      redis,
      failureMode: () => 'best-effort',
      batchSize: BATCH,
      maxBuffered: MAX_BUFFERED,
      anchorKey: ANCHOR_KEY,
    }),
  );
  try {
    for (let s = 0; s < SESSIONS; s++)
      recs[0].record({ ...events[s * 3], type: 'session.start', data: { client: 'bench' } });
    await recs[0].flush();
    const started = recs[0].stats().written;

    const latencies = new Float64Array(Math.ceil(SECONDS * 400_000));
    let n = 0;
    let waitedTurns = 0;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const t0 = process.hrtime.bigint();
    const deadline = t0 + BigInt(SECONDS * 1e9);
    let i = 0;
    while (process.hrtime.bigint() < deadline) {
      // Keep the offered load just above what the writers drain, without filling a buffer (no drops).
      if (recs.some((r) => r.stats().buffered > MAX_BUFFERED / 2)) {
        waitedTurns++;
      } else {
        for (let b = 0; b < BURST; b++) {
          const at = i++ % events.length;
          const rec = recs[(shared ? i >> 4 : Math.floor(at / 3)) % writers];
          const e = events[at];
          const s = process.hrtime.bigint();
          rec.record(e);
          if (n < latencies.length) latencies[n++] = Number(process.hrtime.bigint() - s) / 1000;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(recs.map((r) => r.flush()));
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    loop.disable();
    let written = -started;
    let dropped = 0;
    let rebased = 0;
    for (const r of recs) {
      const st = r.stats();
      written += st.written;
      dropped += st.dropped;
      rebased += st.rebased;
    }
    return {
      rate: written / elapsed,
      recorded: i,
      dropped,
      rebased,
      waitedTurns,
      latencies: latencies.slice(0, n).sort(),
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
    };
  } finally {
    await Promise.all(recs.map((r) => r.close()));
    for (const c of conns) c.disconnect();
  }
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
    const one = await runRecorders(server.url, events, 1, false);
    await redis.flushall();
    const split = await runRecorders(server.url, events, 2, false);
    await redis.flushall();
    const two = await runRecorders(server.url, events, 2, true);
    // Every session both writers appended to is one chain, whole, ending at its anchored tip.
    let broken = 0;
    for (let s = 0; s < SESSIONS; s += 97) if (!(await verifySession(redis, `bench-${s}`, ANCHOR_KEY)).valid) broken++;

    const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
    console.log(
      `recording benchmark: ${SESSIONS} concurrent sessions, ${SECONDS}s per run, batch ${BATCH}, Redis appendonly no`,
    );
    console.log(`  raw pipelined XADD (baseline, same process): ${fmt(rawRate)} events/s`);
    for (const [name, r] of [
      ['one writer', one],
      ['two writers, each session on one of them', split],
      ['two writers, every session on both', two],
    ] as const) {
      console.log(
        `  recorder, ${name}: ${fmt(r.rate)} events/s acknowledged = ${(r.rate / rawRate).toFixed(2)} × raw, ${(r.rate / one.rate).toFixed(2)} × one writer`,
      );
      console.log(
        `    ${fmt(r.recorded)} recorded, ${r.dropped} dropped, ${fmt(r.rebased)} chained again after another writer's append, ${r.waitedTurns} producer turns yielded`,
      );
      const l = r.latencies;
      console.log(
        `    record() on the data path: p50 ${percentile(l, 0.5).toFixed(1)} µs, p99 ${percentile(l, 0.99).toFixed(1)} µs, p99.9 ${percentile(l, 0.999).toFixed(1)} µs; event-loop delay p99 ${r.loopP99Ms.toFixed(1)} ms, max ${r.loopMaxMs.toFixed(1)} ms`,
      );
    }
    console.log(`  sampled sessions written by both writers that fail verify: ${broken}`);
    console.log(`  goal ≥ 50,000 events/s (one writer): ${one.rate >= 50_000 ? 'met' : 'NOT met'}`);
  } finally {
    redis.disconnect();
    await server.close();
  }
}

await main();
