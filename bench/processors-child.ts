/**
 * The processors of startSplitKubeBench(), in a process of their own: our service and the echo processor, set up by
 * startProcessors(). Prints one JSON line with their addresses and the agent token, and shuts down when its stdin ends.
 * Run by bench/kube-setup.ts: node --import tsx bench/processors-child.ts REDIS_URL API_URL
 */
import { createInterface } from 'node:readline';
import { startProcessors } from './kube-setup.ts';

const [redisUrl, apiUrl] = process.argv.slice(2);
const p = await startProcessors(redisUrl, apiUrl);
process.stdout.write(
  `${JSON.stringify({ grpcAddress: `127.0.0.1:${p.svc.grpcPort}`, echoAddress: p.echo.address, agentToken: p.agentToken })}\n`,
);
// A line "memory" on stdin: one JSON line with this process's memory after a full collection (when run with
// --expose-gc), so that what is measured is what is held, not garbage not yet collected.
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'memory') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.stdout.write(`${JSON.stringify(process.memoryUsage())}\n`);
});
process.stdin.on('end', () => {
  void p.close().then(() => process.exit(0));
});
