/**
 * Keyed digests of values the recording must not hold but an auditor must be able to compare: a PostgreSQL
 * statement's bound values (`parameterHashes`). An unkeyed hash of a value with few candidates is no protection: an
 * SSN whose last four digits the masked result shows leaves 100,000 candidates, hashed and compared in well under a
 * second. A keyed one (HMAC-SHA256) can be compared with another digest under the same key ("the same value, in this
 * statement and that session") but cannot be tested against a guess without the key.
 *
 * The key is derived from the recording's anchor key (anchor.ts), and the choice is deliberate:
 * - every replica of a deployment must share it (the same value recorded by two replicas must digest the same), and it
 *   must survive restarts: the anchor key already is both (`recording.anchorKeyRef`, or the data directory's key file
 *   for a single instance), and a deployment whose replicas do not share it already fails verification loudly;
 * - it must never be where the digests are: the anchor key never reaches Redis (only MACs do), whereas the agent-token
 *   signing keys live in Redis, next to the recording, where anyone who can read the digests could read the key too;
 * - it needs no new secret for an operator to provision, rotate and back up.
 * It is derived (HMAC of a fixed label), never the anchor key itself, so that a digest can never be taken for an
 * anchor or the other way round. Rotating the anchor key changes the digests: values recorded before and after the
 * rotation no longer compare equal.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

const LABEL = 'portcullis recording value digest v1';

/** Hex digits kept of each digest (64 bits: keyed, so only accidental collisions matter). */
const DIGEST_HEX = 16;

/** The key of the value digests, derived from the anchor key. */
export function valueDigestKey(anchorKey: Buffer): Buffer {
  return createHmac('sha256', anchorKey).update(LABEL).digest();
}

/** The digest of one value under `key` (valueDigestKey): 16 hex digits of HMAC-SHA256. */
export function valueDigestOf(key: KeyObject | Buffer, value: Uint8Array): string {
  return createHmac('sha256', key).update(value).digest('hex').slice(0, DIGEST_HEX);
}

/** The recording's value digest for a deployment whose anchor key is `anchorKey`. */
export function valueDigester(anchorKey: Buffer): (value: Uint8Array) => string {
  const key = createSecretKey(valueDigestKey(anchorKey));
  return (value) => valueDigestOf(key, value);
}
