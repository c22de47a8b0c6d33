/**
 * The protobuf bodies kubectl sends for built-in types (`kubectl create configmap|secret`), decoded as the API server
 * does: the "k8s\0" magic, a runtime.Unknown naming the type, the typed message in `raw`. Messages written from
 * k8s.io/api/core/v1/generated.proto and apimachinery's meta/v1 generated.proto (same field numbers), only the
 * fields these tests use. Test code: the gateway itself never decodes these (it asks the API server for JSON).
 */
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto2";
package standin;
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown {
  optional TypeMeta typeMeta = 1;
  optional bytes raw = 2;
  optional string contentEncoding = 3;
  optional string contentType = 4;
}
message ObjectMeta {
  optional string name = 1;
  optional string generateName = 2;
  optional string namespace = 3;
  map<string, string> labels = 11;
  map<string, string> annotations = 12;
}
message ConfigMap {
  optional ObjectMeta metadata = 1;
  map<string, string> data = 2;
  map<string, bytes> binaryData = 3;
  optional bool immutable = 4;
}
message Secret {
  optional ObjectMeta metadata = 1;
  map<string, bytes> data = 2;
  optional string type = 3;
  map<string, string> stringData = 4;
  optional bool immutable = 5;
}
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const Unknown = root.lookupType('standin.Unknown');
const MAGIC = Buffer.from('k8s\0', 'latin1');
const KINDS: Record<string, string> = { 'v1/ConfigMap': 'ConfigMap', 'v1/Secret': 'Secret' };

/** The object as its JSON form would have it (bytes fields in base64), or an Error saying why it cannot be read. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> | Error {
  if (!body.subarray(0, 4).equals(MAGIC)) return new Error('the protobuf body has no k8s\\0 prefix');
  let unknown: { typeMeta?: { apiVersion?: string; kind?: string }; raw?: Uint8Array; contentEncoding?: string };
  try {
    unknown = Unknown.toObject(Unknown.decode(body.subarray(4))) as typeof unknown;
  } catch (err) {
    return new Error(`the protobuf envelope does not decode: ${(err as Error).message}`);
  }
  const apiVersion = unknown.typeMeta?.apiVersion ?? '';
  const kind = unknown.typeMeta?.kind ?? '';
  const message = KINDS[`${apiVersion}/${kind}`];
  if (!message) return new Error(`the stand-in decodes no protobuf ${apiVersion} ${kind}`);
  if (unknown.contentEncoding) return new Error(`unsupported content encoding ${unknown.contentEncoding}`);
  const type = root.lookupType(`standin.${message}`);
  try {
    const obj = type.toObject(type.decode(unknown.raw ?? new Uint8Array(0)), { bytes: String }) as Record<
      string,
      unknown
    >;
    return { apiVersion, kind, ...obj, metadata: obj.metadata ?? {} };
  } catch (err) {
    return new Error(`the ${kind} does not decode: ${(err as Error).message}`);
  }
}
