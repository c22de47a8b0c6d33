/**
 * A benchmark's processors in a process of their own, as Envoy and its ext_proc service are two processes, so the
 * stand-in and the clients do not share a thread with the processor they measure. Two shapes:
 *   - Kubernetes (bench/kube-setup.ts): `processors-child.ts REDIS_URL API_URL` — our service and the HTTP echo
 *     processor, set up by startProcessors();
 *   - PostgreSQL (bench/postgres.bench.ts): `processors-child.ts postgres REDIS_URL DB_PORT POLICY` — our service with
 *     the PostgreSQL adapter (startPgService) and the network echo processor.
 * Prints one JSON line with their addresses and the agent token, and shuts down when its stdin ends.
 */
import { createInterface } from 'node:readline';
import { startNetworkEchoProcessor } from '../test/envoy/network-echo-processor.ts';
import { startPgService } from '../test/postgres/pg-stack.ts';
import { startProcessors } from './kube-setup.ts';

interface Running {
  grpcAddress: string;
  echoAddress: string;
  agentToken: string;
  agent?: string;
  close(): Promise<void>;
}

async function start(args: string[]): Promise<Running> {
  if (args[0] === 'postgres') {
    const [, redisUrl = '', dbPort, policy = ''] = args;
    const service = await startPgService(redisUrl, Number(dbPort), { policies: [policy] });
    const echo = await startNetworkEchoProcessor();
    return {
      grpcAddress: `127.0.0.1:${service.svc.grpcPort}`,
      echoAddress: echo.address,
      agentToken: service.agentToken,
      agent: service.agent,
      async close() {
        await echo.close();
        await service.close();
      },
    };
  }
  const [redisUrl = '', apiUrl = ''] = args;
  const p = await startProcessors(redisUrl, apiUrl);
  return {
    grpcAddress: `127.0.0.1:${p.svc.grpcPort}`,
    echoAddress: p.echo.address,
    agentToken: p.agentToken,
    close: p.close,
  };
}

const p = await start(process.argv.slice(2));
const { close, ...ready } = p;
process.stdout.write(`${JSON.stringify(ready)}\n`);
// A line "memory" on stdin: one JSON line with this process's memory after a full collection (when run with
// --expose-gc), so that what is measured is what is held, not garbage not yet collected.
// A line "cpu": one JSON line with this process's CPU time so far (process.cpuUsage(), µs), so that a benchmark can
// divide what the processors spent by the work they did, a figure a loaded machine's scheduling does not distort.
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'cpu') {
    process.stdout.write(`${JSON.stringify(process.cpuUsage())}\n`);
    return;
  }
  if (line !== 'memory') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.stdout.write(`${JSON.stringify(process.memoryUsage())}\n`);
});
process.stdin.on('end', () => {
  void close().then(() => process.exit(0));
});
