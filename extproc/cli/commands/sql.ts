/** `portcullis sql classify 'SQL'`: prints what the gateway reads in a statement; exit status 1 if it does not parse. */
import { Command } from 'commander';
import { sqlClassifyReport } from '../../postgres/index.ts';
import { EXIT, type CommandBuilder } from '../types.ts';

export const sqlCommand: CommandBuilder = ({ io, run }) => {
  const cmd = new Command('sql').description('PostgreSQL tools');
  cmd
    .command('classify')
    .description(
      'print the `sql` policy context of SQL text as the PostgreSQL path reads it, offline (docs/postgres.md)',
    )
    .argument('<sql>', "one or more statements, e.g. 'DELETE FROM orders WHERE id = 7'")
    .action(
      run(async (text: string) => {
        const report = await sqlClassifyReport(text);
        io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 'error' in report ? EXIT.failed : EXIT.ok;
      }),
    );
  return cmd;
};
