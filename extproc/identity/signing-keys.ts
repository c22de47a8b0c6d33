/**
 * The keyring that signs agent tokens (Ed25519 JWS). Rotation adds a new current key; older keys keep verifying
 * until every token they signed has expired, so rotation never breaks a token in flight. Keys live in Redis so
 * every replica verifies what any replica issued.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../common/redis-client.ts';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

interface StoredKey {
  kid: string;
  createdAt: number;
  retiredAt: number | null;
  privateJwk: JWK;
  publicJwk: JWK;
}
const KEYS = 'portcullis:signing-keys';
const CURRENT = 'portcullis:signing-key:current';
export const ALG = 'EdDSA';

export class SigningKeys {
  private verifyKeys = new Map<string, CryptoKey | Uint8Array>();
  private signing: { kid: string; key: CryptoKey | Uint8Array } | null = null;

  constructor(private readonly redis: RedisClient) {}

  /** Loads the keyring, creating the first key if there is none. */
  async load(): Promise<void> {
    let current = await this.redis.get(CURRENT);
    if (!current) {
      await this.rotate(0);
      current = await this.redis.get(CURRENT);
    }
    const all = Object.values(await this.redis.hgetall(KEYS)).map((s) => JSON.parse(s) as StoredKey);
    this.verifyKeys = new Map(
      await Promise.all(all.map(async (k) => [k.kid, await importJWK(k.publicJwk, ALG)] as const)),
    );
    const cur = all.find((k) => k.kid === current);
    if (!cur) throw new Error('the current signing key is missing from the keyring');
    this.signing = { kid: cur.kid, key: await importJWK(cur.privateJwk, ALG) };
  }

  /** Makes a new key current; keys retired longer ago than `maxTokenTtlMs` are dropped. Returns the new kid. */
  async rotate(maxTokenTtlMs: number): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
    const kid = randomUUID();
    const now = Date.now();
    const entry: StoredKey = {
      kid,
      createdAt: now,
      retiredAt: null,
      privateJwk: await exportJWK(privateKey),
      publicJwk: await exportJWK(publicKey),
    };
    const prev = await this.redis.get(CURRENT);
    const ring = this.redis.multi().hset(KEYS, kid, JSON.stringify(entry));
    if (prev) {
      const raw = await this.redis.hget(KEYS, prev);
      if (raw) ring.hset(KEYS, prev, JSON.stringify({ ...(JSON.parse(raw) as StoredKey), retiredAt: now }));
    }
    for (const raw of Object.values(await this.redis.hgetall(KEYS))) {
      const k = JSON.parse(raw) as StoredKey;
      if (k.retiredAt !== null && now - k.retiredAt > maxTokenTtlMs) ring.hdel(KEYS, k.kid);
    }
    // The keyring and the current pointer sit in two hash slots on a Redis Cluster: the new key is in the ring before
    // it becomes current, so a failure between the two writes leaves the previous key current (and still verifying).
    await ring.exec();
    await this.redis.set(CURRENT, kid);
    return kid;
  }

  current(): { kid: string; key: CryptoKey | Uint8Array } {
    if (!this.signing) throw new Error('signing keys not loaded');
    return this.signing;
  }

  /** The verification key for `kid`, reloading the keyring once when the kid is new to this replica. */
  async verificationKey(kid: string): Promise<CryptoKey | Uint8Array | null> {
    const k = this.verifyKeys.get(kid);
    if (k) return k;
    try {
      await this.load();
    } catch {
      return null;
    }
    return this.verifyKeys.get(kid) ?? null;
  }
}
