/** A gRPC service as the server registers it: a definition and its handlers. */
import type * as grpc from '@grpc/grpc-js';

export interface GrpcService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}
