/**
 * The network ext_proc stream loop (envoy.service.network_ext_proc.v3.NetworkExternalProcessor/Process): one gRPC
 * stream per TCP connection, one processor per stream. Envoy drains each chunk it sends and injects exactly the bytes
 * the answer carries, answers applied in order per direction (docs/envoy-behaviour.md C.2 and Appendix), so the loop
 * keeps one queue per direction: a slow decision on the client's bytes never holds up the server's, and each
 * direction's answers leave in the order its chunks came. The loop never ends the stream with OK while Envoy may
 * still send (an OK close makes Envoy pass the rest of the connection through unprocessed): only after Envoy itself
 * half-closes. A processor fault is a gRPC error, so Envoy closes the connection (failure_mode_allow: false).
 */
import * as grpc from '@grpc/grpc-js';
import {
  bytesOf,
  networkExtProcServiceDefinition,
  type NetworkExternalProcessorImplementation,
  type NetworkProcessingRequest,
  type NetworkProcessingResponse,
} from '../envoy-api/index.ts';
import type { GrpcService } from './grpc-service.ts';
import type { Direction, NetworkExtProcListener, NetworkReply, StreamLoopDeps } from './listener.ts';
import { metadataValue } from './stream-metadata.ts';

type Call = grpc.ServerDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>;

export function networkExtProcService(listener: NetworkExtProcListener, deps: StreamLoopDeps): GrpcService {
  const implementation: NetworkExternalProcessorImplementation = {
    Process: (call) => runNetworkStream(call, listener, deps),
  };
  return { definition: networkExtProcServiceDefinition(), implementation };
}

function answer(
  direction: Direction,
  reply: Extract<NetworkReply, { kind: 'forward' | 'close' }>,
): NetworkProcessingResponse {
  if (reply.kind === 'close') return { connection_status: reply.how === 'flush' ? 'CLOSE' : 'CLOSE_RST' };
  // No data_processing_status: Envoy never reads it and injects exactly the bytes given, changed or not.
  const data = reply.endOfStream ? { data: reply.data, end_of_stream: true } : { data: reply.data };
  return direction === 'read' ? { read_data: data } : { write_data: data };
}

export function runNetworkStream(call: Call, listener: NetworkExtProcListener, deps: StreamLoopDeps): void {
  const processor = listener.open({ metadata: (key) => metadataValue(call, key) });
  let closed = false;
  let inFlight = 0;
  let clientDone = false;

  const close = (end: 'completed' | 'failed' | 'cancelled' | 'client-closed', error?: string): void => {
    if (closed) return;
    closed = true;
    deps.metrics.extprocStreams.inc({ service: listener.name, outcome: end });
    if (error !== undefined) call.emit('error', { code: grpc.status.INTERNAL, details: error });
    else if (end !== 'cancelled') call.end();
  };

  const settle = (): void => {
    inFlight--;
    if (clientDone && inFlight === 0 && !closed) {
      processor.streamClosed();
      close('client-closed');
    }
  };

  const deliver = (direction: Direction, reply: NetworkReply): void => {
    if (closed) return;
    if (reply.kind === 'fail') {
      processor.fault(new Error(reply.message));
      close('failed', reply.message);
      return;
    }
    try {
      call.write(answer(direction, reply));
    } catch (err) {
      failed(err);
    }
  };

  const failed = (err: unknown): void => {
    if (closed) return;
    processor.fault(err);
    close('failed', `internal error in the ${listener.name} processor`);
  };

  /** The head chunk of `direction` is answered: the next one is taken. */
  const next = (direction: Direction): void => {
    waiting[direction].shift();
    settle();
    drain(direction);
  };
  // A direction has one chunk in processing at a time: its handlers are made once per stream, not per chunk.
  const replied: Record<Direction, (r: NetworkReply) => void> = {
    read: (r) => {
      deliver('read', r);
      next('read');
    },
    write: (r) => {
      deliver('write', r);
      next('write');
    },
  };
  const refused: Record<Direction, (err: unknown) => void> = {
    read: (err) => {
      failed(err);
      next('read');
    },
    write: (err) => {
      failed(err);
      next('write');
    },
  };

  /** Chunks of each direction not yet answered, in order; the head is the one being processed. */
  const waiting: Record<Direction, Array<{ chunk: Buffer; endOfStream: boolean }>> = { read: [], write: [] };

  /**
   * Answers a direction's chunks in order: each at once when the processor answers at once (no promise per chunk),
   * the rest once its answer has come.
   */
  const drain = (direction: Direction): void => {
    const queue = waiting[direction];
    while (queue.length > 0) {
      const { chunk, endOfStream } = queue[0];
      let reply: NetworkReply | Promise<NetworkReply> | null = null;
      try {
        if (!closed)
          reply =
            direction === 'read' ? processor.readData(chunk, endOfStream) : processor.writeData(chunk, endOfStream);
      } catch (err) {
        failed(err);
      }
      if (reply instanceof Promise) {
        reply.then(replied[direction], refused[direction]);
        return;
      }
      if (reply) deliver(direction, reply);
      queue.shift();
      settle();
    }
  };

  call.on('data', (msg: NetworkProcessingRequest) => {
    // Envoy sends one direction per message; a message with both is malformed (read_data is taken first, as Envoy
    // applies it first in answers).
    const direction: Direction | null = msg.read_data ? 'read' : msg.write_data ? 'write' : null;
    const data = msg.read_data ?? msg.write_data;
    if (direction === null || data === undefined) {
      processor.fault(new Error('network ProcessingRequest without read_data or write_data'));
      close('failed', 'network ProcessingRequest without read_data or write_data');
      return;
    }
    inFlight++;
    const queue = waiting[direction];
    queue.push({ chunk: bytesOf(data.data), endOfStream: data.end_of_stream === true });
    // A chunk behind another still being processed waits for it (drain() takes it next).
    if (queue.length === 1) drain(direction);
  });
  call.on('end', () => {
    clientDone = true;
    if (inFlight === 0 && !closed) {
      processor.streamClosed();
      close('client-closed');
    }
  });
  call.on('cancelled', () => {
    if (closed) return;
    processor.streamClosed();
    close('cancelled');
  });
  call.on('error', (err: Error) =>
    deps.logger.debug({ err: err.message, listener: listener.name }, 'network ext_proc stream error'),
  );
}
