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
  const data = { data: reply.data, ...(reply.endOfStream ? { end_of_stream: true } : {}) };
  return direction === 'read'
    ? { read_data: data, data_processing_status: 'MODIFIED' }
    : { write_data: data, data_processing_status: 'MODIFIED' };
}

export function runNetworkStream(call: Call, listener: NetworkExtProcListener, deps: StreamLoopDeps): void {
  const processor = listener.open({ metadata: (key) => metadataValue(call, key) });
  let closed = false;
  const queues: Record<Direction, Promise<void>> = { read: Promise.resolve(), write: Promise.resolve() };
  let inFlight = 0;
  let clientDone = false;

  const close = (end: 'completed' | 'failed' | 'cancelled' | 'client-closed', error?: string): void => {
    if (closed) return;
    closed = true;
    deps.metrics.extprocStreams.inc({ service: listener.name, outcome: end });
    if (error !== undefined) call.emit('error', { code: grpc.status.INTERNAL, details: error });
    else if (end !== 'cancelled') call.end();
  };

  const handle = async (direction: Direction, chunk: Buffer, endOfStream: boolean): Promise<void> => {
    if (closed) return;
    try {
      const reply =
        direction === 'read'
          ? await processor.readData(chunk, endOfStream)
          : await processor.writeData(chunk, endOfStream);
      if (closed) return;
      if (reply.kind === 'fail') {
        processor.fault(new Error(reply.message));
        close('failed', reply.message);
        return;
      }
      call.write(answer(direction, reply));
    } catch (err) {
      processor.fault(err);
      close('failed', `internal error in the ${listener.name} processor`);
    }
  };

  const settle = (): void => {
    inFlight--;
    if (clientDone && inFlight === 0 && !closed) {
      processor.streamClosed();
      close('client-closed');
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
    const chunk = bytesOf(data.data);
    inFlight++;
    queues[direction] = queues[direction]
      .then(() => handle(direction, chunk, data.end_of_stream === true))
      .finally(settle);
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
