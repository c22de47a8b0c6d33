/**
 * Envoy's API, loaded at runtime from @grpc/grpc-js-xds's deps folder (the Envoy 1.31 API) plus the few protos the
 * project writes itself (network ext_proc, grpc.health.v1) under ./protos. Nothing outside the adapters imports this.
 */
export {
  protoLoaderOptions,
  extProcPackageDefinition,
  extProcServiceDefinition,
  newExtProcClient,
  httpStatusNumber,
  newProtoRoot,
} from './ext-proc-service.ts';
export type { ExternalProcessorImplementation, ExternalProcessorClient } from './ext-proc-service.ts';
export type * from './ext-proc-types.ts';
export { networkExtProcServiceDefinition, newNetworkExtProcClient } from './network-ext-proc-service.ts';
export type {
  NetworkExternalProcessorImplementation,
  NetworkExternalProcessorClient,
} from './network-ext-proc-service.ts';
export type * from './network-ext-proc-types.ts';
export { bytesOf } from './bytes.ts';
export { healthServiceDefinition, newHealthClient } from './health-service.ts';
export type {
  HealthImplementation,
  HealthClient,
  HealthCheckRequest,
  HealthCheckResponse,
  ServingStatus,
} from './health-service.ts';
export { loadEnvoyConfigRoot, lookupTypeUrl, envoyConfigProtos } from './envoy-config-root.ts';
export { protoIncludeDirs, projectProtoDir } from './proto-paths.ts';
