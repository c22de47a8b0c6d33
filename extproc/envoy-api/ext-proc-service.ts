import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { ProcessingRequest, ProcessingResponse } from './ext-proc-types.ts';
import { resolveProtoImport } from './proto-paths.ts';

/**
 * The one set of proto-loader options every Portcullis gRPC service and client uses; the TypeScript types in
 * ext-proc-types.ts describe messages as these options shape them. keepCase keeps Envoy's snake_case field names, so
 * code reads like Envoy's docs; bytes are left as Buffers (proto-loader's default).
 */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';

/** A protobufjs Root over Envoy's and the project's protos, with imports resolved through protoIncludeDirs. */
export function newProtoRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => resolveProtoImport(target);
  return root;
}

/**
 * Envoy's ProcessingRequest gained `protocol_config` (field 11, Envoy 1.34) after the 1.31 API copy we load. Envoy
 * sends it on the first message of each stream, so it is added here with Envoy's exact name and number
 * (docs/envoy-behaviour.md A point 2, B.9) rather than copying Envoy's newer proto into the repo.
 */
function addProtocolConfig(root: protobuf.Root): void {
  const pkg = root.lookup('envoy.service.ext_proc.v3') as protobuf.Namespace;
  const cfg = new protobuf.Type('ProtocolConfiguration')
    .add(
      new protobuf.Field(
        'request_body_mode',
        1,
        'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
      ),
    )
    .add(
      new protobuf.Field(
        'response_body_mode',
        2,
        'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode',
      ),
    )
    .add(new protobuf.Field('send_body_without_waiting_for_header_response', 3, 'bool'));
  pkg.add(cfg);
  root
    .lookupType('envoy.service.ext_proc.v3.ProcessingRequest')
    .add(new protobuf.Field('protocol_config', 11, 'envoy.service.ext_proc.v3.ProtocolConfiguration'));
}

let extProcPackage: protoLoader.PackageDefinition | undefined;

/** proto-loader's package definition of envoy.service.ext_proc.v3 (plus everything it imports). */
export function extProcPackageDefinition(): protoLoader.PackageDefinition {
  if (!extProcPackage) {
    const root = newProtoRoot();
    root.loadSync(EXT_PROC_PROTO, { keepCase: true });
    addProtocolConfig(root);
    root.resolveAll();
    extProcPackage = protoLoader.fromJSON(
      root.toJSON() as Parameters<typeof protoLoader.fromJSON>[0],
      protoLoaderOptions,
    );
  }
  return extProcPackage;
}

const SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/** grpc-js service definition of envoy.service.ext_proc.v3.ExternalProcessor, for `server.addService`. */
export function extProcServiceDefinition(): grpc.ServiceDefinition {
  return extProcPackageDefinition()[SERVICE] as grpc.ServiceDefinition;
}

/** The implementation a server passes to `server.addService(extProcServiceDefinition(), impl)`. */
export interface ExternalProcessorImplementation extends grpc.UntypedServiceImplementation {
  Process: grpc.handleBidiStreamingCall<ProcessingRequest, ProcessingResponse>;
}

/** A client of ExternalProcessor: `Process()` opens one bidi stream (Envoy opens one per HTTP request). */
export interface ExternalProcessorClient extends grpc.Client {
  Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  Process(
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
}

/** Creates a client for the ExternalProcessor at `address` (host:port). */
export function newExtProcClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): ExternalProcessorClient {
  const Ctor = grpc.makeGenericClientConstructor(extProcServiceDefinition(), 'ExternalProcessor');
  return new Ctor(address, credentials, options) as unknown as ExternalProcessorClient;
}

let statusCodes: Map<string, number> | undefined;

/**
 * The numeric HTTP status of an `envoy.type.v3.HttpStatus.code` as received (an enum name such as 'Forbidden', or a
 * number when the value is not in Envoy's StatusCode enum). Unknown names give 0.
 */
export function httpStatusNumber(code: number | string | undefined): number {
  if (code === undefined) return 0;
  if (typeof code === 'number') return code;
  if (/^\d+$/.test(code)) return Number(code);
  if (!statusCodes) {
    const def = extProcPackageDefinition()['envoy.type.v3.StatusCode'] as protoLoader.EnumTypeDefinition;
    const values = (def.type as { value: { name: string; number: number }[] }).value;
    statusCodes = new Map(values.map((v) => [v.name, v.number]));
  }
  return statusCodes.get(code) ?? 0;
}
