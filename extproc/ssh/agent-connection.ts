/**
 * One agent's SSH connection to the gateway: authentication (`AGENT@TARGET` with the agent's token as password or
 * keyboard-interactive answer, or a public key registered to the agent), then each channel and forwarding request as
 * its own action through the spine. The
 * upstream connection to the target is opened on the first allowed action, with the credential the spine handed over,
 * and shared by the connection's later channels.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import ssh2, {
  type AuthContext,
  type Client,
  type Connection,
  type ParsedKey,
  type PublicKeyAuthContext,
  type ServerChannel,
  type TcpipRequestInfo,
} from 'ssh2';
import type { MaskingEngine } from '../masking/index.ts';
import {
  refusal,
  type ActionRun,
  type AuthenticationRequest,
  type FinalOutcome,
  type Refusal,
  type Session,
  type Spine,
  type UpstreamSecret,
} from '../spine/index.ts';
import { parseLogin } from './login.ts';
import { sshAction, type SshRequest } from './ssh-action.ts';
import { REFUSED_EXIT_STATUS, refusalLine } from './ssh-refusal.ts';
import { SessionChannel } from './session-channel.ts';
import { connectUpstream, openChannel, UpstreamError, type UpstreamOptions } from './upstream.ts';

export interface GatewayDeps {
  spine: Spine;
  engine: () => Promise<MaskingEngine>;
  /** How long a channel request may wait for a quick approval (ms). */
  maxHoldMs: number;
  upstream: UpstreamOptions;
  /** Bytes of each output stream of a channel kept in its recording. */
  captureBytes: number;
  logger: Logger;
}

const AUTH_METHODS: ('password' | 'keyboard-interactive' | 'publickey')[] = [
  'publickey',
  'keyboard-interactive',
  'password',
];
/** Failed authentications before the gateway closes the connection (OpenSSH's MaxAuthTries is 6). */
const MAX_AUTH_FAILURES = 3;

/** Session channels open at once on one connection (OpenSSH's MaxSessions default). */
const MAX_SESSIONS_PER_CONNECTION = 10;

/** The exit status ssh itself uses when the connection to the host fails. */
const UPSTREAM_FAILED_EXIT_STATUS = 255;

export class AgentConnection {
  session: Session | null = null;
  /** How the agent logged in: checked again before each action (a token may expire or be revoked, a key removed). */
  #login: AuthenticationRequest = { protocol: 'ssh', target: '', token: undefined };
  private upstream: Promise<Client> | null = null;
  private authFailures = 0;
  private openSessions = 0;
  /** Aborted when the agent's connection closes: actions held for approval stop waiting. */
  readonly closed = new AbortController();
  readonly log: Logger;

  constructor(
    readonly deps: GatewayDeps,
    private readonly conn: Connection,
    peer: string,
  ) {
    this.log = deps.logger.child({ ssh: peer });
  }

  attach(): void {
    const conn = this.conn;
    conn.on('authentication', (ctx) => {
      this.authenticate(ctx).catch((err: unknown) => {
        this.log.error({ err: String(err) }, 'ssh authentication failed internally');
        ctx.reject(AUTH_METHODS);
      });
    });
    conn.on('session', (accept, reject) => {
      if (!this.session || this.openSessions >= MAX_SESSIONS_PER_CONNECTION) return reject();
      const session = accept();
      this.openSessions++;
      session.once('close', () => this.openSessions--);
      new SessionChannel(this, session).attach();
    });
    conn.on('tcpip', (accept, reject, info) => {
      void this.directTcpip(accept, reject, info).catch((err: unknown) => this.fault(err));
    });
    conn.on('request', (_accept, reject, name, info) => {
      // Remote forwarding (-R, to a port or a Unix socket) would open channels from the target to the agent: the
      // gateway does not offer it. Cancelling one that never existed just fails.
      if (name === 'tcpip-forward' || (name as string) === 'streamlocal-forward@openssh.com') {
        const where = info as { bindAddr?: string; bindPort?: number; socketPath?: string };
        this.refuseFeature(
          {
            kind: 'remote-forward',
            forwardHost: where.bindAddr ?? where.socketPath ?? '',
            forwardPort: BigInt(where.bindPort ?? 0),
          },
          'remote port forwarding is not offered by the gateway',
        );
      }
      reject?.();
    });
    conn.on('error', (err: Error) => this.log.debug({ err: err.message }, 'ssh connection error'));
    conn.on('close', () => {
      this.closed.abort(new Error('the agent closed the connection'));
      void this.upstream?.then((c) => c.end()).catch(() => undefined);
    });
  }

  private async authenticate(ctx: AuthContext): Promise<void> {
    if (ctx.method === 'publickey') return this.authenticateKey(ctx);
    let token: string;
    switch (ctx.method) {
      case 'password':
        token = ctx.password;
        break;
      case 'keyboard-interactive':
        token = await new Promise<string>((resolve) =>
          ctx.prompt([{ prompt: 'Agent token: ', echo: false }], '', '', (answers) => resolve(answers[0] ?? '')),
        );
        break;
      default:
        return ctx.reject(AUTH_METHODS);
    }
    const login = parseLogin(ctx.username);
    if (!login.ok) return this.authFailed(ctx, login.reason);
    const auth = await this.deps.spine.authenticate({ protocol: 'ssh', target: login.target, token });
    if (!auth.ok) return this.authFailed(ctx, auth.refusal.message);
    if (auth.session.agent.id !== login.agent) {
      return this.authFailed(ctx, `this token was not issued to agent ${login.agent}`);
    }
    this.session = auth.session;
    this.#login = { protocol: 'ssh', target: login.target, token };
    this.log.info({ agent: login.agent, target: login.target, session: auth.session.id }, 'agent authenticated');
    ctx.accept();
  }

  /**
   * A public key registered to the agent for the target. The first request only asks whether the key would do: it is
   * always answered yes, so that nothing about an unsigned attempt (a public key is public) reaches the spine or the
   * recording; the signed request is verified here, then the key checked against the agent's registration.
   */
  private async authenticateKey(ctx: PublicKeyAuthContext): Promise<void> {
    const login = parseLogin(ctx.username);
    if (!login.ok) return this.authFailed(ctx, login.reason);
    if (!ctx.signature || !ctx.blob) return ctx.accept();
    const key = publicKeyOf(ctx.key.data);
    if (key?.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
      return this.authFailed(ctx, 'the public key signature does not verify');
    }
    const request: AuthenticationRequest = {
      protocol: 'ssh',
      target: login.target,
      token: undefined,
      publicKey: { agent: login.agent, keyBlob: ctx.key.data.toString('base64'), login: randomUUID() },
    };
    const auth = await this.deps.spine.authenticate(request);
    if (!auth.ok) return this.authFailed(ctx, auth.refusal.message);
    this.session = auth.session;
    this.#login = request;
    this.log.info({ agent: login.agent, target: login.target, session: auth.session.id }, 'agent authenticated by key');
    ctx.accept();
  }

  /**
   * SSH has no failure message; keyboard-interactive can show an instruction, which OpenSSH prints, so the reason is
   * sent that way before the rejection (a password attempt only gets the log line).
   */
  private authFailed(ctx: AuthContext, reason: string): void {
    this.log.info({ user: ctx.username, method: ctx.method, reason }, 'ssh authentication refused');
    const done = (): void => {
      if (++this.authFailures >= MAX_AUTH_FAILURES) this.conn.end();
      else ctx.reject(AUTH_METHODS);
    };
    if (ctx.method === 'keyboard-interactive') ctx.prompt([], 'Portcullis', `Refused: ${reason}`, done);
    else done();
  }

  /**
   * A connection outlives its token: before each action the token is verified again, so an expired or revoked token
   * (or a disabled agent) stops the next command, not only the next login. Null when it is still good.
   */
  async revalidate(): Promise<Refusal | null> {
    const auth = await this.deps.spine.authenticate(this.#login);
    return auth.ok ? null : auth.refusal;
  }

  /** The session's user on the target: what the context's `ssh.user` names. */
  get upstreamUser(): string {
    const c = this.session?.target.credential;
    return c && (c.kind === 'ssh-key' || c.kind === 'password') ? c.user : '';
  }

  begin(): ActionRun {
    if (!this.session) throw new Error('no session before authentication');
    return this.deps.spine.begin(this.session, randomUUID());
  }

  action(req: Omit<SshRequest, 'user'>): ReturnType<typeof sshAction> {
    return sshAction(this.session?.target.name ?? '', { ...req, user: this.upstreamUser });
  }

  /** Decides an action, waiting through a hold; null when the agent went away while it waited. */
  async decide(run: ActionRun, req: Omit<SshRequest, 'user'>, gone: AbortSignal): Promise<FinalOutcome | null> {
    const kind = this.session?.target.credential?.kind === 'password' ? 'password' : 'ssh-key';
    const outcome = await run.decide(this.action(req), { maxHoldMs: this.deps.maxHoldMs, credential: kind });
    if (outcome.kind !== 'hold') return outcome;
    const abort = new AbortController();
    const onGone = (): void => abort.abort(new Error('the agent went away while waiting for approval'));
    if (gone.aborted || this.closed.signal.aborted) onGone();
    gone.addEventListener('abort', onGone, { once: true });
    this.closed.signal.addEventListener('abort', onGone, { once: true });
    try {
      return await outcome.resume(abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return null;
      throw err;
    } finally {
      gone.removeEventListener('abort', onGone);
      this.closed.signal.removeEventListener('abort', onGone);
    }
  }

  /** The connection to the target, opened once with the credential of the first allowed action. */
  upstreamFor(secret: UpstreamSecret | null): Promise<Client> {
    if (!this.session) return Promise.reject(new Error('no session'));
    if (!secret) return Promise.reject(new UpstreamError('the gateway has no credential for this target'));
    if (!this.upstream) {
      const p = connectUpstream(this.session, secret, this.deps.upstream);
      this.upstream = p;
      p.then(
        (c) =>
          c.once('close', () => {
            if (this.upstream === p) this.upstream = null;
          }),
        () => {
          if (this.upstream === p) this.upstream = null;
        },
      );
    }
    return this.upstream;
  }

  /**
   * An allowed action whose upstream could not be opened: recorded as an error, told to the agent as ssh would
   * (message on stderr, exit status 255).
   */
  upstreamFailed(run: ActionRun, channel: ServerChannel | null, err: unknown): void {
    if (!(err instanceof UpstreamError)) throw err;
    this.log.warn({ err: err.message }, 'upstream ssh connection failed');
    run.error({ code: 'upstream-unavailable', message: err.message });
    if (channel) {
      channel.stderr.write(`portcullis: ${err.message}\n`);
      channel.exit(UPSTREAM_FAILED_EXIT_STATUS);
      channel.end();
    }
  }

  /** A request for something the gateway never offers: recorded as refused, whatever the policy says. */
  refuseFeature(req: Omit<SshRequest, 'user'>, message: string): void {
    if (!this.session) return;
    this.begin().refuse(refusal('unsupported', message, req.kind), this.action(req).recorded);
  }

  /** A refused channel: opened, the message on stderr, exit status 126; the connection stays usable. */
  static refuseOnChannel(channel: ServerChannel, r: Refusal, pty: boolean): void {
    channel.stderr.write(`${refusalLine(r)}${pty ? '\r\n' : '\n'}`);
    channel.exit(REFUSED_EXIT_STATUS);
    channel.end();
  }

  /** `ssh -L`: a channel to host:port opened from the target, if a rule allows it; its bytes cannot be masked. */
  private async directTcpip(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): Promise<void> {
    if (!this.session || (await this.revalidate())) return reject();
    const run = this.begin();
    const req = { kind: 'port-forward', forwardHost: info.destIP, forwardPort: BigInt(info.destPort) };
    const outcome = await this.decide(run, req, this.closed.signal);
    if (!outcome || outcome.kind === 'refuse') return reject();
    if (!this.rawAllowed(run)) return reject();
    let client: Client;
    try {
      client = await this.upstreamFor(outcome.credential);
    } catch (err) {
      this.upstreamFailed(run, null, err);
      return reject();
    }
    const up = await openChannel((cb) =>
      client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, cb),
    ).catch((err: unknown) => {
      this.upstreamFailed(run, null, err);
      return null;
    });
    if (!up) return reject();
    const ch = accept();
    ch.on('error', () => ch.close());
    up.on('error', () => up.close());
    ch.pipe(up).pipe(ch);
    ch.on('close', () => up.close());
    up.on('close', () => ch.close());
  }

  /**
   * Forwarded ports and subsystems carry bytes the gateway cannot read as text (an SFTP stream, any TCP protocol):
   * allowed only where the session's masking plan masks nothing, since their output could not be masked.
   */
  rawAllowed(run: ActionRun): boolean {
    if (run.masking() === null) return true;
    run.error({ code: 'unmaskable-response', message: 'a masking rule applies; raw channel data cannot be masked' });
    return false;
  }

  fault(err: unknown): void {
    this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'ssh channel fault');
  }
}

/** The parsed public key of an SSH key blob (its type is the blob's first string), or null. */
function publicKeyOf(blob: Buffer): ParsedKey | null {
  if (blob.length < 4) return null;
  const typeLength = blob.readUInt32BE(0);
  if (typeLength > 64 || blob.length < 4 + typeLength) return null;
  const parsed = ssh2.utils.parseKey(
    `${blob.subarray(4, 4 + typeLength).toString('latin1')} ${blob.toString('base64')}`,
  );
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key instanceof Error ? null : key;
}
