/** The generic Envoy stream loops and the adapter contract: what an adapter implements, and what serves it. */
export type {
  DataPathAdapter,
  DataPathListener,
  HttpExtProcListener,
  NetworkExtProcListener,
  RunningListener,
  StreamLoopDeps,
  StreamStart,
  TcpListener,
} from './listener.ts';
export {
  httpExtProcService,
  runHttpStream,
  type HttpPhase,
  type HttpReply,
  type HttpStreamProcessor,
} from './http-ext-proc.ts';
export {
  networkExtProcService,
  runNetworkStream,
  type Direction,
  type NetworkReply,
  type NetworkStreamProcessor,
} from './network-ext-proc.ts';
export type { GrpcService } from './grpc-service.ts';
