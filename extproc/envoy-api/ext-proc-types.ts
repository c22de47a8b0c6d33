/**
 * Hand-written TypeScript shapes of the envoy.service.ext_proc.v3 messages we use, as they appear in JavaScript with
 * the proto-loader options of `protoLoaderOptions` (ext-proc-service.ts):
 *   keepCase: true  -> field names are the proto's snake_case names (`raw_value`, `end_of_stream`);
 *   longs: String   -> int64 (e.g. Duration.seconds) arrive as decimal strings; send a string or a number;
 *   enums: String   -> enums arrive as their names ('SEND', 'CONTINUE_AND_REPLACE'); send a name or a number;
 *   defaults: false -> a field that is unset, zero, false or empty is *absent* (undefined) on messages from Envoy
 *                      (protobufjs, unlike Envoy, does encode a default value that a sender set explicitly);
 *   oneofs: true    -> received messages also carry the name of the set oneof member (`request`, `response`,
 *                      `mutation`); it is ignored when sending;
 *   bytes           -> Buffer (send a Buffer or Uint8Array; never a string, protobufjs would base64-decode it).
 * Only the subset Portcullis uses is described; the wire carries more (Envoy 1.31 API plus `protocol_config`).
 */

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL';

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode (also the type of `mode_override`). */
export interface ProcessingMode {
  request_header_mode?: HeaderSendMode;
  response_header_mode?: HeaderSendMode;
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  request_trailer_mode?: HeaderSendMode;
  response_trailer_mode?: HeaderSendMode;
}

/** google.protobuf.Duration. */
export interface Duration {
  seconds?: string | number;
  nanos?: number;
}

/** google.protobuf.BoolValue. */
export interface BoolValue {
  value?: boolean;
}

/** google.protobuf.Value / Struct (keepCase names). */
export interface StructValue {
  kind?: 'null_value' | 'number_value' | 'string_value' | 'bool_value' | 'struct_value' | 'list_value';
  null_value?: 'NULL_VALUE' | 0;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: Struct;
  list_value?: { values?: StructValue[] };
}
export interface Struct {
  fields?: Record<string, StructValue>;
}

/** envoy.config.core.v3.Metadata. */
export interface Metadata {
  filter_metadata?: Record<string, Struct>;
}

/** envoy.config.core.v3.HeaderValue. Envoy sends `raw_value` only; we send `raw_value` only (B.8). */
export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer | Uint8Array;
}

/** envoy.config.core.v3.HeaderMap. Keys are lower-case; pseudo-headers (`:method`, `:path`, …) included. */
export interface HeaderMap {
  headers?: HeaderValue[];
}

/** envoy.config.core.v3.HeaderValueOption. The ext_proc filter honours `append` only, not `append_action` (B.14). */
export interface HeaderValueOption {
  header?: HeaderValue;
  append?: BoolValue;
}

/** envoy.service.ext_proc.v3.ProtocolConfiguration (Envoy 1.34+, field 11 of ProcessingRequest; see ext-proc-service.ts). */
export interface ProtocolConfiguration {
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  send_body_without_waiting_for_header_response?: boolean;
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer | Uint8Array;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

/** Fields every ProcessingRequest may carry, whatever its kind. */
export interface ProcessingRequestCommon {
  metadata_context?: Metadata;
  attributes?: Record<string, Struct>;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfiguration;
}

export type ProcessingRequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

/** Envoy -> processor. Narrow with `msg.request === 'request_headers'` (set on received messages) or `'x' in msg`. */
export type ProcessingRequest = ProcessingRequestCommon &
  (
    | { request?: 'request_headers'; request_headers: HttpHeaders }
    | { request?: 'response_headers'; response_headers: HttpHeaders }
    | { request?: 'request_body'; request_body: HttpBody }
    | { request?: 'response_body'; response_body: HttpBody }
    | { request?: 'request_trailers'; request_trailers: HttpTrailers }
    | { request?: 'response_trailers'; response_trailers: HttpTrailers }
  );

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export type BodyMutation =
  | { mutation?: 'body'; body: Buffer | Uint8Array }
  | { mutation?: 'clear_body'; clear_body: boolean };

export type CommonResponseStatus = 'CONTINUE' | 'CONTINUE_AND_REPLACE';

export interface CommonResponse {
  status?: CommonResponseStatus;
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  /** Not implemented by Envoy (API only); listed so it is not used by mistake. */
  trailers?: HeaderMap;
  clear_route_cache?: boolean;
}

export interface HeadersResponse {
  response?: CommonResponse;
}

export interface BodyResponse {
  response?: CommonResponse;
}

export interface TrailersResponse {
  header_mutation?: HeaderMutation;
}

/**
 * envoy.type.v3.HttpStatus. `code` is the numeric HTTP status when sending; received (enums: String) it is the
 * enum name, e.g. 'Forbidden' (use `httpStatusNumber` from ext-proc-service.ts).
 */
export interface HttpStatus {
  code: number | string;
}

export interface GrpcStatus {
  status?: number;
}

export interface ImmediateResponse {
  status?: HttpStatus;
  headers?: HeaderMutation;
  body?: Buffer | Uint8Array;
  grpc_status?: GrpcStatus;
  details?: string;
}

/** Fields every ProcessingResponse may carry, whatever its kind. */
export interface ProcessingResponseCommon {
  dynamic_metadata?: Struct;
  mode_override?: ProcessingMode;
  override_message_timeout?: Duration;
}

export type ProcessingResponseKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers'
  | 'immediate_response';

/**
 * Processor -> Envoy. The last member (no kind) is legal only together with `override_message_timeout`, which Envoy
 * handles alone, ignoring the rest of that message (docs/envoy-behaviour.md B.3).
 */
export type ProcessingResponse = ProcessingResponseCommon &
  (
    | { response?: 'request_headers'; request_headers: HeadersResponse }
    | { response?: 'response_headers'; response_headers: HeadersResponse }
    | { response?: 'request_body'; request_body: BodyResponse }
    | { response?: 'response_body'; response_body: BodyResponse }
    | { response?: 'request_trailers'; request_trailers: TrailersResponse }
    | { response?: 'response_trailers'; response_trailers: TrailersResponse }
    | { response?: 'immediate_response'; immediate_response: ImmediateResponse }
    | { response?: undefined }
  );
