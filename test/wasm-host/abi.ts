/**
 * The proxy-wasm ABI's data as the TypeScript test host models it (test code only): header maps and their
 * serialization, status codes, map and buffer types, local replies, and what one callback may touch.
 */
import type { Stream } from './stream.ts';

/** Header names are lower case, values raw bytes carried as latin1 strings (one char per byte). */
export type Headers = [string, string][];

export const Status = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  InvalidMemoryAccess: 6,
  Empty: 7,
  Unimplemented: 12,
} as const;

export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;
export const BufferType = {
  RequestBody: 0,
  ResponseBody: 1,
  HttpCallResponseBody: 4,
  VmConfiguration: 6,
  PluginConfiguration: 7,
};

export interface LocalReply {
  status: number;
  details: string;
  body: Buffer;
  headers: Headers;
}

export interface LogLine {
  level: number;
  message: string;
}

/** Thrown by every call into a VM that trapped: Envoy never calls it again. */
export class VmDeadError extends Error {}

/** The current callback's view of the stream: which maps and buffers are accessible. */
export interface Phase {
  stream: Stream | undefined;
  maps: Map<number, Headers>;
  buffers: Map<number, Buffer>;
  localReply?: LocalReply;
}

/** The ABI's header map serialization: count, (key size, value size)*, then key\0 value\0 each. */
export function serializePairs(map: Headers): Buffer {
  const parts: Buffer[] = [];
  const sizes = Buffer.alloc(4 + map.length * 8);
  sizes.writeUInt32LE(map.length, 0);
  map.forEach(([k, v], i) => {
    const kb = Buffer.from(k, 'latin1');
    const vb = Buffer.from(v, 'latin1');
    sizes.writeUInt32LE(kb.length, 4 + i * 8);
    sizes.writeUInt32LE(vb.length, 8 + i * 8);
    parts.push(kb, Buffer.of(0), vb, Buffer.of(0));
  });
  return Buffer.concat([sizes, ...parts]);
}

/** Parses the serialization; undefined if it is malformed (Envoy: SerializationFailure... or a crash guard). */
export function deserializePairs(b: Buffer): Headers | undefined {
  if (b.length < 4) return undefined;
  const n = b.readUInt32LE(0);
  if (4 + n * 8 > b.length) return undefined;
  let o = 4 + n * 8;
  const out: Headers = [];
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32LE(4 + i * 8);
    const vl = b.readUInt32LE(8 + i * 8);
    if (o + kl + vl + 2 > b.length) return undefined;
    out.push([b.subarray(o, o + kl).toString('latin1'), b.subarray(o + kl + 1, o + kl + 1 + vl).toString('latin1')]);
    o += kl + vl + 2;
  }
  return out;
}
