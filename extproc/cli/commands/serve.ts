/** `portcullis serve [--config FILE]`: runs the service until SIGTERM/SIGINT, then drains and exits. */
import { ConfigError, loadConfig } from '../../service/config.ts';
import { MissingRedisError } from '../../service/local-redis.ts';
import { dataPathAdapters } from '../../service/adapters.ts';
import { type Service, startService } from '../../service/service.ts';
import { parseFlags } from '../admin-client.ts';
import type { CliCommand } from '../types.ts';

export const serveCommand: CliCommand = async (argv, io) => {
  const { flags } = parseFlags(argv);
  let service: Service;
  try {
    const config = loadConfig({ ...(flags.config ? { file: flags.config } : {}), env: io.env });
    service = await startService(config, { adapters: dataPathAdapters(config) });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MissingRedisError) {
      io.stderr.write(`portcullis: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (service.adminTokenPath) io.stderr.write(`admin token written to ${service.adminTokenPath}\n`);
  io.stderr.write(
    `portcullis: gRPC on :${service.grpcPort}, admin API on ${service.adminUrl}, metrics on ${service.metricsUrl}\n`,
  );
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await service.stop();
  return 0;
};
