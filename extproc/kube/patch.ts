/**
 * PATCH bodies. The API server picks the patch type from the Content-Type cut at the first ";" and compared
 * byte for byte (no trimming, no case folding); anything else is a 415. We read the same four types it does.
 */
import type { ClassifyError } from './classify-error.ts';
import { refuse } from './classify-error.ts';
import { decodeJson, decodeYaml } from './request-body.ts';

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

/** Media types the API server may accept for PATCH that we cannot decode. */
const UNDECODABLE_PATCH_TYPES = new Set(['application/apply-patch+cbor']);

export interface DecodedPatch {
  patchType: PatchType;
  /** The patch document as sent. */
  patch: unknown;
  /** The same document as the object the patch writes (merge, strategic, apply); null for JSON Patch. */
  body: unknown;
}

export function patchTypeOf(contentType: string | undefined): PatchType | ClassifyError {
  const raw = contentType ?? '';
  const semi = raw.indexOf(';');
  const mediaType = semi > 0 ? raw.slice(0, semi) : raw;
  const type = PATCH_TYPES[mediaType];
  if (type !== undefined) return type;
  if (UNDECODABLE_PATCH_TYPES.has(mediaType)) {
    return refuse('unsupported-content-type', `patches of type ${mediaType} cannot be inspected; send JSON`);
  }
  return refuse('unsupported-content-type', `unsupported patch content type ${JSON.stringify(mediaType)}`);
}

export function decodePatch(contentType: string | undefined, bytes: Uint8Array): DecodedPatch | ClassifyError {
  const patchType = patchTypeOf(contentType);
  if (typeof patchType !== 'string') return patchType;
  if (bytes.length === 0) return refuse('bad-body', 'the patch is empty');
  const decoded = patchType === 'apply' ? decodeYaml(bytes, 'apply patch') : decodeJson(bytes, 'patch');
  if ('refused' in decoded) return decoded;
  const doc = decoded.value;
  if (patchType === 'json') {
    if (!Array.isArray(doc)) return refuse('bad-body', 'a JSON Patch must be an array of operations');
    return { patchType, patch: doc, body: null };
  }
  // A merge, strategic or apply patch that is not an object would replace the whole object; the API server rejects
  // those for Kubernetes objects, and a rule over k8s.body needs an object to read.
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return refuse('bad-body', `a ${patchType} patch must be a JSON object`);
  }
  return { patchType, patch: doc, body: doc };
}
