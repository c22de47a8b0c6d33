/** The generic Envoy stream loops and the adapter contract: what an adapter implements, and what serves it. */
export type {
  DataPathAdapter,
  DataPathListener,
  Direction,
  HttpExtProcListener,
  HttpPhase,
  HttpReply,
  HttpStreamProcessor,
  NetworkExtProcListener,
  NetworkReply,
  NetworkStreamProcessor,
  RunningListener,
  StreamLoopDeps,
  StreamStart,
  TcpListener,
} from './listener.ts';
export { httpExtProcService, runHttpStream } from './http-ext-proc.ts';
export { networkExtProcService, runNetworkStream } from './network-ext-proc.ts';
export type { GrpcService } from './grpc-service.ts';
