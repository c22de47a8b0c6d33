/** A CLI subcommand: gets its own argv (after the command words) and the process streams; returns the exit code. */
export interface CliIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}
export type CliCommand = (argv: string[], io: CliIO) => Promise<number>;
