/**
 * Upstream credentials: what the gateway presents to a target in place of the agent's token, obtained from the vault
 * at the moment of use and cached briefly. For Kubernetes, a static token is read from the vault (re-read every few
 * seconds, so a rotated file is picked up), and a `token-request` credential mints a short-lived service-account
 * token with the TokenRequest API, reused until shortly before it expires; concurrent callers share one mint. A
 * password or SSH key is read from the vault the same way. Values stay wrapped in SecretValue.
 */
import https from 'node:https';
import type { Target, UpstreamCredential } from './registry.ts';
import { resolveSecret, SecretValue } from './vault.ts';

/** A credential ready to present upstream. */
export type UpstreamSecret =
  | { kind: 'bearer-token'; token: SecretValue }
  | { kind: 'password'; user: string; password: SecretValue }
  | { kind: 'ssh-key'; user: string; privateKey: SecretValue };

export class CredentialError extends Error {
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(message);
    this.name = 'CredentialError';
  }
}

interface Cached {
  /** The credential it was made for: a changed target definition invalidates it. */
  key: string;
  secret: UpstreamSecret;
  /** When to stop using it (ms since epoch). */
  refreshAt: number;
}

const STATIC_REREAD_MS = 5000;

export class UpstreamCredentials {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<UpstreamSecret>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The credential for `target`; throws CredentialError when there is none or it cannot be obtained now. */
  async credentialFor(target: Target): Promise<UpstreamSecret> {
    const cred = target.credential;
    if (!cred) throw new CredentialError(target.name, `target ${target.name} has no upstream credential`);
    const key = JSON.stringify([target.address, target.caRef ?? '', cred]);
    const hit = this.cache.get(target.name);
    if (hit && hit.key === key && this.now() < hit.refreshAt) return hit.secret;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.obtain(target, cred)
      .catch((err: unknown) => {
        // One error type for "no credential now" (vault unreadable, API server unreachable, TokenRequest refused), so the
        // adapter can refuse the agent with a Status; none of these messages holds a secret.
        if (err instanceof CredentialError) throw err;
        throw new CredentialError(
          target.name,
          `target ${target.name}: ${err instanceof Error ? err.message : String(err)}`,
        );
      })
      .then((c) => {
        this.cache.set(target.name, { key, ...c });
        return c.secret;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** The PEM bundle that verifies the target's certificate (its caRef), or undefined for the system's roots. */
  async caFor(target: Target): Promise<string | undefined> {
    return target.caRef ? (await resolveSecret(target.caRef)).reveal() : undefined;
  }

  private async obtain(
    target: Target,
    cred: UpstreamCredential,
  ): Promise<{ secret: UpstreamSecret; refreshAt: number }> {
    const reread = this.now() + STATIC_REREAD_MS;
    switch (cred.kind) {
      case 'static-token':
        return { secret: { kind: 'bearer-token', token: await resolveSecret(cred.tokenRef) }, refreshAt: reread };
      case 'token-request': {
        const minted = await this.mint(target, cred);
        return { secret: { kind: 'bearer-token', token: minted.token }, refreshAt: minted.refreshAt };
      }
      case 'password':
        return {
          secret: { kind: 'password', user: cred.user, password: await resolveSecret(cred.passwordRef) },
          refreshAt: reread,
        };
      case 'ssh-key':
        return {
          secret: { kind: 'ssh-key', user: cred.user, privateKey: await resolveSecret(cred.privateKeyRef) },
          refreshAt: reread,
        };
      default: {
        const never: never = cred;
        throw new CredentialError(target.name, `unknown credential ${JSON.stringify(never)}`);
      }
    }
  }

  private async mint(
    target: Target,
    cred: Extract<UpstreamCredential, { kind: 'token-request' }>,
  ): Promise<{ token: SecretValue; refreshAt: number }> {
    const bearer = await resolveSecret(cred.tokenRef);
    const ca = target.caRef ? (await resolveSecret(target.caRef)).reveal() : undefined;
    const url = new URL(
      `/api/v1/namespaces/${encodeURIComponent(cred.namespace)}/serviceaccounts/${encodeURIComponent(cred.serviceAccount)}/token`,
      target.address,
    );
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: cred.ttlSeconds, ...(cred.audiences?.length ? { audiences: cred.audiences } : {}) },
    });
    const started = this.now();
    const res = await postJson(url, body, bearer, ca);
    if (res.status !== 201 && res.status !== 200) {
      throw new CredentialError(
        target.name,
        `TokenRequest for ${cred.namespace}/${cred.serviceAccount} on target ${target.name} failed with HTTP ${res.status}`,
      );
    }
    const status = (res.body as { status?: { token?: unknown; expirationTimestamp?: unknown } } | undefined)?.status;
    if (typeof status?.token !== 'string' || status.token === '') {
      throw new CredentialError(target.name, `TokenRequest on target ${target.name} returned no token`);
    }
    const expires = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : NaN;
    const expiresAt = Number.isFinite(expires) ? expires : started + cred.ttlSeconds * 1000;
    // Renew when 80% of the lifetime has passed, and never closer than a minute to expiry (clock skew, slow calls).
    const lifetime = expiresAt - started;
    const refreshAt = Math.min(started + lifetime * 0.8, expiresAt - 60_000);
    return { token: new SecretValue(status.token), refreshAt };
  }
}

function postJson(
  url: URL,
  body: string,
  bearer: SecretValue,
  ca: string | undefined,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          authorization: `Bearer ${bearer.reveal()}`,
          'content-length': Buffer.byteLength(body),
        },
        ...(ca ? { ca } : {}),
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) {
            req.destroy(new Error('TokenRequest response too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('TokenRequest timed out')));
    req.on('error', (err) => reject(new Error(`TokenRequest failed: ${err.message}`)));
    req.end(body);
  });
}
