/**
 * One PostgreSQL connection through network ext_proc: read = client → server bytes, write = server → client bytes.
 * Every answer is given as soon as the chunk is processed (never held: a hold would trip Envoy's per-direction timer),
 * and carries exactly the bytes to forward. The state says what the connection awaits next; one function changes it.
 *
 *   startup ─SSLRequest/GSSENCRequest→ tls-answer ─'N'→ startup
 *   startup ─StartupMessage→ auth-request ─SASL→ client-first → server-first → client-final → server-final → ready
 *   any login step ─refused→ login-refusal (the server's error to a failing login, rewritten) → closed
 *
 * This file is the login; once in `ready`, PgTraffic (pg-traffic.ts) handles statements and results.
 *
 * Nothing can be written toward the client in answer to the client's bytes, so every refusal is made by the server:
 * a refused login sends the server a proof that fails and rewrites the server's FATAL error into the refusal; a
 * refused statement is replaced by one the server refuses (pg-refusal.ts); a malformed frame makes the server end the
 * connection with an error that is rewritten into a protocol-violation error naming the cause.
 */
import { randomUUID } from 'node:crypto';
import type { MaskingEngine } from '../masking/index.ts';
import type { Refusal, Spine } from '../spine/index.ts';
import { EMPTY_SQL, refusal } from '../spine/index.ts';
import type { NetworkReply, NetworkStreamProcessor } from '../streams/index.ts';
import { type PgFrame, PgFrameError, PgFrameReader } from './pg-frames.ts';
import type { CatalogLogin } from './pg-catalog-client.ts';
import { PendingRefusals, refusalError } from './pg-refusal.ts';
import { type ColumnNames, ResultMasker } from './pg-result-masking.ts';
import { AgentScram, ScramError, UpstreamScram } from './pg-scram.ts';
import { checkReportedSetting, PgTraffic } from './pg-traffic.ts';
import { type AgentRole, agentRoleName, type UpstreamRoles } from './pg-upstream-roles.ts';
import { changesParsing } from './sql-classify.ts';
import {
  AUTH,
  authentication,
  authenticationSasl,
  BodyReader,
  errorResponse,
  int32,
  message,
  readNoticeFields,
  saslInitialResponse,
  saslResponse,
  startupMessage,
} from './pg-wire.ts';

export type ConnectionState =
  | 'startup'
  | 'tls-answer'
  | 'auth-request'
  | 'client-first'
  | 'server-first'
  | 'client-final'
  | 'server-final'
  | 'login-refusal'
  | 'ready'
  | 'closed';

const LEGAL: Record<ConnectionState, ConnectionState[]> = {
  startup: ['tls-answer', 'auth-request', 'login-refusal', 'closed'],
  'tls-answer': ['startup', 'closed'],
  'auth-request': ['client-first', 'login-refusal', 'closed'],
  'client-first': ['server-first', 'login-refusal', 'closed'],
  'server-first': ['client-final', 'login-refusal', 'closed'],
  'client-final': ['server-final', 'login-refusal', 'closed'],
  'server-final': ['ready', 'login-refusal', 'closed'],
  'login-refusal': ['closed'],
  ready: ['login-refusal', 'closed'],
  closed: [],
};

/**
 * Startup parameters passed upstream (compared lower-case): who and where, and the settings drivers send at every
 * connection (libpq, pgjdbc, node-postgres). `replication` and `options` are refused with their own reasons.
 */
const STARTUP_PARAMETERS = new Set([
  'user',
  'database',
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'extra_float_digits',
  'intervalstyle',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'replication',
  'options',
]);

/** Startup-packet request codes (PostgreSQL's pqcomm.h). */
const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** A protocol version no server accepts: the server then ends the login with a FATAL error the gateway rewrites. */
const UNSUPPORTED_PROTOCOL = (9 << 16) | 9;

/** Where the connection goes upstream, and as whom. */
export interface PgLogin {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface PgConnectionDeps {
  spine: Spine;
  /** The target this listener serves (Envoy's x-portcullis-target metadata). */
  target: string;
  /** The upstream role and database of the target, or null when it is not a PostgreSQL target with a password. */
  login: PgLogin | null;
  /** Largest client message accepted (a statement's text and bound values), header included. */
  maxClientMessageBytes: number;
  /** Largest server message accepted (one row), header included. */
  maxServerMessageBytes: number;
  engine(): Promise<MaskingEngine>;
  /** Names of result columns, read from the target's catalog on the gateway's own connection. */
  columnNames(login: CatalogLogin): ColumnNames;
  /** The target's short-lived upstream roles, or null when agents log in as the vault's role. */
  roles: UpstreamRoles | null;
}

/**
 * What a chunk becomes: the chunk itself when it held exactly its messages (`whole`: nothing of an earlier chunk before
 * them, nothing incomplete after) and each passes unchanged, the common case, which then costs no copy; otherwise the
 * answers joined.
 */
function joined(chunk: Buffer, whole: boolean, frames: PgFrame[], out: Buffer[]): Buffer {
  if (whole && out.length === frames.length && out.every((b, i) => b === frames[i].raw)) return chunk;
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

/** A chunk being answered message by message: its messages and the answers so far. */
interface ChunkAnswer {
  chunk: Buffer;
  endOfStream: boolean;
  /** Nothing of an earlier chunk before its messages (see joined()). */
  whole: boolean;
  frames: PgFrame[];
  out: Buffer[];
}

/** How one direction answers its messages (answerFrom() walks a chunk with it). */
interface Side {
  answer(frame: PgFrame): Buffer | Promise<Buffer>;
  /** Nothing more of the chunk is answered (the connection ended). */
  over(): boolean;
  /** The chunk's reply, once its messages are answered or the side is over. */
  reply(chunk: ChunkAnswer): NetworkReply;
  /** The reply when answering a message threw, or the error again (a fault). */
  failed(chunk: ChunkAnswer, err: unknown): NetworkReply;
}

/** The bytes to pass on; `endOfStream` carries the peer's half-close (an answer without it would suppress it). */
const forward = (data: Buffer, endOfStream: boolean): NetworkReply => ({ kind: 'forward', data, endOfStream });

export class PgConnection implements NetworkStreamProcessor {
  state: ConnectionState = 'startup';
  private readonly client: PgFrameReader;
  private readonly server: PgFrameReader;
  private readonly refusals = new PendingRefusals();
  private agentId = '';
  private agentScram: AgentScram | null = null;
  private upstreamScram: UpstreamScram | null = null;
  /** What the agent's login proved, kept until the server confirms the upstream login. */
  private agentServerFinal = '';
  /** The refusal the next server ErrorResponse is rewritten into, in state login-refusal. */
  private loginRefusal: Buffer | null = null;
  private actions = 0;
  /** Every action's request id starts with the connection's own random part: unique, and one UUID per connection. */
  private readonly requestIdPrefix = `pg_${randomUUID()}_`;
  /** The connection's statements and results, once the login succeeded. */
  private traffic: PgTraffic | null = null;

  constructor(private readonly deps: PgConnectionDeps) {
    this.client = new PgFrameReader('client', deps.maxClientMessageBytes, 'untyped');
    this.server = new PgFrameReader('server', deps.maxServerMessageBytes, 'typed');
  }

  private to(next: ConnectionState): void {
    if (!LEGAL[this.state].includes(next)) throw new Error(`illegal connection state change ${this.state} -> ${next}`);
    this.deps.spine.logger.debug({ target: this.deps.target, from: this.state, to: next }, 'postgres connection');
    this.state = next;
  }

  // ------------------------------------------------------------------------------------------------ client → server

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** No more client bytes go upstream: the connection is over, or ending with a refusal the server is producing. */
  private ended(): boolean {
    return this.state === 'closed' || this.state === 'login-refusal';
  }

  /**
   * The client's bytes: answered at once when every message's decision is made at once (statements in a logged-in
   * connection, as a rule); a promise when one must wait (the login, an estimate for an approver).
   */
  readData(chunk: Buffer, endOfStream: boolean): NetworkReply | Promise<NetworkReply> {
    if (this.ended()) return forward(Buffer.alloc(0), endOfStream);
    const whole = this.client.buffered === 0;
    let frames: PgFrame[];
    try {
      frames = this.client.push(chunk);
    } catch (err) {
      if (err instanceof PgFrameError) return forward(this.endWithError(err.message), endOfStream);
      throw err;
    }
    return this.answerFrom(this.clientSide, { chunk, endOfStream, whole, frames, out: [] }, 0);
  }

  /**
   * A chunk's messages from `i` on, each answered at once, or the rest once an answer's promise settles: no promise
   * at all when none has to wait.
   */
  private answerFrom(side: Side, chunk: ChunkAnswer, i: number): NetworkReply | Promise<NetworkReply> {
    for (; i < chunk.frames.length && !side.over(); i++) {
      let answer: Buffer | Promise<Buffer>;
      try {
        answer = side.answer(chunk.frames[i]);
      } catch (err) {
        return side.failed(chunk, err);
      }
      if (answer instanceof Promise) {
        const next = i + 1;
        return answer.then(
          (buf) => {
            chunk.out.push(buf);
            return this.answerFrom(side, chunk, next);
          },
          (err: unknown) => side.failed(chunk, err),
        );
      }
      chunk.out.push(answer);
    }
    return side.reply(chunk);
  }

  private readonly clientSide: Side = {
    answer: (frame) => this.fromClient(frame),
    over: () => this.ended(),
    reply: (read) => this.readEnded(read),
    failed: (read, err) => this.clientFailed(read, err),
  };

  /** A client message that broke the protocol ends the connection with an error; anything else is a fault. */
  private clientFailed(read: ChunkAnswer, err: unknown): NetworkReply {
    if (!(err instanceof PgFrameError || err instanceof ScramError)) throw err;
    read.out.push(this.endWithError(err.message));
    return this.readEnded(read);
  }

  private readEnded({ chunk, endOfStream, whole, frames, out }: ChunkAnswer): NetworkReply {
    // A connection the gateway ended with nothing left to say (a refused CancelRequest) is closed.
    if (this.ended() && this.loginRefusal === null && out.every((b) => b.length === 0))
      return { kind: 'close', how: 'flush' };
    return forward(joined(chunk, whole && this.client.buffered === 0, frames, out), endOfStream);
  }

  private fromClient(frame: PgFrame): Buffer | Promise<Buffer> {
    switch (this.state) {
      case 'startup':
        return this.startup(frame);
      case 'client-first':
        return this.clientFirst(frame);
      case 'client-final':
        return this.clientFinal(frame);
      case 'ready':
        return this.readyTraffic().statement(frame);
      default:
        throw new PgFrameError(`unexpected client message '${frame.type}' while the gateway awaits ${this.state}`);
    }
  }

  private async startup(frame: PgFrame): Promise<Buffer> {
    const r = new BodyReader(frame.body, 'startup message');
    const code = r.int32();
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      r.end();
      // TLS toward the agent is Envoy's job: the server's answer is passed on as 'N' (see serverTlsAnswer).
      this.to('tls-answer');
      this.server.mode = 'single-byte';
      this.client.mode = 'untyped';
      return frame.raw;
    }
    if (code === CANCEL_REQUEST) {
      // The cancel key is the server's: forwarding it would let whoever learns one cancel another agent's query.
      this.deps.spine.logger.info({ target: this.deps.target }, 'postgres CancelRequest refused');
      this.to('closed');
      return Buffer.alloc(0);
    }
    if (code !== PROTOCOL_3) {
      throw new PgFrameError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}: the gateway speaks 3.0`);
    }
    const params = new Map<string, string>();
    for (;;) {
      const key = r.cstring();
      if (key === '') break;
      params.set(key, r.cstring());
    }
    r.end();
    this.agentId = params.get('user') ?? '';
    const login = this.deps.login;
    const database = params.get('database') ?? this.agentId;
    const refused = this.startupRefusal(params, database);
    if (refused) return this.refuseLogin(refused, startupMessage([['user', login?.user ?? 'postgres']]), true);
    if (!login) throw new Error('unreachable: startupRefusal checks the login');
    const user = await this.upstreamUser(login);
    if ('refusal' in user) return this.refuseLogin(user.refusal, startupMessage([['user', login.user]]), true);
    // The agent's own parameters go through (application_name, client_encoding, DateStyle, …), except those that
    // name who logs in or change the session's settings behind the policy's back.
    const upstream: [string, string][] = [
      ['user', user.name],
      ['database', login.database],
    ];
    for (const [k, v] of params) if (!['user', 'database'].includes(k)) upstream.push([k, v]);
    this.to('auth-request');
    return startupMessage(upstream);
  }

  /** The agent's own upstream role, when the target has short-lived roles (pg-upstream-roles.ts); null: none yet. */
  private agentRole: AgentRole | null = null;

  /**
   * Who logs in upstream: the vault's role, or with short-lived roles the agent's own role (made ready now; an agent
   * without a live token is named a role that does not exist, and its proof fails as any wrong password does).
   */
  private async upstreamUser(login: PgLogin): Promise<{ name: string } | { refusal: Refusal }> {
    const roles = this.deps.roles;
    if (!roles) return { name: login.user };
    try {
      this.agentRole = await roles.ensure(this.agentId);
    } catch (err) {
      this.deps.spine.logger.error(
        { target: this.deps.target, err: err instanceof Error ? err.message : String(err) },
        'postgres upstream role could not be made ready',
      );
      return {
        refusal: refusal(
          'upstream-credential',
          'the gateway could not prepare the database login for this agent; try again later',
          'upstream-role',
        ),
      };
    }
    return { name: this.agentRole?.user ?? agentRoleName(this.deps.target, this.agentId) };
  }

  private startupRefusal(params: Map<string, string>, database: string): Refusal | null {
    const login = this.deps.login;
    if (!login) {
      return refusal(
        'misconfigured',
        `gateway misconfigured: target ${this.deps.target} is not a PostgreSQL target with a password credential`,
        'no-login',
      );
    }
    if (this.agentId === '') return refusal('unauthenticated', 'no agent id was given as the user name', 'no-user');
    if (database !== this.deps.target && database !== login.database) {
      return refusal(
        'forbidden',
        `database "${database}" is not served here: connect to database "${this.deps.target}"`,
        'wrong-database',
      );
    }
    if (params.has('replication')) {
      return refusal('unsupported', 'replication connections are not allowed through the gateway', 'replication');
    }
    if (params.has('options')) {
      // `options` sets server settings at login (-c role=…, -c search_path=…) before any statement could be decided.
      return refusal('unsupported', 'the startup parameter "options" is not allowed through the gateway', 'options');
    }
    for (const [k, v] of params) {
      // Any server setting can be given at startup (role, standard_conforming_strings, …) and takes effect before a
      // statement is decided: only the settings clients send as a rule pass, and no encoding the gateway misreads.
      if (!STARTUP_PARAMETERS.has(k.toLowerCase())) {
        return refusal(
          'unsupported',
          `the startup parameter "${k}" is not allowed through the gateway; set it with a statement once connected`,
          'startup-parameter',
        );
      }
      if (changesParsing(k, v)) {
        return refusal(
          'unsupported',
          `client_encoding "${v}" is not allowed through the gateway: its characters can hide a quote from it; use UTF8`,
          'client-encoding',
        );
      }
    }
    return null;
  }

  private clientFirst(frame: PgFrame): Buffer {
    if (frame.type !== 'p') throw new PgFrameError(`expected a SASL initial response, got '${frame.type}'`);
    const r = new BodyReader(frame.body, 'SASLInitialResponse');
    const mechanism = r.cstring();
    const length = r.int32();
    const data = r.bytes(length).toString('utf8');
    r.end();
    if (mechanism !== 'SCRAM-SHA-256') {
      throw new ScramError(`SASL mechanism ${mechanism} is not supported through the gateway; use SCRAM-SHA-256`);
    }
    this.agentScram = new AgentScram(this.agentId);
    this.pendingServerFirst = this.agentScram.serverFirstFor(data);
    this.upstreamScram = new UpstreamScram();
    this.to('server-first');
    return saslInitialResponse('SCRAM-SHA-256', this.upstreamScram.clientFirst);
  }

  /** The agent-side server-first message, sent in place of the server's. */
  private pendingServerFirst = '';

  private async clientFinal(frame: PgFrame): Promise<Buffer> {
    if (frame.type !== 'p') throw new PgFrameError(`expected a SASL response, got '${frame.type}'`);
    const scram = this.agentScram;
    const upstream = this.upstreamScram;
    if (!scram || !upstream) throw new Error('unreachable: client-final before client-first');
    const proven = scram.verify(frame.body.toString('utf8'), await this.deps.spine.scramCandidates(this.agentId));
    const failing = saslResponse(upstream.failingClientFinal());
    if (!proven) {
      return this.refuseLogin(
        refusal(
          'unauthenticated',
          `password authentication failed for agent "${this.agentId}": the password must be a valid agent token`,
          'token-invalid',
        ),
        failing,
      );
    }
    const auth = await this.deps.spine.authenticate({
      protocol: 'postgres',
      target: this.deps.target,
      token: undefined,
      provenTokenId: proven.jti,
    });
    if (!auth.ok) return this.refuseLogin(auth.refusal, failing);
    const database = this.deps.login?.database ?? '';
    const run = this.deps.spine.begin(auth.session, this.nextRequestId());
    const outcome = await run.decide(
      {
        section: { protocol: 'postgres', sql: { ...EMPTY_SQL, connect: true, database } },
        recorded: { connect: { database, agent: this.agentId } },
        canonical: () => `postgres-connect\0${database}`,
        summary: () => `connect to database ${database}`,
      },
      { maxHoldMs: 0, credential: 'password' },
    );
    if (outcome.kind !== 'allow') {
      return this.refuseLogin(
        outcome.kind === 'refuse' ? outcome.refusal : refusal('internal', 'internal error in the gateway'),
        failing,
      );
    }
    const credential = outcome.credential;
    if (credential?.kind !== 'password') throw new Error('unreachable: a postgres login is decided with a password');
    const login = this.deps.login;
    if (!login) throw new Error('unreachable: a login without a target login');
    // With short-lived roles the agent's role logs in (the vault's credential fetched above stays unused here), and the
    // gateway's catalog questions run as that role too.
    const role = this.deps.roles ? this.agentRole : { user: credential.user, password: credential.password.reveal() };
    if (!role) return this.refuseLogin(refusal('internal', 'internal error in the gateway'), failing);
    const names = this.deps.columnNames({ ...login, ...role });
    const engine = await this.deps.engine();
    this.traffic = new PgTraffic({
      spine: this.deps.spine,
      session: auth.session,
      database: login.database,
      // The session's masking plan under the policies in force when each result is described.
      masker: new ResultMasker(engine, () => run.masking(), names),
      engine,
      names,
      refusals: this.refusals,
      nextRequestId: () => this.nextRequestId(),
    });
    this.agentServerFinal = proven.serverFinal;
    this.to('server-final');
    return saslResponse(upstream.clientFinal(role.password));
  }

  /**
   * Refuses the login: sends the server `provoke` (a message that makes it end the login with a FATAL error) and
   * rewrites that error into the refusal. `beforeStartup`: nothing was sent upstream yet, so `provoke` is a startup
   * message with a protocol version the server rejects.
   */
  private refuseLogin(r: Refusal, provoke: Buffer, beforeStartup = false): Buffer {
    this.deps.spine.logger.info({ target: this.deps.target, code: r.code, detail: r.detail }, 'postgres login refused');
    this.loginRefusal = refusalError(r, 'FATAL');
    this.to('login-refusal');
    if (!beforeStartup) return provoke;
    return Buffer.concat([int32(8), int32(UNSUPPORTED_PROTOCOL)]);
  }

  /**
   * A malformed or unexpected client message ends the connection: the server is made to end it with an error, which
   * the client receives rewritten as a protocol violation (08P01) naming the cause.
   */
  private endWithError(cause: string): Buffer {
    const r = refusal('bad-request', `protocol violation: ${cause}`, 'malformed-frame');
    const fatal = errorResponse('FATAL', '08P01', r.message);
    this.deps.spine.logger.info({ target: this.deps.target, cause }, 'postgres connection ended: malformed message');
    switch (this.state) {
      case 'startup':
        this.loginRefusal = fatal;
        this.to('login-refusal');
        return Buffer.concat([int32(8), int32(UNSUPPORTED_PROTOCOL)]);
      case 'ready':
        // A query the server refuses, then Terminate: the server answers the error and closes.
        this.loginRefusal = fatal;
        this.to('login-refusal');
        return Buffer.concat([this.refusals.query(r), message('X')]);
      default:
        // Mid-login: an empty SASL response is itself malformed, and the server ends the login with FATAL.
        this.loginRefusal = fatal;
        this.to('login-refusal');
        return message('p');
    }
  }

  private nextRequestId(): string {
    return `${this.requestIdPrefix}${++this.actions}`;
  }

  // ------------------------------------------------------------------------------------------------ server → client

  /** The server's bytes: answered at once unless a message needs the catalog first (then a promise). */
  writeData(chunk: Buffer, endOfStream: boolean): NetworkReply | Promise<NetworkReply> {
    if (this.state === 'closed') return forward(Buffer.alloc(0), endOfStream);
    const whole = this.server.buffered === 0;
    const frames = this.server.push(chunk);
    return this.answerFrom(this.serverSide, { chunk, endOfStream, whole, frames, out: [] }, 0);
  }

  private readonly serverSide: Side = {
    answer: (frame) => this.fromServer(frame),
    // Whatever the server says after the message that ended the connection (its ReadyForQuery) is not passed on.
    over: () => this.isClosed(),
    reply: ({ chunk, endOfStream, whole, frames, out }) =>
      forward(joined(chunk, whole && this.server.buffered === 0, frames, out), endOfStream),
    failed: (_write, err) => {
      throw err;
    },
  };

  private fromServer(frame: PgFrame): Buffer | Promise<Buffer> {
    switch (this.state) {
      case 'tls-answer':
        if (frame.type !== 'N') {
          // The server would start TLS: the gateway cannot see inside it. Upstream TLS is Envoy's (docs/postgres.md).
          throw new Error(`the database answered '${frame.type}' to an SSL/GSS request; it must not require TLS`);
        }
        this.to('startup');
        return frame.raw;
      case 'auth-request':
        return this.authRequest(frame);
      case 'server-first':
        return this.serverFirst(frame);
      case 'server-final':
        return this.serverFinal(frame);
      case 'login-refusal':
        if (frame.type !== 'E') return Buffer.alloc(0);
        this.to('closed');
        return this.loginRefusal ?? Buffer.alloc(0);
      case 'ready':
        return this.readyTraffic().result(frame);
      default:
        throw new Error(`unexpected server message '${frame.type}' while the gateway awaits ${this.state}`);
    }
  }

  private authRequest(frame: PgFrame): Buffer {
    if (frame.type === 'E') {
      // The server refused the login before authentication (e.g. too many connections): pass its error on.
      this.to('closed');
      return frame.raw;
    }
    if (frame.type !== 'R') throw new Error(`expected an authentication request, got '${frame.type}'`);
    const r = new BodyReader(frame.body, 'Authentication');
    const code = r.int32();
    if (code === AUTH.sasl) {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      if (!mechanisms.includes('SCRAM-SHA-256')) {
        throw new Error(`the database offers SASL ${mechanisms.join(', ')} without SCRAM-SHA-256`);
      }
      this.to('client-first');
      return authenticationSasl();
    }
    // md5, cleartext and trust logins upstream are not supported yet: the gateway refuses rather than let the agent
    // in without proving its token (trust) or send the password before the agent has proved anything (md5, cleartext).
    this.to('closed');
    return refusalError(
      refusal(
        'misconfigured',
        `gateway misconfigured: the database asks for authentication method ${code}; the gateway logs in with SCRAM-SHA-256 only`,
        'upstream-auth-method',
      ),
      'FATAL',
    );
  }

  private serverFirst(frame: PgFrame): Buffer {
    if (frame.type === 'E') {
      this.to('closed');
      return frame.raw;
    }
    const r = new BodyReader(frame.body, 'AuthenticationSASLContinue');
    if (frame.type !== 'R' || r.int32() !== AUTH.saslContinue) throw new Error('expected AuthenticationSASLContinue');
    this.upstreamScram?.serverFirstReceived(r.bytes(r.remaining).toString('utf8'));
    this.to('client-final');
    return authentication(AUTH.saslContinue, Buffer.from(this.pendingServerFirst, 'utf8'));
  }

  private serverFinal(frame: PgFrame): Buffer {
    if (frame.type === 'R') {
      const r = new BodyReader(frame.body, 'Authentication');
      const code = r.int32();
      if (code === AUTH.saslFinal) {
        if (!this.upstreamScram?.serverFinalValid(r.bytes(r.remaining).toString('utf8'))) {
          throw new Error('the database did not prove it knows the password (bad SCRAM server signature)');
        }
        return authentication(AUTH.saslFinal, Buffer.from(this.agentServerFinal, 'utf8'));
      }
      if (code === AUTH.ok) return frame.raw;
      throw new Error(`unexpected authentication message ${code} after SCRAM`);
    }
    if (frame.type === 'E') {
      // The vault's password was refused: the agent learns only that the gateway could not log in.
      this.deps.spine.logger.error(
        { target: this.deps.target, server: readNoticeFields(frame.body, 'ErrorResponse').get('M') },
        'the database refused the gateway login',
      );
      this.to('closed');
      return refusalError(
        refusal('upstream-credential', `the gateway could not log in to target ${this.deps.target}; try again shortly`),
        'FATAL',
      );
    }
    if (frame.type === 'S') checkReportedSetting(frame);
    if (frame.type === 'Z') this.to('ready');
    return frame.raw;
  }

  private readyTraffic(): PgTraffic {
    if (!this.traffic) throw new Error('unreachable: traffic before the login');
    return this.traffic;
  }

  streamClosed(): void {
    if (this.state !== 'closed') this.to('closed');
  }

  fault(err: unknown): void {
    this.deps.spine.logger.error(
      { target: this.deps.target, state: this.state, err: err instanceof Error ? err.message : String(err) },
      'postgres connection failed',
    );
  }
}
