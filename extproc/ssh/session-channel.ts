/**
 * One SSH `session` channel: the requests that prepare it (pty, env, window size) and the one that starts it (exec,
 * shell or subsystem), each decided through the spine. Environment variables are filtered (only the locale and
 * TZ pass: the rest can change what a command does, e.g. LD_PRELOAD, BASH_ENV, PATH); X11 and agent forwarding are
 * never offered.
 */
import { randomUUID } from 'node:crypto';
import type { ClientChannel, PseudoTtyInfo, ServerChannel, Session as SshSession } from 'ssh2';
import type { ActionRun, FinalOutcome } from '../spine/index.ts';
import { refusal } from '../spine/index.ts';
import { AgentConnection } from './agent-connection.ts';
import { pipeChannel, type PipeResult } from './channel-pipe.ts';
import { classifyCommandLine } from './command-line.ts';
import { commandSection } from './ssh-action.ts';
import { ShellLines } from './shell-lines.ts';
import { openChannel } from './upstream.ts';

const PASSED_ENV = /^(LANG|LANGUAGE|LC_[A-Z]+|TZ)$/;
const MAX_ENV = 32;

export class SessionChannel {
  private pty: PseudoTtyInfo | null = null;
  private readonly env: Record<string, string> = {};
  private upstream: ClientChannel | null = null;
  /** Aborted when the agent closes this channel. */
  private readonly gone = new AbortController();

  constructor(
    private readonly conn: AgentConnection,
    private readonly session: SshSession,
  ) {}

  attach(): void {
    const s = this.session;
    s.on('pty', (accept, _reject, info) => {
      this.pty = info;
      accept?.();
    });
    s.on('window-change', (accept, _reject, info) => {
      if (this.pty) Object.assign(this.pty, { cols: info.cols, rows: info.rows });
      this.upstream?.setWindow(info.rows, info.cols, info.height, info.width);
      accept?.();
    });
    s.on('env', (accept, reject, info) => {
      if (PASSED_ENV.test(info.key) && Object.keys(this.env).length < MAX_ENV) {
        this.env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    s.on('signal', (accept, _reject, info) => {
      this.upstream?.signal(info.name);
      accept?.();
    });
    s.on('x11', (_accept, reject) => {
      this.conn.refuseFeature({ kind: 'x11' }, 'X11 forwarding is not offered by the gateway');
      reject?.();
    });
    s.on('auth-agent', (_accept, reject) => {
      this.conn.refuseFeature({ kind: 'agent-forwarding' }, 'agent forwarding is not offered by the gateway');
      reject?.();
    });
    // The request is accepted at once, before it is decided: ssh2 drops input (and the end of input) that arrives on a
    // session channel not yet started, and OpenSSH sends both right after the request. The agent learns the decision
    // from the channel itself (output, or the refusal on stderr and exit status 126).
    s.on('exec', (accept, _reject, info) => this.start(accept, (ch) => this.exec(ch, info.command)));
    s.on('shell', (accept) => this.start(accept, (ch) => this.shell(ch)));
    s.on('subsystem', (accept, _reject, info) => this.start(accept, (ch) => this.subsystem(ch, info.name)));
    s.on('close', () => this.gone.abort(new Error('the agent closed the channel')));
  }

  private start(accept: () => ServerChannel | undefined, fn: (channel: ServerChannel) => Promise<void>): void {
    const channel = accept();
    if (!channel) return;
    // A write after the agent closed the channel is no fault of the action.
    channel.on('error', (err: Error) => this.conn.log.debug({ err: err.message }, 'ssh channel error'));
    // Nothing is read from the agent until the action is allowed and its upstream channel is open.
    channel.pause();
    this.conn
      .revalidate()
      .then((r) => (r ? AgentConnection.refuseOnChannel(channel, r, this.pty !== null) : fn(channel)))
      .catch((err: unknown) => {
        this.conn.fault(err);
        channel.close();
      });
  }

  private async exec(channel: ServerChannel, command: string): Promise<void> {
    const run = this.conn.begin();
    const classified = classifyCommandLine(command);
    const pty = this.pty !== null;
    let outcome: FinalOutcome | null;
    if (!classified.ok) {
      outcome = run.refuse(
        refusal(
          'bad-request',
          `the gateway cannot inspect this command line: ${classified.error}`,
          'unparsable-command',
        ),
        { kind: 'exec', command, pty, error: classified.error },
      );
    } else {
      outcome = await this.decide(run, { kind: 'exec', pty, ...commandSection(command, classified.line) });
    }
    if (!outcome) return;
    if (outcome.kind === 'refuse') return AgentConnection.refuseOnChannel(channel, outcome.refusal, pty);
    const up = await this.open(run, channel, outcome, (client, cb) =>
      client.exec(command, { env: this.env, ...(this.pty ? { pty: this.ptyOptions() } : {}) }, cb),
    );
    if (!up) return;
    const result = await this.pipe(run, channel, up);
    run.output(outputRecord(result));
  }

  /**
   * An interactive shell. With a pty it is a terminal session of its own (recorded from its size on, exportable as an
   * asciicast): the shell request, then each line the agent submits, are actions of that session.
   */
  private async shell(channel: ServerChannel): Promise<void> {
    const pty = this.pty;
    const session = this.conn.session;
    if (!session) return;
    if (!pty) {
      // Without a terminal a shell reads commands as a script would: nothing marks where one command ends, so nothing
      // could be decided before it runs.
      const run = this.conn.begin();
      const r = run.refuse(
        refusal('unsupported', 'a shell without a terminal cannot be inspected; use exec', 'shell-without-pty'),
        this.conn.action({ kind: 'shell', pty: false }).recorded,
      );
      if (r.kind === 'refuse') AgentConnection.refuseOnChannel(channel, r.refusal, false);
      return;
    }
    const spine = this.conn.deps.spine;
    const terminal = spine.openTerminal(session, { width: pty.cols, height: pty.rows, term: pty.term });
    try {
      const run = spine.begin(terminal, randomUUID());
      const outcome = await this.decide(run, { kind: 'shell', pty: true });
      if (!outcome) return;
      if (outcome.kind === 'refuse') return AgentConnection.refuseOnChannel(channel, outcome.refusal, true);
      const up = await this.open(run, channel, outcome, (client, cb) =>
        client.shell(this.ptyOptions(), { env: this.env }, cb),
      );
      if (!up) return;
      const lines = new ShellLines({
        conn: this.conn,
        terminal,
        shell: run,
        upstream: up,
        agent: channel,
        gone: this.gone.signal,
      });
      const plan = run.masking();
      const engine = plan ? await this.conn.deps.engine() : null;
      await pipeChannel(channel, up, {
        stdout: plan && engine ? engine.createStream(plan) : null,
        stderr: plan && engine ? engine.createStream(plan) : null,
        captureBytes: 0,
        onOutput: (stream, text) => run.terminalOutput({ stream, text }),
        input: (d) => lines.input(d),
      });
    } finally {
      spine.endTerminal(terminal);
    }
  }

  private async subsystem(channel: ServerChannel, name: string): Promise<void> {
    const run = this.conn.begin();
    const outcome = await this.decide(run, { kind: 'subsystem', subsystem: name, pty: this.pty !== null });
    if (!outcome) return;
    if (outcome.kind === 'refuse') return AgentConnection.refuseOnChannel(channel, outcome.refusal, false);
    if (!this.conn.rawAllowed(run)) {
      return AgentConnection.refuseOnChannel(
        channel,
        refusal('unmaskable-response', `the ${name} subsystem's data cannot be masked, and masking applies here`),
        false,
      );
    }
    const up = await this.open(run, channel, outcome, (client, cb) => client.subsys(name, cb));
    if (!up) return;
    const result = await pipeChannel(channel, up, { stdout: null, stderr: null, captureBytes: 0 });
    run.output(outputRecord(result));
  }

  private decide(run: ActionRun, req: Parameters<AgentConnection['decide']>[1]): Promise<FinalOutcome | null> {
    return this.conn.decide(run, req, this.gone.signal);
  }

  /** Opens the upstream channel of an allowed action; null (the agent told, the run recorded) when it fails. */
  private async open(
    run: ActionRun,
    channel: ServerChannel,
    outcome: Extract<FinalOutcome, { kind: 'allow' }>,
    open: (
      client: Awaited<ReturnType<AgentConnection['upstreamFor']>>,
      cb: (err: Error | undefined, ch: ClientChannel) => void,
    ) => void,
  ): Promise<ClientChannel | null> {
    try {
      const client = await this.conn.upstreamFor(outcome.credential);
      this.upstream = await openChannel((cb) => open(client, cb));
      return this.upstream;
    } catch (err) {
      this.conn.upstreamFailed(run, channel, err);
      return null;
    }
  }

  private async pipe(run: ActionRun, channel: ServerChannel, up: ClientChannel): Promise<PipeResult> {
    const plan = run.masking();
    const engine = plan ? await this.conn.deps.engine() : null;
    return pipeChannel(channel, up, {
      stdout: plan && engine ? engine.createStream(plan) : null,
      stderr: plan && engine ? engine.createStream(plan) : null,
      captureBytes: this.conn.deps.captureBytes,
    });
  }

  private ptyOptions(): { term: string; cols: number; rows: number; width: number; height: number } {
    const p = this.pty as PseudoTtyInfo;
    return { term: p.term, cols: p.cols, rows: p.rows, width: p.width, height: p.height };
  }
}

function outputRecord(r: PipeResult): Record<string, unknown> {
  return {
    ...(r.exit && 'code' in r.exit ? { exitStatus: r.exit.code } : {}),
    ...(r.exit && 'signal' in r.exit ? { exitSignal: r.exit.signal } : {}),
    stdout: r.stdout.text,
    stderr: r.stderr.text,
    bytes: { stdout: r.stdout.bytes, stderr: r.stderr.bytes },
    ...(r.stdout.truncated || r.stderr.truncated ? { truncated: true } : {}),
  };
}
