/**
 * The gateway's own connection to a target database, for what the gateway must ask the database itself: which table
 * and column a result column comes from (RowDescription gives only OIDs), the columns a COPY writes, and the
 * planner's estimate of the rows a statement touches (shown to approvers). It logs in with the vault's credential
 * (SCRAM-SHA-256, md5 or cleartext, as the server asks), never runs an agent's statement, and answers one simple query
 * at a time. A broken connection is replaced on the next call.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { PgFrameReader, type PgFrame } from './pg-frames.ts';
import { UpstreamScram } from './pg-scram.ts';
import {
  AUTH,
  BodyReader,
  cstr,
  int16,
  int32,
  message,
  readNoticeFields,
  saslInitialResponse,
  saslResponse,
  simpleQuery,
  startupMessage,
} from './pg-wire.ts';

export interface CatalogLogin {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export class CatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogError';
  }
}

/** Rows as text values (null for NULL). */
export type TextRows = (string | null)[][];

const TIMEOUT_MS = 10_000;

export class PgCatalogClient {
  private socket: net.Socket | null = null;
  private reader = new PgFrameReader('server', 64 * 1024 * 1024, 'typed');
  private waiting: ((frame: PgFrame | Error) => void) | null = null;
  private frames: PgFrame[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly login: CatalogLogin) {}

  /** Runs `sql` (one statement, the gateway's own) and returns its rows. Calls are serialised. */
  query(sql: string): Promise<TextRows> {
    return this.serialised(() => this.run(simpleQuery(sql)));
  }

  /**
   * The planner's estimate of the rows `statement` touches: `EXPLAIN` (never ANALYZE: nothing runs) of the agent's
   * one statement with the values it bound, sent as bound values through the extended protocol, never spliced into
   * the text. Null when the server cannot plan it.
   */
  async estimateRows(statement: string, values: (Buffer | null)[], formats: number[]): Promise<number | null> {
    const explain = `EXPLAIN (FORMAT JSON) ${statement}`;
    const bind = message(
      'B',
      cstr(''),
      cstr(''),
      int16(formats.length),
      ...formats.map(int16),
      int16(values.length),
      ...values.flatMap((v) => (v === null ? [int32(-1)] : [int32(v.length), v])),
      int16(0),
    );
    const bytes = Buffer.concat([
      message('P', cstr(''), cstr(explain), int16(0)),
      bind,
      message('E', cstr(''), int32(0)),
      message('S'),
    ]);
    try {
      const rows = await this.serialised(() => this.run(bytes));
      type PlanNode = { 'Node Type'?: string; 'Plan Rows'?: number; Plans?: PlanNode[] };
      const top = (JSON.parse(rows[0]?.[0] ?? '[]') as { Plan?: PlanNode }[])[0]?.Plan;
      // An UPDATE/DELETE/MERGE plan's top node (ModifyTable) estimates the rows it returns; its input, those it touches.
      const n = top?.['Node Type'] === 'ModifyTable' ? top.Plans?.[0]?.['Plan Rows'] : top?.['Plan Rows'];
      return typeof n === 'number' ? n : null;
    } catch {
      return null;
    }
  }

  private serialised<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  /** Sends `request` (a simple Query, or an extended-protocol batch ending in Sync) and reads until ReadyForQuery. */
  private async run(request: Buffer): Promise<TextRows> {
    try {
      if (!this.socket) await this.connect();
      this.socket?.write(request);
      const rows: TextRows = [];
      let error: string | null = null;
      for (;;) {
        const f = await this.next();
        if (f.type === 'D') rows.push(dataRowText(f.body));
        else if (f.type === 'E') error = readNoticeFields(f.body, 'ErrorResponse').get('M') ?? 'error';
        else if (f.type === 'Z') break;
      }
      if (error !== null) throw new CatalogError(error);
      return rows;
    } catch (err) {
      if (!(err instanceof CatalogError)) this.close();
      throw err;
    }
  }

  private async connect(): Promise<void> {
    this.reader = new PgFrameReader('server', 64 * 1024 * 1024, 'typed');
    this.frames = [];
    const socket = net.connect(this.login.port, this.login.host);
    // The gateway's own connection never keeps the process alive on its own.
    socket.unref();
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.frames.push(...this.reader.push(chunk));
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.deliver();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the database closed the gateway connection')));
    socket.write(
      startupMessage([
        ['user', this.login.user],
        ['database', this.login.database],
        ['application_name', 'portcullis-gateway'],
      ]),
    );
    let scram: UpstreamScram | null = null;
    for (;;) {
      const f = await this.next();
      if (f.type === 'E') {
        throw new CatalogError(`login refused: ${readNoticeFields(f.body, 'ErrorResponse').get('M') ?? ''}`);
      }
      if (f.type === 'Z') return;
      if (f.type !== 'R') continue;
      const r = new BodyReader(f.body, 'Authentication');
      const code = r.int32();
      switch (code) {
        case AUTH.ok:
          break;
        case AUTH.cleartext:
          socket.write(message('p', cstr(this.login.password)));
          break;
        case AUTH.md5: {
          const salt = r.bytes(4);
          const inner = md5Hex(Buffer.from(this.login.password + this.login.user));
          socket.write(message('p', cstr(`md5${md5Hex(Buffer.concat([Buffer.from(inner), salt]))}`)));
          break;
        }
        case AUTH.sasl:
          scram = new UpstreamScram();
          socket.write(saslInitialResponse('SCRAM-SHA-256', scram.clientFirst));
          break;
        case AUTH.saslContinue:
          if (!scram) throw new CatalogError('SCRAM continue before SCRAM start');
          scram.serverFirstReceived(r.bytes(r.remaining).toString('utf8'));
          socket.write(saslResponse(scram.clientFinal(this.login.password)));
          break;
        case AUTH.saslFinal:
          if (!scram?.serverFinalValid(r.bytes(r.remaining).toString('utf8'))) {
            throw new CatalogError('the database did not prove it knows the password');
          }
          break;
        default:
          throw new CatalogError(`unsupported authentication method ${code}`);
      }
    }
  }

  private next(): Promise<PgFrame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error('the database did not answer the gateway in time'));
      }, TIMEOUT_MS);
      this.waiting = (got) => {
        clearTimeout(timer);
        this.waiting = null;
        if (got instanceof Error) reject(got);
        else resolve(got);
      };
    });
  }

  private deliver(): void {
    if (!this.waiting) return;
    const f = this.frames.shift();
    if (f) this.waiting(f);
  }

  private fail(err: Error): void {
    this.socket = null;
    this.waiting?.(err);
  }
}

function md5Hex(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

function dataRowText(body: Buffer): (string | null)[] {
  const r = new BodyReader(body, 'DataRow');
  const n = r.int16();
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    out.push(len === -1 ? null : r.bytes(len).toString('utf8'));
  }
  return out;
}

/** A SQL string literal (standard_conforming_strings is on for the gateway's own connection). */
export function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
