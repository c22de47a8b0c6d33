/**
 * `portcullis health [--address HOST:PORT]`: asks a running service's gRPC server what Envoy's health check asks
 * (grpc.health.v1 Check) and exits 0 only for SERVING. The image's HEALTHCHECK runs it.
 */
import { Command } from 'commander';
import { newHealthClient } from '../../envoy-api/index.ts';
import { CliFailure } from '../admin-client.ts';
import { positiveInt } from '../parse.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

export const healthCommand: CommandBuilder = ({ io, run }) =>
  new Command('health')
    .description("check a running service's gRPC health (grpc.health.v1): exit 0 when SERVING, 1 otherwise")
    .option('--address <host:port>', 'the gRPC server (default: 127.0.0.1 and $PORTCULLIS_GRPC_PORT or 50051)')
    .option('--timeout <seconds>', 'give up after this long', positiveInt('--timeout'), 3)
    .action(
      run(async (opts: { address?: string; timeout: number }) => {
        const address = opts.address ?? `127.0.0.1:${io.env.PORTCULLIS_GRPC_PORT || 50051}`;
        const client = newHealthClient(address);
        try {
          const status = await new Promise<string>((resolve, reject) => {
            client.Check({ service: '' }, { deadline: Date.now() + opts.timeout * 1000 }, (err, res) =>
              err ? reject(err) : resolve(res?.status ?? 'UNKNOWN'),
            );
          });
          io.stdout.write(`${address}: ${status}\n`);
          return status === 'SERVING' ? EXIT.ok : EXIT.failed;
        } catch (err) {
          throw new CliFailure(`error: no gRPC health answer from ${address}: ${(err as Error).message}`);
        } finally {
          client.close();
        }
      }),
    );
