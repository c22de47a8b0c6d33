/** The protocol adapters `portcullis serve` runs, configured from the service configuration. */
import { join } from 'node:path';
import { parseDurationMs } from '../common/duration.ts';
import { kubeExtProcAdapter } from '../kube/index.ts';
import { postgresAdapter } from '../postgres/index.ts';
import { sshGatewayAdapter } from '../ssh/index.ts';
import type { DataPathAdapter } from '../streams/index.ts';
import type { ServiceConfig } from './config.ts';

export function dataPathAdapters(config: ServiceConfig): DataPathAdapter[] {
  return [
    kubeExtProcAdapter(),
    postgresAdapter(),
    sshGatewayAdapter({
      host: config.ssh.host,
      port: config.ssh.port,
      hostKeyPath: config.ssh.hostKeyPath ?? join(config.dataDir, 'ssh', 'host_ed25519_key'),
      maxHoldMs: parseDurationMs(config.ssh.maxHold ?? '2m'),
    }),
  ];
}
