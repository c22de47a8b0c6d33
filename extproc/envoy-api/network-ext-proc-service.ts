import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoLoaderOptions } from './ext-proc-service.ts';
import type { NetworkProcessingRequest, NetworkProcessingResponse } from './network-ext-proc-types.ts';
import { protoIncludeDirs } from './proto-paths.ts';

const PROTO = 'envoy/service/network_ext_proc/v3/network_external_processor.proto';
const SERVICE = 'envoy.service.network_ext_proc.v3.NetworkExternalProcessor';

let pkg: protoLoader.PackageDefinition | undefined;

/** grpc-js service definition of envoy.service.network_ext_proc.v3.NetworkExternalProcessor (the project's proto). */
export function networkExtProcServiceDefinition(): grpc.ServiceDefinition {
  pkg ??= protoLoader.loadSync(PROTO, { ...protoLoaderOptions, includeDirs: [...protoIncludeDirs] });
  return pkg[SERVICE] as grpc.ServiceDefinition;
}

export interface NetworkExternalProcessorImplementation extends grpc.UntypedServiceImplementation {
  Process: grpc.handleBidiStreamingCall<NetworkProcessingRequest, NetworkProcessingResponse>;
}

export interface NetworkExternalProcessorClient extends grpc.Client {
  Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>;
}

export function newNetworkExtProcClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): NetworkExternalProcessorClient {
  const Ctor = grpc.makeGenericClientConstructor(networkExtProcServiceDefinition(), 'NetworkExternalProcessor');
  return new Ctor(address, credentials) as unknown as NetworkExternalProcessorClient;
}
