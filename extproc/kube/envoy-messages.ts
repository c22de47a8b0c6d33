/**
 * Small translations between Envoy's ext_proc messages and plain values: header maps, bodies, header mutations,
 * durations and the dynamic metadata that joins access logs to recordings.
 */
import type { HeaderMap, HeaderValueOption, Struct } from '../envoy-api/index.ts';

/** The namespace Envoy writes our dynamic metadata to (listed in metadata_options.receiving_namespaces). */
export const METADATA_NAMESPACE = 'envoy.filters.http.ext_proc';

export function headerMap(map: HeaderMap | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of map?.headers ?? []) {
    const raw = h.raw_value;
    // A view over the decoded bytes, not a copy (Buffer.from(Uint8Array) would copy every header value).
    const v =
      raw !== undefined
        ? (Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).toString('latin1')
        : (h.value ?? '');
    const prev = out.get(h.key);
    out.set(h.key, prev === undefined ? v : `${prev},${v}`);
  }
  return out;
}

export function bearerOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return m ? m[1] : undefined;
}

export function setHeader(key: string, value: string): HeaderValueOption {
  return { header: { key, raw_value: Buffer.from(value, 'latin1') }, append: { value: false } };
}

export function durationOf(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export function requestMetadata(requestId: string, sessionId: string, agent: string | undefined): Struct {
  // google.protobuf.Value comes from protobufjs's built-in descriptors, whose field names stay camelCase even with
  // keepCase (`structValue`, `stringValue`; snake_case members are silently dropped on the wire).
  const fields: Record<string, { stringValue: string }> = { request_id: { stringValue: requestId } };
  if (sessionId) fields.session_id = { stringValue: sessionId };
  if (agent) fields.agent = { stringValue: agent };
  return { fields: { [METADATA_NAMESPACE]: { structValue: { fields } } } } as unknown as Struct;
}
