/**
 * The adapter contract: a protocol adapter is a function from the spine to one listener of a kind. The composition
 * root serves each kind: an HTTP or network ext_proc listener becomes a gRPC service whose generic stream loop owns
 * reading, writing, holds and stream end, and calls the adapter's processor (one per stream) phase by phase; a TCP
 * listener (the SSH gateway: SSH is encrypted end to end, so no Envoy filter can see inside it) runs its own server.
 */
import type { Logger } from 'pino';
import type { DataPathMetrics, Spine } from '../spine/index.ts';
import type { HttpBody, HttpHeaders, ProcessingResponse } from '../envoy-api/index.ts';

/** What a stream loop knows about a new stream before its first message. */
export interface StreamStart {
  /** gRPC call metadata (Envoy's `grpc_service.initial_metadata`), first value of `key`. */
  metadata(key: string): string | undefined;
}

export interface HttpExtProcListener {
  kind: 'http-ext-proc';
  /** Names the listener in logs and metrics (`service` label). */
  name: string;
  open(stream: StreamStart): HttpStreamProcessor;
}

export interface NetworkExtProcListener {
  kind: 'network-ext-proc';
  name: string;
  open(stream: StreamStart): NetworkStreamProcessor;
}

export interface TcpListener {
  kind: 'tcp';
  name: string;
  /** Starts serving; resolves once the port accepts. */
  start(): Promise<RunningListener>;
}

export interface RunningListener {
  address: string;
  /** What clients may need to know, served by the admin API (the SSH gateway's host key and its fingerprint). */
  details?: Record<string, string>;
  close(): Promise<void>;
}

export type DataPathListener = HttpExtProcListener | NetworkExtProcListener | TcpListener;

export type DataPathAdapter = (spine: Spine) => DataPathListener;

/** What the stream loops need besides the processor. */
export interface StreamLoopDeps {
  logger: Logger;
  metrics: Pick<DataPathMetrics, 'extprocStreams'>;
}

// ---------------------------------------------------------------------------------------- HTTP ext_proc processors

/** The message a processor awaits next; trailers are configured SKIP and pass through unchanged if they come. */
export type HttpPhase = 'request_headers' | 'request_body' | 'response_headers' | 'response_body';

export type HttpReply =
  /** Write `message`; `end` = no further message can come on this stream (the loop closes it with OK). */
  | { kind: 'respond'; message: ProcessingResponse; end: boolean }
  /**
   * Write `message` (an override_message_timeout), then wait for `resume()` and handle its reply. The loop aborts
   * `signal` when Envoy ends the stream first (the agent went away); resume() then rejects.
   */
  | { kind: 'hold'; message: ProcessingResponse; resume: (signal: AbortSignal) => Promise<HttpReply> }
  /** End the stream with a gRPC error (Envoy fails closed). */
  | { kind: 'fail'; message: string };

/** One HTTP stream's processing: one method per phase, each returning the reply for the loop to write. */
export interface HttpStreamProcessor {
  /** The phase whose message the processor accepts next; `nothing` once its last reply has gone. */
  readonly awaiting: HttpPhase | 'nothing';
  requestHeaders(h: HttpHeaders): Promise<HttpReply>;
  requestBody(b: HttpBody): Promise<HttpReply>;
  responseHeaders(h: HttpHeaders): Promise<HttpReply>;
  responseBody(b: HttpBody): Promise<HttpReply>;
  /** Envoy ended the stream before the processor's last reply (the client went away, or Envoy reset it). */
  streamClosed(): void;
  /** An internal fault; the loop fails the stream after this. */
  fault(err: unknown): void;
}

// ------------------------------------------------------------------------------------- network ext_proc processors

export type Direction = 'read' | 'write';

export type NetworkReply =
  /** Inject `data` in the chunk's own direction (empty: drop the chunk); `endOfStream` half-closes that way. */
  | { kind: 'forward'; data: Buffer; endOfStream: boolean }
  /**
   * Close the connection: `flush` writes what Envoy already holds for the client first, `reset` does not. Envoy
   * discards any bytes in a closing answer, so a last message to the client must go in an earlier answer.
   */
  | { kind: 'close'; how: 'flush' | 'reset' }
  /** End the stream with a gRPC error (Envoy closes the connection). */
  | { kind: 'fail'; message: string };

/**
 * One TCP connection's processing: read = client → upstream, write = upstream → client. A reply that needs no waiting
 * may be returned as it is: the loop then answers without a promise per chunk.
 */
export interface NetworkStreamProcessor {
  readData(chunk: Buffer, endOfStream: boolean): NetworkReply | Promise<NetworkReply>;
  writeData(chunk: Buffer, endOfStream: boolean): NetworkReply | Promise<NetworkReply>;
  /** Envoy ended the stream (the connection is over). */
  streamClosed(): void;
  fault(err: unknown): void;
}
