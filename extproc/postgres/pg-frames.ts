/**
 * Incremental framing of the PostgreSQL v3 wire protocol, one reader per direction of a connection. TCP chunks split
 * and join messages freely; the reader keeps the bytes of an incomplete message and hands out whole ones only. Every
 * declared length is checked against the reader's cap before anything is buffered for it (a 1 GB length costs
 * nothing), and a length smaller than the protocol allows is refused: the caller ends the connection in the protocol's
 * own terms (an ErrorResponse with SQLSTATE 08P01) and never sees a partial or invented message.
 *
 * Frontend: the first message has no type byte (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest); every later
 * one is `type int32-length body`. Backend: always typed, except the single byte that answers SSLRequest/GSSENCRequest.
 */

/** A whole message: its type byte (`''` for an untyped startup-phase message), its body, and its exact bytes. */
export interface PgFrame {
  type: string;
  body: Buffer;
  raw: Buffer;
}

export class PgFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PgFrameError';
  }
}

/** What the reader expects next: an untyped startup-phase message, one answer byte, or typed messages. */
export type FrameMode = 'untyped' | 'single-byte' | 'typed';

/** PostgreSQL's own cap for a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_BYTES = 10_000;

export class PgFrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    /** Which side this reader parses (named in errors). */
    private readonly side: 'client' | 'server',
    /** The largest typed message accepted, header included. */
    private readonly maxMessageBytes: number,
    public mode: FrameMode,
  ) {}

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.size;
  }

  /** Adds a chunk; returns every message it completes, in order. Throws PgFrameError on a malformed frame. */
  push(chunk: Buffer): PgFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: PgFrame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return out;
      out.push(frame);
    }
  }

  private next(): PgFrame | null {
    if (this.mode === 'single-byte') {
      if (this.size < 1) return null;
      const raw = this.take(1);
      this.mode = 'typed';
      return { type: String.fromCharCode(raw[0]), body: raw.subarray(1), raw };
    }
    const headerBytes = this.mode === 'untyped' ? 4 : 5;
    if (this.size < headerBytes) return null;
    const header = this.peek(headerBytes);
    const declared = header.readInt32BE(headerBytes - 4);
    const cap = this.mode === 'untyped' ? MAX_STARTUP_BYTES : this.maxMessageBytes - 1;
    const min = this.mode === 'untyped' ? 8 : 4;
    if (declared < min) throw new PgFrameError(`invalid ${this.side} message length ${declared}`);
    if (declared > cap) {
      throw new PgFrameError(`${this.side} message length ${declared} is over the gateway's limit of ${cap} bytes`);
    }
    const total = declared + headerBytes - 4;
    if (this.size < total) return null;
    const raw = this.take(total);
    if (this.mode === 'untyped') {
      this.mode = 'typed';
      return { type: '', body: raw.subarray(4), raw };
    }
    return { type: String.fromCharCode(raw[0]), body: raw.subarray(5), raw };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const raw = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.size -= n;
    return raw;
  }
}
