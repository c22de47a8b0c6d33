/**
 * The proxy-wasm filter on the TypeScript host (test/wasm-host): its cost per request, allowed and denied, beside the
 * same host running the filter with no snapshot (request id only: the host's own cost plus the smallest filter), and
 * its streaming masking throughput beside the masking core called directly from Node on the same chunks.
 * Run: node --import tsx bench/wasm-filter.bench.ts [requests] [MiB]
 */
import { builtinPlan, loadMaskingEngine } from '../extproc/masking/index.ts';
import { renderPluginConfiguration, type WasmSnapshot } from '../extproc/snapshot/index.ts';
import { type Headers, ProxyWasmHost } from '../test/wasm-host/proxy-wasm-host.ts';
import { FILTER_WASM } from '../test/wasm-host/stand-in-wasm.ts';

const REQUESTS = Number(process.argv[2] ?? 5000);
const MIB = Number(process.argv[3] ?? 32);
const CHUNK = 64 * 1024;

const b64u = (s: string) => Buffer.from(s).toString('base64url');
const TOKEN = `${b64u('{"alg":"EdDSA"}')}.${b64u('{"sub":"planner-1","jti":"0f4c2a9e-live","sid":"s"}')}.${b64u('x'.repeat(64))}`;
const SNAPSHOT: WasmSnapshot = {
  version: 'bench',
  tokenRequired: true,
  revokedTokenIds: Array.from({ length: 50 }, (_, i) => `revoked-${i}`),
  denies: ['exec', 'attach', 'portforward'].flatMap((s) => [
    { code: 403 as const, method: '*', pattern: `/api/v1/namespaces/*/pods/*/${s}`, message: `no ${s}` },
    { code: 403 as const, method: '*', pattern: `/api/v1/pods/*/${s}`, message: `no ${s}` },
  ]),
  masking: Array.from({ length: 10 }, (_, entity) => ({ entity, strategy: 'redact' as const, keep: 0 })),
};

const request = (path: string): Headers => [
  [':authority', 'kube.example'],
  [':path', path],
  [':method', 'GET'],
  [':scheme', 'https'],
  ['authorization', `Bearer ${TOKEN}`],
  ['user-agent', 'kubectl/v1.31.0'],
  ['accept', 'application/json'],
  ['x-request-id', 'from-hcm'],
];

/** One request through the host: request headers, and unless refused, response headers and a small body. */
function oneRequest(host: ProxyWasmHost, path: string): void {
  const s = host.newStream();
  if (!s.onRequestHeaders(request(path), true).localReply) {
    s.onResponseHeaders(
      [
        [':status', '200'],
        ['content-type', 'application/json'],
      ],
      false,
    );
    s.onResponseBody(RESPONSE, true);
  }
  s.finish();
}
const RESPONSE = Buffer.from('{"kind":"PodList","items":[]}');

/** µs per request for each case, rounds of the cases alternating so load changes hit them alike; medians of 7. */
function perRequestMicros(cases: [ProxyWasmHost, string][]): number[] {
  const rounds: number[][] = cases.map(() => []);
  for (const [host, path] of cases) for (let i = 0; i < 500; i++) oneRequest(host, path);
  for (let r = 0; r < 7; r++) {
    cases.forEach(([host, path], c) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < REQUESTS; i++) oneRequest(host, path);
      rounds[c].push(Number(process.hrtime.bigint() - t) / 1e3 / REQUESTS);
    });
  }
  return rounds.map((xs) => xs.sort((a, b) => a - b)[3]);
}

function corpus(): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < MIB * 1024 * 1024; i++) {
    const line =
      i % 12 === 0
        ? `2024-05-01T12:00:${String(i % 60).padStart(2, '0')}Z checkout completed order=${i} card=4111111111111111 mail=jane.doe@example.com\n`
        : `2024-05-01T12:00:${String(i % 60).padStart(2, '0')}Z GET /api/v1/items/${i} 200 latency=${i % 97}ms pod=web-5d8f7c6b9d\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join(''));
}

/** MB/s of each way: one warm-up run each, then 7 rounds running each way once (alternating); the median round. */
function mbPerSecond(bytes: number, ways: (() => void)[]): number[] {
  for (const run of ways) run();
  const runs: number[][] = ways.map(() => []);
  for (let r = 0; r < 7; r++) {
    ways.forEach((run, i) => {
      const t = process.hrtime.bigint();
      run();
      runs[i].push(Number(process.hrtime.bigint() - t) / 1e9);
    });
  }
  return runs.map((xs) => bytes / 1e6 / xs.sort((a, b) => a - b)[3]);
}

const bare = await ProxyWasmHost.start(FILTER_WASM, { pluginConfiguration: '' });
const filter = await ProxyWasmHost.start(FILTER_WASM, {
  pluginConfiguration: renderPluginConfiguration(undefined, SNAPSHOT),
});
const LIST = '/api/v1/namespaces/prod/pods?limit=500';
const EXEC = '/api/v1/namespaces/prod/pods/web-1/exec?command=ls&stdout=true';

console.log(
  `wasm filter benchmark: ${REQUESTS} requests × 7 alternating rounds (median), ${MIB} MiB of log lines streamed in 64 KiB chunks (7 alternating rounds, median)`,
);
const [base, allowed, denied] = perRequestMicros([
  [bare, LIST],
  [filter, LIST],
  [filter, EXEC],
]);
console.log(`baseline: host + filter without snapshot (request id only)   ${base.toFixed(2).padStart(8)} µs/request`);
console.log(
  `allowed request (token shape, 50 revoked ids, 6 deny rules)  ${allowed.toFixed(2).padStart(8)} µs/request`,
);
console.log(`denied request (exec → local 403 Status)                     ${denied.toFixed(2).padStart(8)} µs/request`);
console.log(
  `added cost of the snapshot checks, allowed: ${(allowed - base).toFixed(2)} µs (ratio ${(allowed / base).toFixed(2)})`,
);
console.log(`denied request vs baseline: ratio ${(denied / base).toFixed(2)}`);

const data = corpus();
const engine = await loadMaskingEngine({ hashKey: Buffer.from('bench') });
const plan = builtinPlan();
let out = 0;
const [direct, inFilter] = mbPerSecond(data.length, [
  () => {
    const s = engine.createStream(plan);
    for (let k = 0; k < data.length; k += CHUNK) s.push(data.subarray(k, k + CHUNK));
    s.end();
  },
  () => {
    const s = filter.newStream();
    s.onRequestHeaders(request('/api/v1/namespaces/prod/pods/web/log?follow=true'), true);
    s.onResponseHeaders([[':status', '200']], false);
    out = 0;
    for (let k = 0; k < data.length; k += CHUNK) {
      const r = s.onResponseBody(data.subarray(k, k + CHUNK), k + CHUNK >= data.length);
      out += r.out.length;
    }
    s.responseOut = [];
    s.finish();
  },
]);
if (out === 0 || filter.dead) throw new Error('the filter did not stream');
console.log(`masking core called from Node (engine stream)               ${direct.toFixed(1).padStart(8)} MB/s`);
console.log(`filter on the host (proxy_on_response_body per chunk)       ${inFilter.toFixed(1).padStart(8)} MB/s`);
console.log(`ratio filter / core from Node: ${(inFilter / direct).toFixed(2)}`);
