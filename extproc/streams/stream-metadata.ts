/** gRPC call metadata as the loops hand it to processors: the first value of a key, as a string. */
import type * as grpc from '@grpc/grpc-js';

export function metadataValue(call: { metadata: grpc.Metadata }, key: string): string | undefined {
  const v = call.metadata.get(key)[0];
  return v === undefined ? undefined : String(v);
}
