/** The protocol adapters the service runs: each turns the core into a gRPC service Envoy calls. */
import { kubeExtProcAdapter } from '../kube/index.ts';
import type { GatewayCore } from './core.ts';
import type { GrpcService } from './grpc-server.ts';

export const DATA_PATH_ADAPTERS: ((core: GatewayCore) => GrpcService)[] = [kubeExtProcAdapter()];
