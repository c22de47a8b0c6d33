/**
 * The Kubernetes ext_proc gRPC service: one loop per stream, the only code that reads or writes it. Each message goes
 * to the stream's KubeProcessor in order (STREAMED chunks are answered FIFO, as Envoy applies them); the loop writes
 * the reply, and ends the stream with OK exactly when the processor says no further message can come (an earlier OK
 * would make Envoy pass the rest through unprocessed, envoy-facts B.1), or with a gRPC error on an internal fault
 * (Envoy, with failure_mode_allow false, then fails the request closed). Nothing throws out of the loop.
 */
import * as grpc from '@grpc/grpc-js';
import { extProcServiceDefinition } from '../envoy-api/index.ts';
import type { ExternalProcessorImplementation, ProcessingRequest, ProcessingResponse } from '../envoy-api/index.ts';
import { loadMaskingEngine, type MaskingEngine } from '../masking/index.ts';
import type { GatewayCore } from '../service/core.ts';
import type { GrpcService } from '../service/grpc-server.ts';
import { UpstreamCredentials } from './credentials.ts';
import { MaskingPlans } from './masking-plans.ts';
import { KubeProcessor, type ProcessorDeps, type Reply } from './processor.ts';
import { SeenSessions } from './seen-sessions.ts';

/** gRPC call metadata naming the target, set by the listener's `grpc_service.initial_metadata`. */
export const TARGET_METADATA = 'x-portcullis-target';

export interface KubeAdapterOptions {
  /** Envoy's `max_message_timeout` on the kube listener (envoy/portcullis.yaml: 30 s); bounds approval holds. */
  maxMessageTimeoutMs?: number;
  /** Largest request body classified (default 8 MiB, the listener's buffer limit). */
  maxRequestBodyBytes?: number;
  /** The masking engine (default: loaded once, on first use). */
  engine?: () => Promise<MaskingEngine>;
  credentials?: UpstreamCredentials;
}

export function kubeExtProcAdapter(opts: KubeAdapterOptions = {}): (core: GatewayCore) => GrpcService {
  return (core) => {
    let engine: Promise<MaskingEngine> | undefined;
    const deps: ProcessorDeps = {
      core,
      credentials: opts.credentials ?? new UpstreamCredentials(),
      plans: new MaskingPlans(),
      sessions: new SeenSessions(),
      engine: opts.engine ?? (() => {
        engine ??= loadMaskingEngine().catch((err: unknown) => { engine = undefined; throw err; });
        return engine;
      }),
      maxMessageTimeoutMs: opts.maxMessageTimeoutMs ?? 30_000,
      maxRequestBodyBytes: opts.maxRequestBodyBytes ?? 8 * 1024 * 1024,
    };
    const implementation: ExternalProcessorImplementation = { Process: (call) => runStream(call, deps) };
    return { definition: extProcServiceDefinition(), implementation };
  };
}

type Call = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

/**
 * Why a held request stops waiting. Shared, not made per stream: an Error captures a stack (~5-10 µs) and every stream
 * ends, while only an approval hold ever reads the reason (compared by identity with its own stream's signal).
 */
const STREAM_ENDED = new Error('Envoy ended the ext_proc stream');
const STREAM_CANCELLED = new Error('Envoy cancelled the ext_proc stream');
type Outcome = 'completed' | 'failed' | 'cancelled' | 'client-closed';

export function runStream(call: Call, deps: ProcessorDeps): void {
  const targetName = String(call.metadata.get(TARGET_METADATA)[0] ?? '');
  const target = deps.core.targets.get(targetName);
  const processor = new KubeProcessor(deps, target?.kind === 'kubernetes' ? target : undefined, targetName);
  let closed = false;
  // Aborted when Envoy ends the stream: a held request then stops waiting for its approval without consuming it. Made
  // on the first hold (an AbortController costs ~5 µs and almost no stream holds); until then `endedBy` records the end.
  let streamEnded: AbortController | undefined;
  let endedBy: Error | undefined;
  const endStream = (reason: Error): void => {
    endedBy ??= reason;
    streamEnded?.abort(endedBy);
  };
  const holdSignal = (): AbortSignal => {
    if (!streamEnded) {
      streamEnded = new AbortController();
      if (endedBy) streamEnded.abort(endedBy);
    }
    return streamEnded.signal;
  };
  let inFlight = 0;
  let clientDone = false;
  let queue: Promise<void> = Promise.resolve();

  const close = (outcome: Outcome, error?: string): void => {
    if (closed) return;
    closed = true;
    deps.core.metrics.extprocStreams.inc({ service: 'kube', outcome });
    if (error !== undefined) call.emit('error', { code: grpc.status.INTERNAL, details: error });
    else if (outcome !== 'cancelled') call.end();
  };

  const handle = async (msg: ProcessingRequest): Promise<void> => {
    if (closed) return;
    try {
      let reply: Reply = await processor.process(msg);
      for (;;) {
        if (closed) return;
        switch (reply.kind) {
          case 'respond':
            call.write(reply.message);
            if (reply.end) close('completed');
            return;
          case 'hold':
            call.write(reply.message);
            reply = await reply.resume(holdSignal());
            break;
          case 'fail':
            processor.fault(new Error(reply.message));
            close('failed', reply.message);
            return;
          default: {
            const never: never = reply;
            throw new Error(`unknown reply ${JSON.stringify(never)}`);
          }
        }
      }
    } catch (err) {
      if (endedBy !== undefined && err === endedBy) return; // the agent left during a hold
      processor.fault(err);
      close('failed', 'internal error in the Kubernetes processor');
    }
  };

  call.on('data', (msg: ProcessingRequest) => {
    inFlight++;
    queue = queue.then(() => handle(msg)).finally(() => {
      inFlight--;
      if (clientDone && inFlight === 0 && !closed) {
        processor.streamClosed();
        close('client-closed');
      }
    });
  });
  // Envoy half-closes when the HTTP stream is over (graceful close): finish what is queued, then end.
  call.on('end', () => {
    clientDone = true;
    endStream(STREAM_ENDED);
    if (inFlight === 0 && !closed) {
      processor.streamClosed();
      close('client-closed');
    }
  });
  call.on('cancelled', () => {
    endStream(STREAM_CANCELLED);
    if (closed) return;
    processor.streamClosed();
    close('cancelled');
  });
  call.on('error', (err: Error) => deps.core.logger.debug({ err: err.message }, 'kube ext_proc stream error'));
}
