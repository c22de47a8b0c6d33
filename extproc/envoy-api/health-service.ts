import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoLoaderOptions } from './ext-proc-service.ts';
import { protoIncludeDirs } from './proto-paths.ts';

/** grpc.health.v1 messages as shaped by protoLoaderOptions. */
export interface HealthCheckRequest {
  service?: string;
}
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
export interface HealthCheckResponse {
  status?: ServingStatus;
}

export interface HealthImplementation extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse>;
  Watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse>;
}

export interface HealthClient extends grpc.Client {
  Check(req: HealthCheckRequest, cb: grpc.requestCallback<HealthCheckResponse>): grpc.ClientUnaryCall;
  Check(
    req: HealthCheckRequest,
    options: grpc.CallOptions,
    cb: grpc.requestCallback<HealthCheckResponse>,
  ): grpc.ClientUnaryCall;
}

let pkg: protoLoader.PackageDefinition | undefined;

/** grpc-js service definition of grpc.health.v1.Health (protos/grpc/health/v1/health.proto; not in the xDS deps). */
export function healthServiceDefinition(): grpc.ServiceDefinition {
  pkg ??= protoLoader.loadSync('grpc/health/v1/health.proto', {
    ...protoLoaderOptions,
    includeDirs: [...protoIncludeDirs],
  });
  return pkg['grpc.health.v1.Health'] as grpc.ServiceDefinition;
}

export function newHealthClient(address: string, credentials = grpc.credentials.createInsecure()): HealthClient {
  const Ctor = grpc.makeGenericClientConstructor(healthServiceDefinition(), 'Health');
  return new Ctor(address, credentials) as unknown as HealthClient;
}
