/**
 * Fingerprints of exact actions. A once grant covers one fingerprint, so anything that changes what would run must
 * change the fingerprint (a different literal in a statement, a different replica count in a body), and nothing else
 * should (query parameter order).
 */
import { createHash } from 'node:crypto';
import type { Protocol } from '../policy/context.ts';
import { canonicalJson } from '../common/canonical-json.ts';

/** 'sha256:' + hex over the protocol, the target and the canonical bytes of the action. */
export function actionFingerprint(parts: { protocol: Protocol; target: string; canonical: string | Uint8Array }): string {
  const h = createHash('sha256');
  // Length-prefixed fields: no separator byte inside a target name can make two different actions collide.
  for (const field of [parts.protocol, parts.target, parts.canonical]) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : Buffer.from(field);
    h.update(`${bytes.length}:`);
    h.update(bytes);
  }
  return `sha256:${h.digest('hex')}`;
}

/**
 * The canonical form of a Kubernetes API request: method, path, query sorted by key then value, and a digest of the
 * body. A body given as raw bytes/string is digested as sent; a decoded value is digested as canonical JSON (keys
 * sorted), so a client that re-serialises the same object on retry still matches.
 */
export function kubeCanonical(req: { method: string; path: string; query?: URLSearchParams | Record<string, string>; body?: unknown }): string {
  const q = req.query instanceof URLSearchParams ? [...req.query.entries()] : Object.entries(req.query ?? {});
  q.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  const query = q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return [req.method.toUpperCase(), req.path, query, bodyDigest(req.body)].join('\n');
}

function bodyDigest(body: unknown): string {
  if (body === undefined || body === null) return '-';
  const bytes = typeof body === 'string' || body instanceof Uint8Array ? body : canonicalJson(body);
  return createHash('sha256').update(bytes).digest('hex');
}

export { canonicalJson };
