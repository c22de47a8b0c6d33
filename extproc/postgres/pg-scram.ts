/**
 * The two SCRAM-SHA-256 legs of a PostgreSQL login through the gateway (RFC 5802/7677, without channel binding: the
 * gateway does not see TLS). Toward the agent the gateway plays the server, against the SCRAM verifiers of the agent's
 * tokens (the agent's password is its token); toward PostgreSQL it plays the client with the vault's password. Each
 * message of one leg is made from the matching message of the other, so the exchange stays one message in, one
 * message out, in the same direction — all network ext_proc allows.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hmacSha256, saltedPassword, SCRAM_ITERATIONS, scramSalt, type ScramCandidate } from '../spine/index.ts';

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/** `a=1,b=2` → {a: '1', b: '2'}; values may contain '='. */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** The gateway as SCRAM server toward the agent. */
export class AgentScram {
  private clientFirstBare = '';
  private gs2Header = '';
  private nonce = '';
  private serverFirst = '';

  constructor(private readonly agentId: string) {}

  /** Reads the agent's client-first message; returns the server-first message to send it. */
  serverFirstFor(clientFirst: string): string {
    // gs2 header: "n,," (no channel binding) or "y,," (client could bind, thinks we cannot). "p=…" demands binding,
    // which the gateway cannot offer; an authzid ("a=") is not supported, as in PostgreSQL.
    const m = /^([ny]),,(.*)$/s.exec(clientFirst);
    if (!m) throw new ScramError('SCRAM channel binding is not supported through the gateway; connect without it');
    this.gs2Header = `${m[1]},,`;
    this.clientFirstBare = m[2];
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (!clientNonce) throw new ScramError('malformed SCRAM client-first message');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${scramSalt(this.agentId).toString('base64')},i=${SCRAM_ITERATIONS}`;
    return this.serverFirst;
  }

  /**
   * Checks the agent's client-final message against each candidate token's verifier; returns the matching token and
   * the server-final message proving the gateway knew its verifier, or null when no candidate matches.
   */
  verify(clientFinal: string, candidates: ScramCandidate[]): { jti: string; serverFinal: string } | null {
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('malformed SCRAM client-final message');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs.get('c') !== Buffer.from(this.gs2Header).toString('base64') || attrs.get('r') !== this.nonce) {
      throw new ScramError('SCRAM client-final message does not match the exchange');
    }
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    if (proof.length !== 32) throw new ScramError('malformed SCRAM client proof');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    for (const c of candidates) {
      const storedKey = Buffer.from(c.verifier.storedKey, 'base64');
      const clientKey = xor(proof, hmacSha256(storedKey, authMessage));
      if (storedKey.length === 32 && timingSafeEqual(sha256(clientKey), storedKey)) {
        const signature = hmacSha256(Buffer.from(c.verifier.serverKey, 'base64'), authMessage);
        return { jti: c.jti, serverFinal: `v=${signature.toString('base64')}` };
      }
    }
    return null;
  }
}

/** The gateway as SCRAM client toward PostgreSQL. */
export class UpstreamScram {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private serverFirst = '';
  private expectedServerSignature: Buffer | null = null;

  /** PostgreSQL takes the user name from the startup message and ignores this one. */
  readonly clientFirst = `n,,n=,r=${this.clientNonce}`;

  /** Remembers the server's first message; throws if it does not continue our exchange. */
  serverFirstReceived(serverFirst: string): void {
    const attrs = attributes(serverFirst);
    const nonce = attrs.get('r');
    if (!nonce?.startsWith(this.clientNonce) || !attrs.get('s') || !Number(attrs.get('i'))) {
      throw new ScramError('malformed SCRAM server-first message from the database');
    }
    this.serverFirst = serverFirst;
  }

  /** The client-final message proving `password`. */
  clientFinal(password: string): string {
    const attrs = attributes(this.serverFirst);
    const salted = saltedPassword(password, Buffer.from(attrs.get('s') ?? '', 'base64'), Number(attrs.get('i')));
    const withoutProof = `c=biws,r=${attrs.get('r')}`;
    const authMessage = `n=,r=${this.clientNonce},${this.serverFirst},${withoutProof}`;
    const clientKey = hmacSha256(salted, 'Client Key');
    const proof = xor(clientKey, hmacSha256(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmacSha256(hmacSha256(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** A client-final message that cannot succeed: makes the server itself refuse the login. */
  failingClientFinal(): string {
    const attrs = attributes(this.serverFirst);
    return `c=biws,r=${attrs.get('r')},p=${Buffer.alloc(32).toString('base64')}`;
  }

  /** True when the server proved it knows the password too (its server-final signature). */
  serverFinalValid(serverFinal: string): boolean {
    const v = attributes(serverFinal).get('v');
    if (!v || !this.expectedServerSignature) return false;
    const got = Buffer.from(v, 'base64');
    return got.length === 32 && timingSafeEqual(got, this.expectedServerSignature);
  }
}
