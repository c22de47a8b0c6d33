/**
 * Request bodies of Kubernetes writes, decoded the way the API server reads them, or refused. A write whose body we
 * cannot read (protobuf, CBOR, a compressed body, malformed JSON) is refused rather than classified without it, so a
 * rule over `k8s.body` can never be stepped around by changing the encoding.
 */
import { parseAllDocuments } from 'yaml';
import type { ClassifyError } from './classify-error.ts';
import { refuse } from './classify-error.ts';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a JSON text; refuses invalid UTF-8, a byte-order mark and anything JSON.parse rejects. */
export function decodeJson(bytes: Uint8Array, what: string): { value: unknown } | ClassifyError {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return refuse('bad-body', `the ${what} is not valid UTF-8`);
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return refuse('bad-body', `the ${what} is not valid JSON`);
  }
}

/**
 * Decodes a YAML document as sigs.k8s.io/yaml does (YAML 1.1 scalars: `yes`/`on` are booleans, `0755` is octal;
 * `<<` merge keys). JSON is tried first because clients (kubectl apply --server-side among them) send JSON under
 * YAML content types, and JSON reads the same under both. Duplicate keys, multiple documents and heavy alias use
 * are refused: go-yaml rejects the first, and the others are where two YAML readers are most likely to disagree.
 */
export function decodeYaml(bytes: Uint8Array, what: string): { value: unknown } | ClassifyError {
  const asJson = decodeJson(bytes, what);
  if (!('refused' in asJson)) return asJson;
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return refuse('bad-body', `the ${what} is not valid UTF-8`);
  }
  const docs = parseAllDocuments(text, { version: '1.1', merge: true, uniqueKeys: true, strict: true });
  if (!Array.isArray(docs) || docs.length !== 1)
    return refuse('bad-body', `the ${what} must be a single YAML document`);
  const doc = docs[0];
  if (doc.errors.length > 0) return refuse('bad-body', `the ${what} is not valid YAML`);
  try {
    return { value: doc.toJS({ maxAliasCount: 50 }) as unknown };
  } catch {
    return refuse('bad-body', `the ${what} uses YAML aliases too heavily`);
  }
}

/**
 * The media type of a create/update/delete body as the API server negotiates it: parsed like Go's
 * mime.ParseMediaType (case-insensitive, parameters dropped), application/json when absent.
 */
export function bodyMediaType(contentType: string | undefined): string {
  if (contentType === undefined || contentType === '') return 'application/json';
  return contentType.split(';')[0].trim().toLowerCase();
}
