/** `portcullis sql classify 'SQL'`: prints what the gateway reads in a statement; exit status 1 if it does not parse. */
import { sqlClassifyReport } from '../../postgres/index.ts';
import type { CliCommand } from '../types.ts';

const USAGE = "usage: portcullis sql classify 'SQL'\n";

export const sqlCommand: CliCommand = async (argv, io) => {
  if (argv[0] !== 'classify' || argv.length !== 2) {
    io.stderr.write(USAGE);
    return 2;
  }
  const report = await sqlClassifyReport(argv[1]);
  io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 'error' in report ? 1 : 0;
};
