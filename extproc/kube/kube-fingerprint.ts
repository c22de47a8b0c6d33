/**
 * The canonical form of a Kubernetes API request, which an approval grant is bound to: method, path, query sorted by
 * key then value, and a digest of the body. A body given as raw bytes is digested as sent; a decoded value as canonical
 * JSON (keys sorted), so a client that re-serialises the same object on retry still matches. Anything that changes what
 * would run changes it (a replica count); nothing else does (query parameter order).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../common/canonical-json.ts';

export function kubeCanonical(req: {
  method: string;
  path: string;
  query?: URLSearchParams | Record<string, string>;
  /** For a patch: how the API server applies it (json, merge, strategic, apply); the same body means another change. */
  patchType?: string;
  body?: unknown;
}): string {
  const q = req.query instanceof URLSearchParams ? [...req.query.entries()] : Object.entries(req.query ?? {});
  q.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const query = q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return [req.method.toUpperCase(), req.path, query, req.patchType ?? '', bodyDigest(req.body)].join('\n');
}

function bodyDigest(body: unknown): string {
  if (body === undefined || body === null) return '-';
  const bytes = typeof body === 'string' || body instanceof Uint8Array ? body : canonicalJson(body);
  return createHash('sha256').update(bytes).digest('hex');
}
