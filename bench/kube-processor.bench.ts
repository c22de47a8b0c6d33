/**
 * The Kubernetes processor's own added time, without the Envoy stand-in, TLS or the API server stand-in in the
 * measurement: one ext_proc stream per request, scripted as Envoy sends an allowed GET of a Pod list (request headers,
 * response headers, the response body), over a real gRPC connection, to our service and to the bare echo processor in
 * alternating rounds. The difference is what our processing adds to each request: token check, classification,
 * decision, recording, masking, and the larger answers (header mutations, dynamic metadata, the masked body).
 * Run: node --import tsx bench/kube-processor.bench.ts [streams per round=2000] [rounds=5]
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { newExtProcClient, type ExternalProcessorClient, type ProcessingRequest } from '../extproc/envoy-api/index.ts';
import { TARGET_METADATA } from '../extproc/kube/index.ts';
import { startKubeBench, UPSTREAM_TOKEN } from './kube-setup.ts';

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 5);

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]): number =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );
const headers = (pairs: [string, string][], eos: boolean) => ({
  headers: { headers: pairs.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) },
  end_of_stream: eos,
});

/** One request's stream: each message sent after the previous answer, as Envoy does for BUFFERED bodies. */
function oneStream(client: ExternalProcessorClient, md: grpc.Metadata, messages: ProcessingRequest[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const call = client.Process(md);
    let i = 0;
    call.on('data', () => {
      if (++i < messages.length) call.write(messages[i]);
      else {
        call.end();
        resolve(performance.now() - t0);
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
    call.write(messages[0]);
  });
}

async function main(): Promise<void> {
  const bench = await startKubeBench();
  const podList = await new Promise<Buffer>((resolve, reject) => {
    https
      .get(
        `${bench.apiUrl}/api/v1/namespaces/dev/pods`,
        { ca: bench.apiCaPem, headers: { authorization: `Bearer ${UPSTREAM_TOKEN}`, accept: 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks)));
        },
      )
      .on('error', reject);
  });
  const script = (token: string): ProcessingRequest[] => [
    {
      request_headers: headers(
        [
          [':method', 'GET'],
          [':path', '/api/v1/namespaces/dev/pods'],
          [':authority', 'kube'],
          [':scheme', 'https'],
          ['authorization', `Bearer ${token}`],
          ['accept', 'application/json'],
          ['x-request-id', 'bench'],
        ],
        true,
      ),
    },
    {
      response_headers: headers(
        [
          [':status', '200'],
          ['content-type', 'application/json'],
          ['content-length', String(podList.length)],
        ],
        false,
      ),
    },
    { response_body: { body: podList, end_of_stream: true } },
  ];
  const md = new grpc.Metadata();
  md.add(TARGET_METADATA, 'kube-dev');
  const sides = {
    echo: {
      client: newExtProcClient(bench.echoAddress, undefined, { 'grpc.enable_retries': 0 }),
      messages: script(UPSTREAM_TOKEN),
    },
    portcullis: {
      client: newExtProcClient(`127.0.0.1:${bench.svc.grpcPort}`, undefined, { 'grpc.enable_retries': 0 }),
      messages: script(bench.agentToken),
    },
  };
  /** Latencies (ms, sorted) and the process's CPU time per stream (µs): both sides run in this one process. */
  const run = async (side: keyof typeof sides, n: number): Promise<{ times: number[]; cpu: number }> => {
    const { client, messages } = sides[side];
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) times.push(await oneStream(client, md, messages));
    // The recorder's writes of this side's events belong to its cost.
    await bench.svc.core.recorder.flush();
    const cpu = process.cpuUsage(cpu0);
    return { times: times.sort((a, b) => a - b), cpu: (cpu.user + cpu.system) / n };
  };
  try {
    await run('echo', 500);
    await run('portcullis', 500);
    const rounds: { e50: number; o50: number; e99: number; o99: number; ecpu: number; ocpu: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const e = await run('echo', N);
      const o = await run('portcullis', N);
      rounds.push({
        e50: pct(e.times, 50),
        o50: pct(o.times, 50),
        e99: pct(e.times, 99),
        o99: pct(o.times, 99),
        ecpu: e.cpu,
        ocpu: o.cpu,
      });
    }
    const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;
    console.log(
      `${N} streams per side per round, ${ROUNDS} rounds: an allowed GET of a ${podList.length}-byte Pod list, scripted ext_proc messages over gRPC`,
    );
    console.log(
      `  echo       p50 ${us(median(rounds.map((x) => x.e50)))}  p99 ${us(median(rounds.map((x) => x.e99)))}`,
    );
    console.log(
      `  portcullis p50 ${us(median(rounds.map((x) => x.o50)))}  p99 ${us(median(rounds.map((x) => x.o99)))}`,
    );
    console.log(
      `  added      p50 ${us(median(rounds.map((x) => x.o50 - x.e50)))}  p99 ${us(median(rounds.map((x) => x.o99 - x.e99)))}`,
    );
    console.log(`  added p50 per round: ${rounds.map((x) => us(x.o50 - x.e50)).join(' ')}`);
    console.log(
      `  CPU per request (client, processor and recorder, one process): echo ${median(rounds.map((x) => x.ecpu)).toFixed(0)} µs, portcullis ${median(rounds.map((x) => x.ocpu)).toFixed(0)} µs, added ${median(rounds.map((x) => x.ocpu - x.ecpu)).toFixed(0)} µs`,
    );
  } finally {
    for (const s of Object.values(sides)) s.client.close();
    await bench.close();
  }
}

await main();
