/**
 * The HTTP ext_proc stream loop (envoy.service.ext_proc.v3.ExternalProcessor/Process): one loop per gRPC stream, the
 * only code that reads or writes it. Each message goes, in order, to the stream's processor — and only when it is the
 * message the processor awaits; anything else fails the stream (Envoy then fails the request closed). STREAMED chunks
 * are answered FIFO, as Envoy applies them. The loop writes each reply; on a hold it writes the timeout override and
 * waits; it ends the stream with OK exactly when the processor says no further message can come (an earlier OK would
 * make Envoy pass the rest through unprocessed, docs/envoy-behaviour.md B.1), or with a gRPC error on an internal
 * fault. Nothing throws out of the loop.
 */
import * as grpc from '@grpc/grpc-js';
import {
  extProcServiceDefinition,
  type ExternalProcessorImplementation,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../envoy-api/index.ts';
import type { GrpcService } from './grpc-service.ts';
import type { HttpExtProcListener, HttpReply, HttpStreamProcessor, StreamLoopDeps } from './listener.ts';
import { metadataValue } from './stream-metadata.ts';

type Call = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;
type StreamEnd = 'completed' | 'failed' | 'cancelled' | 'client-closed';

/**
 * Why a held request stops waiting. Shared, not made per stream: an Error captures a stack (~5-10 µs) and every stream
 * ends, while only a hold ever reads the reason (compared by identity with its own stream's signal).
 */
const STREAM_ENDED = new Error('Envoy ended the ext_proc stream');
const STREAM_CANCELLED = new Error('Envoy cancelled the ext_proc stream');

export function httpExtProcService(listener: HttpExtProcListener, deps: StreamLoopDeps): GrpcService {
  const implementation: ExternalProcessorImplementation = { Process: (call) => runHttpStream(call, listener, deps) };
  return { definition: extProcServiceDefinition(), implementation };
}

/** Routes one message to the phase method, if it is the phase the processor awaits. */
function dispatch(processor: HttpStreamProcessor, msg: ProcessingRequest): Promise<HttpReply> | HttpReply {
  const kind = msg.request;
  switch (kind) {
    // Trailers are configured SKIP; should a deployment send them anyway, they pass unchanged.
    case 'request_trailers':
      return { kind: 'respond', message: { request_trailers: {} }, end: false };
    case 'response_trailers':
      return { kind: 'respond', message: { response_trailers: {} }, end: false };
    case undefined:
      return { kind: 'fail', message: 'ProcessingRequest without a kind' };
    default:
      if (kind !== processor.awaiting)
        return { kind: 'fail', message: `unexpected ${kind} message while awaiting ${processor.awaiting}` };
  }
  switch (msg.request) {
    case 'request_headers':
      return processor.requestHeaders(msg.request_headers);
    case 'request_body':
      return processor.requestBody(msg.request_body);
    case 'response_headers':
      return processor.responseHeaders(msg.response_headers);
    case 'response_body':
      return processor.responseBody(msg.response_body);
    default:
      return { kind: 'fail', message: `unknown ProcessingRequest ${String(msg.request)}` };
  }
}

export function runHttpStream(call: Call, listener: HttpExtProcListener, deps: StreamLoopDeps): void {
  new HttpStreamLoop(call, listener, deps).start();
}

/**
 * One stream's loop. A class rather than closures: a stream is short-lived and there are thousands a second, so its
 * handlers are methods made once, not functions made per stream.
 */
class HttpStreamLoop {
  private readonly processor: HttpStreamProcessor;
  private closed = false;
  /**
   * Aborted when Envoy ends the stream: a held request then stops waiting. Made on the first hold (an AbortController
   * costs ~5 µs and almost no stream holds); until then `endedBy` records the end.
   */
  private streamEnded: AbortController | undefined;
  private endedBy: Error | undefined;
  private inFlight = 0;
  private clientDone = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly call: Call,
    private readonly listener: HttpExtProcListener,
    private readonly deps: StreamLoopDeps,
  ) {
    this.processor = listener.open({ metadata: (key) => metadataValue(call, key) });
  }

  start(): void {
    this.call.on('data', this.onData);
    this.call.on('end', this.onEnd);
    this.call.on('cancelled', this.onCancelled);
    this.call.on('error', this.onError);
  }

  private readonly onData = (msg: ProcessingRequest): void => {
    this.inFlight++;
    this.queue = this.queue.then(() => this.handle(msg)).finally(this.settle);
  };

  private readonly settle = (): void => {
    this.inFlight--;
    if (this.clientDone && this.inFlight === 0 && !this.closed) {
      this.processor.streamClosed();
      this.close('client-closed');
    }
  };

  /** Envoy half-closes when the HTTP stream is over (graceful close): finish what is queued, then end. */
  private readonly onEnd = (): void => {
    this.clientDone = true;
    this.endStream(STREAM_ENDED);
    if (this.inFlight === 0 && !this.closed) {
      this.processor.streamClosed();
      this.close('client-closed');
    }
  };

  private readonly onCancelled = (): void => {
    this.endStream(STREAM_CANCELLED);
    if (this.closed) return;
    this.processor.streamClosed();
    this.close('cancelled');
  };

  private readonly onError = (err: Error): void => {
    this.deps.logger.debug({ err: err.message, listener: this.listener.name }, 'ext_proc stream error');
  };

  private endStream(reason: Error): void {
    this.endedBy ??= reason;
    this.streamEnded?.abort(this.endedBy);
  }

  private holdSignal(): AbortSignal {
    if (!this.streamEnded) {
      this.streamEnded = new AbortController();
      if (this.endedBy) this.streamEnded.abort(this.endedBy);
    }
    return this.streamEnded.signal;
  }

  private close(end: StreamEnd, error?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.deps.metrics.extprocStreams.inc({ service: this.listener.name, outcome: end });
    if (error !== undefined) this.call.emit('error', { code: grpc.status.INTERNAL, details: error });
    else if (end !== 'cancelled') this.call.end();
  }

  private async handle(msg: ProcessingRequest): Promise<void> {
    if (this.closed) return;
    try {
      let reply = await dispatch(this.processor, msg);
      for (;;) {
        if (this.closed) return;
        switch (reply.kind) {
          case 'respond':
            this.call.write(reply.message);
            if (reply.end) this.close('completed');
            return;
          case 'hold':
            this.call.write(reply.message);
            reply = await reply.resume(this.holdSignal());
            break;
          case 'fail':
            this.processor.fault(new Error(reply.message));
            this.close('failed', reply.message);
            return;
          default: {
            const never: never = reply;
            throw new Error(`unknown reply ${JSON.stringify(never)}`);
          }
        }
      }
    } catch (err) {
      if (this.endedBy !== undefined && err === this.endedBy) return; // the agent left during a hold
      this.processor.fault(err);
      this.close('failed', `internal error in the ${this.listener.name} processor`);
    }
  }
}
