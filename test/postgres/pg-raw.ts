/**
 * A logged-in connection through the stand-in that speaks the frontend protocol by hand: the pg driver logs in, then
 * the test writes messages itself (a Parse without a Sync, a Bind of any name, several batches in one write) and reads
 * every backend message until a number of ReadyForQuery.
 */
import type net from 'node:net';
import type pg from 'pg';
import { cstr, int16, int32, message } from '../../extproc/postgres/pg-wire.ts';

export const Q = (text: string | Buffer): Buffer =>
  message('Q', typeof text === 'string' ? cstr(text) : Buffer.concat([text, Buffer.from([0])]));
export const P = (name: string, text: string): Buffer => message('P', cstr(name), cstr(text), int16(0));
export const B = (portal: string, statement: string, values: string[] = []): Buffer =>
  message(
    'B',
    cstr(portal),
    cstr(statement),
    int16(0),
    int16(values.length),
    ...values.flatMap((v) => [int32(Buffer.byteLength(v)), Buffer.from(v)]),
    int16(0),
  );
export const E = (portal: string): Buffer => message('E', cstr(portal), int32(0));
export const S = (): Buffer => message('S');

/** A backend message: its type and its body as text (NULs shown as `|`). */
export interface RawMessage {
  type: string;
  text: string;
}

export interface RawConnection {
  /** Writes the messages in one write and reads until `readies` ReadyForQuery. */
  send(messages: Buffer[], readies: number): Promise<RawMessage[]>;
  end(): Promise<void>;
}

/** Takes over a connected pg client's socket. */
export function rawConnection(client: pg.Client): RawConnection {
  const connection = (client as unknown as { connection: { stream: net.Socket } & NodeJS.EventEmitter }).connection;
  const stream = connection.stream;
  stream.removeAllListeners('data');
  client.on('error', () => {});
  connection.on('error', () => {});
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  stream.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    wake?.();
  });
  const next = async (): Promise<RawMessage> => {
    for (;;) {
      if (buffered.length >= 5 && buffered.length >= 1 + buffered.readInt32BE(1)) {
        const length = buffered.readInt32BE(1);
        const m = {
          type: String.fromCharCode(buffered[0]),
          text: buffered
            .subarray(5, 1 + length)
            .toString('utf8')
            .replace(/\0/g, '|'),
        };
        buffered = buffered.subarray(1 + length);
        return m;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  };
  return {
    async send(messages, readies) {
      stream.write(Buffer.concat(messages));
      const got: RawMessage[] = [];
      for (let seen = 0; seen < readies; ) {
        const m = await next();
        got.push(m);
        if (m.type === 'Z') seen++;
      }
      return got;
    },
    async end() {
      stream.end(message('X'));
      stream.destroy();
    },
  };
}

/** The SQLSTATE and message of each ErrorResponse. */
export function errorsOf(messages: RawMessage[]): { code: string; message: string }[] {
  return messages
    .filter((m) => m.type === 'E')
    .map((m) => {
      const fields = new Map(m.text.split('|').map((f) => [f.slice(0, 1), f.slice(1)]));
      return { code: fields.get('C') ?? '', message: fields.get('M') ?? '' };
    });
}

/** The first column of each DataRow, as text. */
export function rowsOf(messages: RawMessage[]): string[] {
  return messages.filter((m) => m.type === 'D').map((m) => m.text.slice(6));
}
