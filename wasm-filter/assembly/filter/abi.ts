// Thin bindings to the proxy-wasm ABI 0.2.1 host functions this filter calls, as Envoy implements them.
//
// Why our own and not an SDK: the AssemblyScript SDKs are unmaintained (@solo-io/proxy-runtime does not build with
// AssemblyScript 0.28 and cannot write bodies) or tied to another host (@gcoredev/proxy-wasm-sdk-as targets FastEdge,
// aborts on the root context's proxy_on_done and on any non-Ok header result, logs through WASI fd_write). An abort
// traps, and a trap kills Envoy's VM for good (docs/envoy-behaviour.md D.4), so every call here returns the host's
// status and the caller decides; nothing is thrown, nothing is allocated by the AssemblyScript runtime.

// Status codes (proxy-wasm spec WasmResult).
export const OK: u32 = 0;
export const NOT_FOUND: u32 = 1;

// Header map types.
export const REQUEST_HEADERS: i32 = 0;
export const RESPONSE_HEADERS: i32 = 2;
export const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;

// Buffer types.
export const RESPONSE_BODY: i32 = 1;
export const HTTP_CALL_RESPONSE_BODY: i32 = 4;
export const VM_CONFIGURATION: i32 = 6;
export const PLUGIN_CONFIGURATION: i32 = 7;

// Log levels.
export const LOG_DEBUG: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_WARN: i32 = 3;
export const LOG_ERROR: i32 = 4;

// Metric types.
export const COUNTER: i32 = 0;

// Filter statuses returned to the host.
export const CONTINUE: i32 = 0;
export const STOP_ITERATION: i32 = 1;

@external("env", "proxy_log")
export declare function proxy_log(level: i32, ptr: usize, len: i32): u32;

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(
  bufferType: i32, start: i32, length: i32, retPtr: usize, retLen: usize,
): u32;

@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(bufferType: i32, start: i32, length: i32, ptr: usize, len: i32): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(
  mapType: i32, keyPtr: usize, keyLen: i32, retPtr: usize, retLen: usize,
): u32;

@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(
  mapType: i32, keyPtr: usize, keyLen: i32, valuePtr: usize, valueLen: i32,
): u32;

@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(mapType: i32, keyPtr: usize, keyLen: i32): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  statusCode: i32, detailsPtr: usize, detailsLen: i32, bodyPtr: usize, bodyLen: i32,
  headersPtr: usize, headersLen: i32, grpcStatus: i32,
): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(period: u32): u32;

@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upstreamPtr: usize, upstreamLen: i32, headersPtr: usize, headersLen: i32, bodyPtr: usize, bodyLen: i32,
  trailersPtr: usize, trailersLen: i32, timeoutMs: u32, retToken: usize,
): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: i32, namePtr: usize, nameLen: i32, retId: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;

// Envoy's host implements this WASI call (proxy-wasm-cpp-host exports.cc); it is the only randomness the ABI offers.
@external("wasi_snapshot_preview1", "random_get")
export declare function random_get(ptr: usize, len: i32): u32;

// The VM's environment: Envoy passes the variables vm_config.environment_variables names (host_env_keys), so a
// credential can reach the filter without being written in the Envoy configuration.
@external("wasi_snapshot_preview1", "environ_sizes_get")
export declare function environ_sizes_get(countPtr: usize, sizePtr: usize): u32;

@external("wasi_snapshot_preview1", "environ_get")
export declare function environ_get(environPtrs: usize, environBuf: usize): u32;

// Makes later calls act for another context: HTTP callouts for a stream must be made on the root context, since
// Envoy cancels a context's callouts when the context goes (a refused stream ends at once).
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;
