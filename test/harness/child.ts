/** A child process as a user's shell runs it: its output collected, waits on what it prints or on its exit. */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './ports.ts';

export interface RunningChild {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects after timeoutMs. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
}

export function startChild(
  command: string,
  args: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv },
): RunningChild {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    output += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    output += c;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    child,
    output: () => output,
    exited,
    async waitForOutput(pattern, timeoutMs = 30_000) {
      let gone: number | string | null = null;
      void exited.then((code) => {
        gone = code;
      });
      const match = await waitFor(
        () => output.match(pattern) ?? (gone === null ? null : 'exited'),
        timeoutMs,
        `${pattern} in the output of ${command} ${args.join(' ')}`,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${output}`);
      });
      if (match === 'exited') throw new Error(`${command} exited (${gone}) before printing ${pattern}:\n${output}`);
      return match as RegExpMatchArray;
    },
  };
}
