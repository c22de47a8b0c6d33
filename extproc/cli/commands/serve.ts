/**
 * `portcullis serve [--config FILE]`: runs the service until SIGTERM/SIGINT, then drains and exits 0. Start-up is all
 * or nothing: a bad config, a port in use or an unreachable Redis prints one line naming the value at fault and exits
 * 1, with whatever had started stopped again (the local redis-server included). A signal that arrives while starting
 * stops the service as soon as it is up.
 */
import { Command } from 'commander';
import { dataPathAdapters } from '../../service/adapters.ts';
import { loadConfig } from '../../service/config.ts';
import { type Service, startService } from '../../service/service.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

export const serveCommand: CommandBuilder = ({ io, run }) =>
  new Command('serve')
    .description('run the gateway service: gRPC for Envoy, the admin API, metrics')
    .option(
      '-c, --config <file>',
      'configuration file, YAML or JSON (default: $PORTCULLIS_CONFIG, else built-in defaults)',
    )
    .addHelpText(
      'after',
      '\nEnvironment: REDIS_URL, PORTCULLIS_DATA_DIR, PORTCULLIS_GRPC_PORT, PORTCULLIS_ADMIN_PORT, PORTCULLIS_METRICS_PORT,\nPORTCULLIS_LISTEN_HOST, PORTCULLIS_LOG_LEVEL, PORTCULLIS_LOCAL_REDIS_PORT (docs/operations.md).',
    )
    .action(
      run(async (opts: { config?: string }) => {
        let signalled = false;
        let wake = (): void => {};
        const onSignal = (): void => {
          signalled = true;
          wake();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        try {
          let service: Service;
          try {
            const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), env: io.env });
            service = await startService(config, { adapters: dataPathAdapters(config) });
          } catch (err) {
            io.stderr.write(`portcullis serve: ${(err as Error).message}\n`);
            return EXIT.failed;
          }
          if (service.adminTokenPath) io.stderr.write(`admin token written to ${service.adminTokenPath}\n`);
          io.stderr.write(
            `portcullis: gRPC on :${service.grpcPort}, admin API on ${service.adminUrl}, metrics on ${service.metricsUrl}\n`,
          );
          if (!signalled) await new Promise<void>((resolve) => (wake = resolve));
          await service.stop();
          return EXIT.ok;
        } finally {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
      }),
    );
