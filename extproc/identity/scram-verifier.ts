/**
 * SCRAM-SHA-256 verifiers of agent tokens (RFC 5802/7677), for protocols whose clients prove a password without sending
 * it (PostgreSQL): the gateway stores, per issued token, what a PostgreSQL server stores per role — StoredKey and
 * ServerKey — never the token. The salt is derived from the agent id, so that every token of one agent shares it: the
 * gateway must send the salt before it knows which of the agent's tokens the client holds.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

/** PostgreSQL's default (scram_iterations). */
export const SCRAM_ITERATIONS = 4096;

export interface ScramVerifier {
  /** Base64, as in a PostgreSQL SCRAM secret. */
  storedKey: string;
  serverKey: string;
}

/** A token the agent may prove with SCRAM: its id and verifier, when it expires and whether it was revoked. */
export interface ScramCandidate {
  jti: string;
  verifier: ScramVerifier;
  expiresAt: Date;
  revoked: boolean;
}

export function scramSalt(agentId: string): Buffer {
  return createHash('sha256').update(`portcullis scram salt\0${agentId}`).digest().subarray(0, 16);
}

export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
}

export function hmacSha256(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function scramVerifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): ScramVerifier {
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmacSha256(salted, 'Client Key');
  return {
    storedKey: createHash('sha256').update(clientKey).digest('base64'),
    serverKey: hmacSha256(salted, 'Server Key').toString('base64'),
  };
}
