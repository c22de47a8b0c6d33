/**
 * An interactive shell's input, one line at a time, best effort: the gateway keeps what the agent types until Enter,
 * rebuilds the line from the keystrokes (printable characters; Backspace, Ctrl-U and Ctrl-W edit it), decides it as a
 * `shell-line` action, and only then sends it to the target — whose shell echoes it and runs it — or shows the refusal
 * and sends an empty line for a fresh prompt. What the gateway cannot follow is not sent at all: cursor and history
 * keys (escape sequences), Tab completion and other control characters are dropped, with one notice. Ctrl-C and
 * Ctrl-D (on an empty line) pass, so a running command can be interrupted and the shell left.
 *
 * Best effort means: every submitted line is decided as a command line, also when the target is not at a prompt (a
 * program reading its input gets only the lines the policy allows), and a full-screen program cannot be driven.
 */
import { randomUUID } from 'node:crypto';
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { ActionRun, FinalOutcome, Refusal, Session } from '../spine/index.ts';
import { refusal } from '../spine/index.ts';
import type { AgentConnection } from './agent-connection.ts';
import { classifyCommandLine } from './command-line.ts';
import { commandSection } from './ssh-action.ts';
import { refusalLine } from './ssh-refusal.ts';

/** Longest line kept; longer input is refused when submitted. */
const MAX_LINE_BYTES = 16 * 1024;

export interface ShellLinesDeps {
  conn: AgentConnection;
  /** The terminal session the line actions belong to. */
  terminal: Session;
  /** The shell's own (allowed) action: what the gateway writes to the terminal is recorded as its output. */
  shell: ActionRun;
  upstream: ClientChannel;
  agent: ServerChannel;
  gone: AbortSignal;
}

export class ShellLines {
  private line: number[] = [];
  private overlong = false;
  /** Inside an escape sequence: skipping until its final byte. */
  private escape: 'none' | 'esc' | 'csi' | 'ss3' = 'none';
  private noticeShown = false;
  /** Input is handled in order: a line waiting for its decision holds back what was typed after it. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ShellLinesDeps) {}

  input(data: Buffer): void {
    this.queue = this.queue
      .then(() => this.consume(data))
      .catch((err: unknown) => {
        this.deps.conn.fault(err);
        this.deps.agent.close();
      });
  }

  private async consume(data: Buffer): Promise<void> {
    for (const byte of data) {
      if (this.deps.gone.aborted) return;
      if (this.escape !== 'none') {
        this.skipEscape(byte);
        continue;
      }
      switch (byte) {
        case 0x0d:
        case 0x0a:
          await this.submit();
          break;
        case 0x7f:
        case 0x08:
          this.eraseChar();
          break;
        case 0x15: // Ctrl-U
          this.line = [];
          break;
        case 0x17: // Ctrl-W
          this.eraseWord();
          break;
        case 0x03: // Ctrl-C: interrupts what runs, and drops the line being typed
          this.line = [];
          this.deps.upstream.write(Buffer.from([0x03]));
          break;
        case 0x04: // Ctrl-D: end of input on an empty line
          if (this.line.length === 0) this.deps.upstream.write(Buffer.from([0x04]));
          break;
        case 0x1b:
          this.escape = 'esc';
          this.notice();
          break;
        default:
          if (byte < 0x20) {
            this.notice();
          } else if (this.line.length < MAX_LINE_BYTES) {
            this.line.push(byte);
          } else {
            this.overlong = true;
          }
      }
    }
  }

  private skipEscape(byte: number): void {
    if (this.escape === 'esc') {
      this.escape = byte === 0x5b ? 'csi' : byte === 0x4f ? 'ss3' : 'none';
      return;
    }
    // CSI ends with a byte in 0x40–0x7e; SS3 is one byte.
    if (this.escape === 'ss3' || (byte >= 0x40 && byte <= 0x7e)) this.escape = 'none';
  }

  private eraseChar(): void {
    // One UTF-8 character: continuation bytes (10xxxxxx) and the lead byte before them.
    while (this.line.length > 0) {
      const b = this.line.pop() as number;
      if ((b & 0xc0) !== 0x80) break;
    }
  }

  private eraseWord(): void {
    while (this.line.length > 0 && this.line[this.line.length - 1] === 0x20) this.line.pop();
    while (this.line.length > 0 && this.line[this.line.length - 1] !== 0x20) this.line.pop();
  }

  private notice(): void {
    if (this.noticeShown) return;
    this.noticeShown = true;
    this.show(
      '\r\nportcullis: line editing, history and completion keys are not passed through the gateway; type whole lines\r\n',
    );
  }

  private async submit(): Promise<void> {
    const text = Buffer.from(this.line).toString('utf8');
    const overlong = this.overlong;
    this.line = [];
    this.overlong = false;
    if (text.trim() === '' && !overlong) {
      this.deps.upstream.write('\r');
      return;
    }
    const { conn, terminal } = this.deps;
    const expired = await conn.revalidate();
    if (expired) return this.refused(text, expired);
    const run = conn.deps.spine.begin(terminal, randomUUID());
    let outcome: FinalOutcome | null;
    const classified = overlong ? null : classifyCommandLine(text);
    if (!classified?.ok) {
      const error = classified ? classified.error : `line longer than ${MAX_LINE_BYTES} bytes`;
      outcome = run.refuse(
        refusal('bad-request', `the gateway cannot inspect this command line: ${error}`, 'unparsable-command'),
        { kind: 'shell-line', command: text, error },
      );
    } else {
      outcome = await conn.decide(
        run,
        { kind: 'shell-line', pty: true, ...commandSection(text, classified.line) },
        this.deps.gone,
      );
    }
    if (!outcome) return;
    if (outcome.kind === 'refuse') return this.refused(text, outcome.refusal);
    this.deps.upstream.write(`${text}\r`);
  }

  /** Shows the line and why it was refused, then asks the target's shell for a fresh prompt. */
  private refused(text: string, r: Refusal): void {
    this.show(`${text}\r\n${refusalLine(r)}\r\n`);
    this.deps.upstream.write('\r');
  }

  /** Writes the gateway's own text to the agent's terminal, and records it as the terminal showed it. */
  private show(text: string): void {
    this.deps.agent.write(text);
    this.deps.shell.terminalOutput({ stream: 'stdout', text });
  }
}
