/**
 * Serving the adapters: each adapter, given the spine, yields a listener; ext_proc listeners become gRPC services
 * (one per Envoy service name), TCP listeners run their own servers.
 */
import type { Spine } from '../spine/index.ts';
import {
  httpExtProcService,
  networkExtProcService,
  type DataPathAdapter,
  type GrpcService,
  type RunningListener,
  type StreamLoopDeps,
  type TcpListener,
} from '../streams/index.ts';

export interface AdapterServices {
  grpc: GrpcService[];
  tcp: TcpListener[];
}

export function adapterServices(adapters: DataPathAdapter[], spine: Spine, deps: StreamLoopDeps): AdapterServices {
  const out: AdapterServices = { grpc: [], tcp: [] };
  const byKind = new Map<string, string>();
  for (const adapter of adapters) {
    const listener = adapter(spine);
    if (listener.kind !== 'tcp') {
      // One gRPC service name per ext_proc kind: a second adapter of the same kind would never be called.
      const taken = byKind.get(listener.kind);
      if (taken) throw new Error(`adapters ${taken} and ${listener.name} both serve ${listener.kind}; only one can`);
      byKind.set(listener.kind, listener.name);
    }
    switch (listener.kind) {
      case 'http-ext-proc':
        out.grpc.push(httpExtProcService(listener, deps));
        break;
      case 'network-ext-proc':
        out.grpc.push(networkExtProcService(listener, deps));
        break;
      case 'tcp':
        out.tcp.push(listener);
        break;
      default: {
        const never: never = listener;
        throw new Error(`unknown listener ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

export async function startTcpListeners(listeners: TcpListener[]): Promise<RunningListener[]> {
  const running: RunningListener[] = [];
  try {
    for (const l of listeners) running.push(await l.start());
  } catch (err) {
    for (const r of running) await r.close();
    throw err;
  }
  return running;
}
