/**
 * The Kubernetes protobuf encoding, for the only messages the gateway reads itself: the access reviews it answers
 * from policy (`kubectl auth can-i` sends them as protobuf). Every other protobuf body goes upstream undecoded and
 * reaches policy as the API server's own JSON, from a dry run (dry-run.ts).
 *
 * The wire form (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): the 4-byte magic "k8s\0", then a
 * runtime.Unknown whose typeMeta names the type and whose `raw` holds the typed message. The messages below are
 * written from k8s.io/api/authorization/v1/generated.proto and apimachinery's generated.proto, same field numbers;
 * fields the gateway does not read are left out (protobuf skips them).
 */
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto2";
package portcullis.k8s;
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Unknown {
  optional TypeMeta typeMeta = 1;
  optional bytes raw = 2;
  optional string contentEncoding = 3;
  optional string contentType = 4;
}
message ObjectMeta { optional string name = 1; optional string namespace = 3; }
message ResourceAttributes {
  optional string namespace = 1;
  optional string verb = 2;
  optional string group = 3;
  optional string version = 4;
  optional string resource = 5;
  optional string subresource = 6;
  optional string name = 7;
}
message NonResourceAttributes { optional string path = 1; optional string verb = 2; }
message SelfSubjectAccessReviewSpec {
  optional ResourceAttributes resourceAttributes = 1;
  optional NonResourceAttributes nonResourceAttributes = 2;
}
message SelfSubjectAccessReview { optional ObjectMeta metadata = 1; optional SelfSubjectAccessReviewSpec spec = 2; }
message SelfSubjectRulesReviewSpec { optional string namespace = 1; }
message SelfSubjectRulesReview { optional ObjectMeta metadata = 1; optional SelfSubjectRulesReviewSpec spec = 2; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const Unknown = root.lookupType('portcullis.k8s.Unknown');

/** The encoding's magic prefix. */
export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export type ProtobufMessage = 'SelfSubjectAccessReview' | 'SelfSubjectRulesReview';

/**
 * Decodes one Kubernetes protobuf body as `kind` of `apiVersion`, into the same plain shape its JSON has (fields the
 * gateway does not read dropped). Throws on anything else: another type, a content encoding, bytes that do not parse.
 */
export function decodeKubeProtobuf(bytes: Uint8Array, apiVersion: string, kind: ProtobufMessage): unknown {
  if (bytes.length < 4 || !PROTOBUF_MAGIC.equals(bytes.subarray(0, 4)))
    throw new Error('not a Kubernetes protobuf body (no k8s\\0 prefix)');
  const unknown = Unknown.toObject(Unknown.decode(bytes.subarray(4))) as {
    typeMeta?: { apiVersion?: string; kind?: string };
    raw?: Uint8Array;
    contentEncoding?: string;
  };
  if (unknown.typeMeta?.apiVersion !== apiVersion || unknown.typeMeta?.kind !== kind)
    throw new Error(
      `the body is a ${unknown.typeMeta?.apiVersion ?? '?'} ${unknown.typeMeta?.kind ?? '?'}, not ${kind}`,
    );
  if (unknown.contentEncoding) throw new Error(`content encoding ${unknown.contentEncoding} is not supported`);
  const type = root.lookupType(`portcullis.k8s.${kind}`);
  return { apiVersion, kind, ...type.toObject(type.decode(unknown.raw ?? new Uint8Array(0))) };
}
