/**
 * Fingerprints of exact actions. A once grant covers one fingerprint, so anything that changes what would run must
 * change the fingerprint (a different literal in a statement, a different replica count in a body), and nothing else
 * should (query parameter order).
 */
import { createHash } from 'node:crypto';
import type { Protocol } from '../policy/context.ts';
import { canonicalJson } from '../common/canonical-json.ts';

/** 'sha256:' + hex over the protocol, the target and the canonical bytes of the action. */
export function actionFingerprint(parts: {
  protocol: Protocol;
  target: string;
  canonical: string | Uint8Array;
}): string {
  const h = createHash('sha256');
  // Length-prefixed fields: no separator byte inside a target name can make two different actions collide.
  for (const field of [parts.protocol, parts.target, parts.canonical]) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : Buffer.from(field);
    h.update(`${bytes.length}:`);
    h.update(bytes);
  }
  return `sha256:${h.digest('hex')}`;
}

export { canonicalJson };
