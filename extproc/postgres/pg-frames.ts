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
  /** Bytes not yet handed out: chunks[0] from `offset` on, then the other chunks whole. */
  private chunks: Buffer[] = [];
  private offset = 0;
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
    const declared = this.int32At(headerBytes - 4);
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

  // The unread bytes are read in place, by offset: a message then costs its own two views (raw and body) and no
  // view of the header or of the rest of its chunk. Only a message split across chunks is copied, once, whole.

  /** The int32 `at` bytes into the unread bytes (the caller checked `size`). */
  private int32At(at: number): number {
    if (this.chunks[0].length - this.offset < at + 4) this.joinChunks();
    return this.chunks[0].readInt32BE(this.offset + at);
  }

  /** Hands out the next `n` unread bytes (the caller checked `size`). */
  private take(n: number): Buffer {
    if (this.chunks[0].length - this.offset < n) this.joinChunks();
    const first = this.chunks[0];
    const raw = first.subarray(this.offset, this.offset + n);
    this.offset += n;
    if (this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    this.size -= n;
    return raw;
  }

  private joinChunks(): void {
    this.chunks[0] = this.chunks[0].subarray(this.offset);
    this.chunks = [Buffer.concat(this.chunks)];
    this.offset = 0;
  }
}
