/**
 * The PostgreSQL path's throughput: `pgbench -S` (select-only, 4 clients) against the same real PostgreSQL directly,
 * through the network Envoy stand-in with a bare echo processor, and through the stand-in with Portcullis (login,
 * classification, decision, recording and masking of every statement), in one run: one unmeasured warm-up run of
 * each side, then the three alternating over ROUNDS rounds, in the order direct, echo, ours and then the reverse, so
 * that neither processor always runs first. Prints the median TPS of each, ours / echo (bar ≥ 80%; goal ≥ 95%) as
 * the median of the rounds' own ratios and as the ratio of the medians, the processors' CPU time per transaction, and
 * Redis's (INFO cpu: the recording's appends, which compete for the same cores). Then the classification cost per
 * statement for a 3-join SELECT, uncached (a new text each time) and cached (bar ≤ 60 µs and ≤ 5 µs). And each
 * processor's round trip as the stand-in times it (its mean, median and 99th percentile, and the part of the mean
 * spent in trips over 1 ms, the stalls), which shows whether ours loses its TPS to its own work or to stalls.
 *
 * Why the rounds' own ratios: the machine's speed drifts by tens of percent over seconds (a shared virtual machine:
 * the direct TPS of one run ranged 43,637-71,262 across its rounds). Within a round echo and ours run back to back, so
 * a slow stretch weighs on both; the ratio of medians can set a fast round's echo against a slow round's ours.
 *
 * The two processors (ours and the echo) run in a child process (bench/processors-child.ts), as Envoy and its ext_proc
 * service are two processes; the stand-ins run in this one; pgbench, PostgreSQL and Redis are processes of their own.
 * On a shared two-core machine read the ratios, not the absolute figures. BENCH_PROCESSOR_NODE_ARGS adds Node flags
 * to the processors' process, e.g. `--cpu-prof --cpu-prof-dir=prof` to see where the processor's time goes.
 * Run: node --import tsx bench/postgres.bench.ts [seconds per run=4] [rounds=7]
 */
import { execFile, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { parseSync } from 'libpg-query';
import { classify, loadSqlParser } from '../extproc/postgres/index.ts';
import { startNetworkStandIn } from '../test/envoy/network-stand-in.ts';
import { PG_APP_OWNER, startPostgres } from '../test/harness/postgres.ts';
import { startRedis } from '../test/harness/redis.ts';
import { PG_TARGET } from '../test/postgres/pg-stack.ts';

const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = Number(process.argv[3] ?? 7);
const WARMUP_SECONDS = 3;
const run = promisify(execFile);

interface PgbenchRun {
  tps: number;
  transactions: number;
}

async function pgbench(
  port: number,
  user: string,
  password: string,
  database: string,
  seconds = SECONDS,
): Promise<PgbenchRun> {
  const { stdout } = await run(
    'pgbench',
    [
      '-n',
      '-S',
      '-c',
      '4',
      '-j',
      '2',
      '-T',
      String(seconds),
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      user,
      database,
    ],
    { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' } },
  );
  const tps = /tps = ([0-9.]+) \(without initial connection time\)/.exec(stdout);
  const transactions = /number of transactions actually processed: ([0-9]+)/.exec(stdout);
  if (!tps || !transactions) throw new Error(`pgbench printed no TPS:\n${stdout}`);
  return { tps: Number(tps[1]), transactions: Number(transactions[1]) };
}

/** Redis's own CPU time so far (used_cpu_user + used_cpu_sys of INFO cpu, µs): what recording costs the store. */
async function redisCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** The q-quantile of xs (0 ≤ q ≤ 1), interpolated between the two nearest ranks. */
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
};

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** One round's processor round trips (µs): their mean, median and 99th percentile, and the mean's part in trips over 1 ms. */
interface RoundTripFigures {
  mean: number;
  p50: number;
  p99: number;
  over1ms: number;
}

/**
 * Four clients wait on every round trip, so the mean is what sets the TPS; the part of it spent in trips over a
 * millisecond is what stalls (a collection, a core taken by another process) add, beside the processor's own work.
 */
function roundTripFigures(tripsMs: number[]): RoundTripFigures {
  const us = tripsMs.map((t) => t * 1000);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const n = Math.max(us.length, 1);
  return {
    mean: sum(us) / n,
    p50: quantile(us, 0.5),
    p99: quantile(us, 0.99),
    over1ms: sum(us.filter((t) => t > 1000)) / n,
  };
}

/** Our service and the echo processor in a process of their own (bench/processors-child.ts). */
async function startProcessors(redisUrl: string, dbPort: number, policy: string) {
  const nodeArgs = (process.env.BENCH_PROCESSOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const script = new URL('./processors-child.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', script, 'postgres', redisUrl, String(dbPort), policy],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  let exited: Error | null = null;
  let waiting: ((line: string | Error) => void) | null = null;
  lines.on('line', (line) => waiting?.(line));
  child.once('exit', (code) => {
    exited = new Error(`the processors' process exited (${code})`);
    waiting?.(exited);
  });
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(exited);
      waiting = (line) => {
        waiting = null;
        if (line instanceof Error) reject(line);
        else resolve(line);
      };
    });
  const ready = JSON.parse(await nextLine()) as {
    grpcAddress: string;
    echoAddress: string;
    agentToken: string;
    agent: string;
  };
  return {
    ...ready,
    /** The processors' process's CPU time so far (user + system, µs). */
    async cpuMicros(): Promise<number> {
      const answer = nextLine();
      child.stdin.write('cpu\n');
      const { user, system } = JSON.parse(await answer) as NodeJS.CpuUsage;
      return user + system;
    },
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const redisInfo = new Redis(redis.url);
  const db = await startPostgres();
  const processors = await startProcessors(
    redis.url,
    db.port,
    process.env.BENCH_POLICY ?? 'examples/policies/postgres-guardrails.yaml',
  );
  const upstream = { host: '127.0.0.1', port: db.port };
  const echoEnvoy = await startNetworkStandIn({
    processorAddress: processors.echoAddress,
    upstream,
    timeRoundTrips: true,
  });
  const ourEnvoy = await startNetworkStandIn({
    processorAddress: processors.grpcAddress,
    upstream,
    timeRoundTrips: true,
  });
  const envoys = { echo: echoEnvoy, ours: ourEnvoy };
  try {
    await run(
      'pgbench',
      ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(db.port), '-U', PG_APP_OWNER.user, 'app'],
      {
        env: { ...process.env, PGPASSWORD: PG_APP_OWNER.password },
      },
    );
    const sides = {
      direct: (seconds?: number) => pgbench(db.port, PG_APP_OWNER.user, PG_APP_OWNER.password, 'app', seconds),
      echo: (seconds?: number) => pgbench(echoEnvoy.port, PG_APP_OWNER.user, PG_APP_OWNER.password, 'app', seconds),
      ours: (seconds?: number) => pgbench(ourEnvoy.port, processors.agent, processors.agentToken, PG_TARGET, seconds),
    };
    // One unmeasured run per side first: the JIT compiles the data path over the first thousands of statements, and
    // PostgreSQL reads pgbench_accounts into its buffers. Measured from cold, the first round of ours ran at 60-75 %
    // of its later rounds' CPU efficiency, and the median of three rounds then carried that start-up.
    for (const side of ['direct', 'echo', 'ours'] as const) await sides[side](WARMUP_SECONDS);
    echoEnvoy.roundTrips();
    ourEnvoy.roundTrips();
    const tps: Record<keyof typeof sides, number[]> = { direct: [], echo: [], ours: [] };
    // The processors' CPU time per transaction (µs): what each processor costs, whatever the machine's load does to
    // the latency-bound TPS of four clients. Redis's CPU for ours (the recording's appends) is not in that figure but
    // competes for the same cores, so it is measured beside it.
    const cpu: Record<'echo' | 'ours', number[]> = { echo: [], ours: [] };
    const redisCpu: number[] = [];
    const ratios: number[] = [];
    // Each processor's round trips as the stand-in times them, per round: where ours' extra latency comes from.
    const trips: Record<'echo' | 'ours', RoundTripFigures[]> = { echo: [], ours: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (['direct', 'echo', 'ours'] as const) : (['ours', 'echo', 'direct'] as const);
      for (const side of order) {
        const before = await processors.cpuMicros();
        const redisBefore = await redisCpuMicros(redisInfo);
        const r = await sides[side]();
        if (side !== 'direct') {
          cpu[side].push(((await processors.cpuMicros()) - before) / r.transactions);
          trips[side].push(roundTripFigures(envoys[side].roundTrips()));
        }
        if (side === 'ours') redisCpu.push(((await redisCpuMicros(redisInfo)) - redisBefore) / r.transactions);
        tps[side].push(r.tps);
      }
      ratios.push(tps.ours[round] / tps.echo[round]);
      console.log(
        `round ${round + 1}: direct ${tps.direct[round].toFixed(0)}, echo ${tps.echo[round].toFixed(0)}, ours ${tps.ours[round].toFixed(0)} TPS (ours / echo ${(ratios[round] * 100).toFixed(1)}%); CPU per transaction: echo processor ${cpu.echo[round].toFixed(0)} µs, ours ${cpu.ours[round].toFixed(0)} µs + Redis ${redisCpu[round].toFixed(0)} µs`,
      );
    }
    const [d, e, o] = [median(tps.direct), median(tps.echo), median(tps.ours)];
    console.log(
      `pgbench -S -c 4, ${SECONDS} s × ${ROUNDS} rounds, median TPS: direct ${d.toFixed(0)}, echo ${e.toFixed(0)}, ours ${o.toFixed(0)}`,
    );
    console.log(
      `ours / echo = ${percent(median(ratios))} (median of the rounds' ratios; bar ≥ 80%, goal ≥ 95%); ratio of the medians ${percent(o / e)}; echo / direct = ${percent(e / d)}`,
    );
    // How far one run's figure can be trusted: the spread of the rounds' own ratios on this machine.
    console.log(
      `the rounds' ratios: ${percent(quantile(ratios, 0))}–${percent(quantile(ratios, 1))}, middle half ${percent(quantile(ratios, 0.25))}–${percent(quantile(ratios, 0.75))}`,
    );
    console.log(
      `CPU per transaction (median): echo processor ${median(cpu.echo).toFixed(0)} µs, ours ${median(cpu.ours).toFixed(0)} µs + Redis ${median(redisCpu).toFixed(0)} µs`,
    );
    const trip = (side: 'echo' | 'ours'): string => {
      const f = (k: keyof RoundTripFigures): string => median(trips[side].map((t) => t[k])).toFixed(0);
      return `${side} mean ${f('mean')} µs, p50 ${f('p50')}, p99 ${f('p99')}, of which over 1 ms ${f('over1ms')} µs a message`;
    };
    console.log(`processor round trip (medians of the rounds): ${trip('echo')}; ${trip('ours')}`);
  } finally {
    redisInfo.disconnect();
    await ourEnvoy.close();
    await echoEnvoy.close();
    await processors.close();
    await db.close();
    await redis.close();
  }

  await loadSqlParser();
  const join3 =
    'SELECT o.id, c.name, p.amount FROM orders o JOIN customers c ON c.id = o.customer_id '
    + 'JOIN payments p ON p.order_id = o.id JOIN regions r ON r.id = c.region_id WHERE o.id = $1';
  const N = 2000;
  // Warm-up (the JIT compiles the tree walk after a few thousand statements), then rounds alternating the
  // classification and the parser alone on as many new texts, so that a load spike weighs on both; medians reported.
  for (let i = 0; i < 3000; i++) classify(`${join3} /* warm ${i} */`);
  const perText = (run: (i: number) => unknown): number => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) run(i);
    return ((performance.now() - t0) * 1000) / N;
  };
  const uncached: number[] = [];
  const parserOnly: number[] = [];
  for (let round = 0; round < 5; round++) {
    uncached.push(perText((i) => classify(`${join3} /* ${round} ${i} */`)));
    // The parser alone (libpg-query's parse and its JSON): what classification adds is the difference.
    parserOnly.push(perText((i) => parseSync(`${join3} /* parser ${round} ${i} */`)));
  }
  const cached = perText(() => classify(join3));
  console.log(
    `classification of a 3-join SELECT: ${median(uncached).toFixed(1)} µs uncached (bar ≤ 60; the parser alone ${median(parserOnly).toFixed(1)} µs), ${cached.toFixed(2)} µs cached (bar ≤ 5)`,
  );
}

await main();
