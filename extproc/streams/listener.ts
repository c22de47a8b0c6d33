/**
 * The adapter contract: a protocol adapter is a function from the spine to one listener of a kind. The composition
 * root serves each kind: an HTTP or network ext_proc listener becomes a gRPC service whose generic stream loop owns
 * reading, writing, holds and stream end, and calls the adapter's processor (one per stream) phase by phase; a TCP
 * listener (the SSH gateway: SSH is encrypted end to end, so no Envoy filter can see inside it) runs its own server.
 */
import type { Logger } from 'pino';
import type { DataPathMetrics, Spine } from '../spine/index.ts';
import type { HttpStreamProcessor } from './http-ext-proc.ts';
import type { NetworkStreamProcessor } from './network-ext-proc.ts';

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
  close(): Promise<void>;
}

export type DataPathListener = HttpExtProcListener | NetworkExtProcListener | TcpListener;

export type DataPathAdapter = (spine: Spine) => DataPathListener;

/** What the stream loops need besides the processor. */
export interface StreamLoopDeps {
  logger: Logger;
  metrics: Pick<DataPathMetrics, 'extprocStreams'>;
}
