import type protobuf from 'protobufjs';
import { newProtoRoot } from './ext-proc-service.ts';

/**
 * Every proto a Portcullis Envoy config may name in a `typed_config` `@type`, on top of the bootstrap. Adding an
 * extension to envoy/*.yaml means adding its proto here, so the config check can resolve it.
 */
export const envoyConfigProtos: readonly string[] = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/wasm/v3/wasm.proto',
  'envoy/extensions/filters/network/ext_proc/v3/ext_proc.proto', // the project's own (docs/envoy-behaviour.md, appendix)
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  'envoy/extensions/filters/http/health_check/v3/health_check.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto',
  'envoy/extensions/resource_monitors/fixed_heap/v3/fixed_heap.proto',
  'envoy/service/network_ext_proc/v3/network_external_processor.proto',
  'google/protobuf/wrappers.proto',
];

let root: protobuf.Root | undefined;

/**
 * A protobufjs Root (keepCase: Envoy's YAML uses the proto field names) holding the bootstrap and every extension
 * proto in envoyConfigProtos, fully resolved. Used by test/envoy/config-check.ts and by the Envoy stand-in.
 */
export function loadEnvoyConfigRoot(): protobuf.Root {
  if (!root) {
    const r = newProtoRoot();
    r.loadSync([...envoyConfigProtos], { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

/** The message type an Any's `@type` (type.googleapis.com/<full name>) names, or undefined if not loaded. */
export function lookupTypeUrl(typeUrl: string): protobuf.Type | undefined {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  try {
    return loadEnvoyConfigRoot().lookupType(`.${name}`); // absolute: no relative or nested matches
  } catch {
    return undefined;
  }
}
