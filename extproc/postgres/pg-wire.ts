/**
 * Reading and writing PostgreSQL message bodies (protocol 3.0, "Message Formats" in the PostgreSQL manual): a cursor
 * that refuses to read past a body's end, and builders for the messages the gateway writes itself.
 */
import { PgFrameError } from './pg-frames.ts';

export class BodyReader {
  private at = 0;

  constructor(
    private readonly body: Buffer,
    /** The message, for error messages. */
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.body.length - this.at;
  }

  int16(): number {
    this.need(2);
    const v = this.body.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.body.readInt32BE(this.at);
    this.at += 4;
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw new PgFrameError(`${this.what}: negative length ${n}`);
    this.need(n);
    const v = this.body.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }

  cstring(): string {
    const end = this.body.indexOf(0, this.at);
    if (end < 0) throw new PgFrameError(`${this.what}: unterminated string`);
    const v = this.body.toString('utf8', this.at, end);
    this.at = end + 1;
    return v;
  }

  /** The body must end here. */
  end(): void {
    if (this.at !== this.body.length)
      throw new PgFrameError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }

  private need(n: number): void {
    if (this.at + n > this.body.length) throw new PgFrameError(`${this.what}: message shorter than its fields`);
  }
}

/** A typed message: type byte, int32 length (counting itself), body. */
export function message(type: string, ...parts: Buffer[]): Buffer {
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(bodyLength + 4, 1);
  return Buffer.concat([head, ...parts]);
}

export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n, 0);
  return b;
}

/** ErrorResponse/NoticeResponse fields by their one-letter codes (S, V, C, M, D, H, …). */
export type NoticeFields = Map<string, string>;

export function readNoticeFields(body: Buffer, what: string): NoticeFields {
  const r = new BodyReader(body, what);
  const fields: NoticeFields = new Map();
  for (;;) {
    const code = r.bytes(1)[0];
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring());
  }
  r.end();
  return fields;
}

export function noticeBody(fields: NoticeFields): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of fields) parts.push(Buffer.from(code, 'latin1'), cstr(value));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** An ErrorResponse as the server writes one (S and V, C, M, then optional detail and hint). */
export function errorResponse(
  severity: 'ERROR' | 'FATAL',
  sqlstate: string,
  text: string,
  extra: { detail?: string; hint?: string } = {},
): Buffer {
  const fields: NoticeFields = new Map([
    ['S', severity],
    ['V', severity],
    ['C', sqlstate],
    ['M', text],
  ]);
  if (extra.detail) fields.set('D', extra.detail);
  if (extra.hint) fields.set('H', extra.hint);
  return message('E', noticeBody(fields));
}

/** A StartupMessage (protocol 3.0) with `params` in order. */
export function startupMessage(params: [string, string][]): Buffer {
  const body = Buffer.concat([int32(196608), ...params.flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function simpleQuery(text: string): Buffer {
  return message('Q', cstr(text));
}

/** Authentication request codes of the `R` message. */
export const AUTH = { ok: 0, cleartext: 3, md5: 5, sasl: 10, saslContinue: 11, saslFinal: 12 } as const;

export function authentication(code: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return message('R', int32(code), payload);
}

/** AuthenticationSASL offering SCRAM-SHA-256 only (never -PLUS: the gateway does not see TLS). */
export function authenticationSasl(): Buffer {
  return authentication(AUTH.sasl, Buffer.concat([cstr('SCRAM-SHA-256'), Buffer.from([0])]));
}

export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const bytes = Buffer.from(data, 'utf8');
  return message('p', cstr(mechanism), int32(bytes.length), bytes);
}

export function saslResponse(data: string): Buffer {
  return message('p', Buffer.from(data, 'utf8'));
}
