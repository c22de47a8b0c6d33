/** The CLI's boundary types: the process streams a command writes to, and the shape of a command module. */
import type { Command } from 'commander';

export interface CliIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** What a command's actions get: the streams, and `run`, which turns an action's result into the exit code. */
export interface CliContext {
  io: CliIO;
  run<A extends unknown[]>(action: (...args: A) => Promise<number> | number): (...args: A) => Promise<void>;
}

/** A command module's export: builds the command (name, options, subcommands, actions) on commander. */
export type CommandBuilder = (ctx: CliContext) => Command;

/** Exit codes, the same for every command (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed: an API error, a lint problem, an unreachable server, a file that cannot be read. */
  failed: 1,
  /** The command line does not parse: unknown command or flag, missing argument or value. */
  usage: 2,
  /** `sessions verify`: the recording's hash chain is broken. */
  tampered: 3,
} as const;
