/**
 * The Kubernetes adapter: an HTTP ext_proc listener whose streams each get a KubeProcessor. The stream loop
 * (streams/http-ext-proc.ts) owns the gRPC stream; the spine owns everything but the translation.
 */
import { lazyMaskingEngine, type MaskingEngine } from '../masking/index.ts';
import type { DataPathAdapter } from '../streams/index.ts';
import { KubeProcessor, type ProcessorDeps } from './processor.ts';

/** gRPC call metadata naming the target, set by the listener's `grpc_service.initial_metadata`. */
export const TARGET_METADATA = 'x-portcullis-target';

export interface KubeAdapterOptions {
  /** Envoy's `max_message_timeout` on the kube listener (envoy/portcullis.yaml: 30 s); bounds approval holds. */
  maxMessageTimeoutMs?: number;
  /** Largest request body classified (default 8 MiB, the listener's buffer limit). */
  maxRequestBodyBytes?: number;
  /** How long a dry run for a rule on `k8s.object` may take before the write is refused (default 10 s). */
  dryRunTimeoutMs?: number;
  /** The masking engine (default: loaded once, on first use). */
  engine?: () => Promise<MaskingEngine>;
}

export function kubeExtProcAdapter(opts: KubeAdapterOptions = {}): DataPathAdapter {
  return (spine) => {
    const deps: ProcessorDeps = {
      spine,
      engine: opts.engine ?? lazyMaskingEngine(),
      maxMessageTimeoutMs: opts.maxMessageTimeoutMs ?? 30_000,
      maxRequestBodyBytes: opts.maxRequestBodyBytes ?? 8 * 1024 * 1024,
      dryRunTimeoutMs: opts.dryRunTimeoutMs ?? 10_000,
    };
    return {
      kind: 'http-ext-proc',
      name: 'kube',
      open: (stream) => new KubeProcessor(deps, stream.metadata(TARGET_METADATA) ?? ''),
    };
  };
}
