/**
 * One allowed channel's bytes between the agent and the target: input as sent, output (stdout and stderr, each its
 * own masking stream with bounded carry-over) masked before the agent sees it, flow control both ways, and the
 * target's exit status or signal handed on before the channel closes, as OpenSSH expects.
 */
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { MaskingStream } from '../masking/index.ts';

export type ExitInfo = { code: number } | { signal: string; coreDumped: boolean; message: string };

export interface OutputCapture {
  /** Total masked bytes sent to the agent. */
  bytes: number;
  /** The first `limit` masked bytes, as text, for the recording. */
  text: string;
  truncated: boolean;
}

export interface PipeResult {
  exit: ExitInfo | null;
  stdout: OutputCapture;
  stderr: OutputCapture;
}

export interface PipeOptions {
  /** Masking per output stream (null: the plan masks nothing). */
  stdout: MaskingStream | null;
  stderr: MaskingStream | null;
  /** Bytes of each output stream kept for the recording. */
  captureBytes: number;
  /** Called with each masked piece of output, as text (a terminal's recording). */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /**
   * Agent input goes through this instead of straight upstream (a shell's line discipline); default: written as is.
   */
  input?: (data: Buffer) => void;
}

class Capture {
  private readonly parts: Buffer[] = [];
  private kept = 0;
  bytes = 0;
  private readonly decoder = new TextDecoder();
  constructor(private readonly limit: number) {}
  add(b: Uint8Array): void {
    this.bytes += b.length;
    if (this.kept < this.limit) {
      const take = Math.min(b.length, this.limit - this.kept);
      this.parts.push(Buffer.from(b.subarray(0, take)));
      this.kept += take;
    }
  }
  result(): OutputCapture {
    return {
      bytes: this.bytes,
      text: this.decoder.decode(Buffer.concat(this.parts)),
      truncated: this.bytes > this.kept,
    };
  }
}

export function pipeChannel(agent: ServerChannel, up: ClientChannel, opts: PipeOptions): Promise<PipeResult> {
  return new Promise((resolve) => {
    let exit: ExitInfo | null = null;
    let paused = false;
    const captures = { stdout: new Capture(opts.captureBytes), stderr: new Capture(opts.captureBytes) };
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const send = (stream: 'stdout' | 'stderr', masked: Uint8Array, final: boolean): void => {
      if (masked.length > 0) {
        captures[stream].add(masked);
        // stdout and stderr share the channel's window: either one full pauses the target until the agent drains.
        const sink = stream === 'stdout' ? agent : agent.stderr;
        if (!sink.write(masked) && !paused) {
          paused = true;
          up.pause();
          agent.once('drain', () => {
            paused = false;
            up.resume();
          });
        }
      }
      if (opts.onOutput) {
        const text = decoders[stream].decode(masked, { stream: !final });
        if (text) opts.onOutput(stream, text);
      }
    };
    up.on('error', () => up.close());
    up.on('data', (d: Buffer) => send('stdout', opts.stdout ? opts.stdout.push(d) : d, false));
    up.stderr.on('data', (d: Buffer) => send('stderr', opts.stderr ? opts.stderr.push(d) : d, false));
    up.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, message?: string) => {
      exit =
        code !== null && code !== undefined
          ? { code }
          : { signal: signal ?? 'KILL', coreDumped: !!coreDumped, message: message ?? '' };
    });
    up.once('close', () => {
      send('stdout', opts.stdout ? opts.stdout.end() : new Uint8Array(0), true);
      send('stderr', opts.stderr ? opts.stderr.end() : new Uint8Array(0), true);
      const e = exit as ExitInfo | null;
      if (e && 'code' in e) agent.exit(e.code);
      else if (e) agent.exit(e.signal, e.coreDumped, e.message);
      agent.end();
      resolve({ exit: e, stdout: captures.stdout.result(), stderr: captures.stderr.result() });
    });

    const input =
      opts.input
      ?? ((d: Buffer) => {
        if (!up.write(d)) {
          agent.pause();
          up.once('drain', () => agent.resume());
        }
      });
    agent.on('data', (d: Buffer) => input(d));
    agent.on('end', () => up.end());
    agent.on('close', () => up.close());
    agent.resume();
  });
}
