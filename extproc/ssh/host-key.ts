/**
 * The gateway's own SSH host key: generated (ed25519) on first start at the configured path, read on every later
 * start, so agents can pin it once. Its fingerprint is OpenSSH's (`SHA256:` + unpadded base64 of the SHA-256 of the
 * public key blob), the form `ssh-keygen -lf` and `ssh`'s own prompts print.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';

export interface HostKey {
  /** The private key, OpenSSH format. Never logged, never served. */
  privateKey: string;
  /** `ssh-ed25519 AAAA…`: the line an agent puts in known_hosts. */
  publicKey: string;
  /** `SHA256:…` */
  fingerprint: string;
}

/** Reads the key at `path`, or generates it there (mode 0600) when the file does not exist. */
export function loadOrCreateHostKey(path: string): HostKey & { created: boolean } {
  let privateKey: string;
  let created = false;
  try {
    privateKey = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    privateKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // `wx`: two replicas starting together on a shared volume never overwrite each other's key.
    try {
      writeFileSync(path, privateKey, { mode: 0o600, flag: 'wx' });
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      privateKey = readFileSync(path, 'utf8');
    }
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) throw new Error(`host key ${path} is not a valid SSH private key: ${key.message}`);
  const blob = key.getPublicSSH();
  return { privateKey, publicKey: `${key.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob), created };
}

/** OpenSSH's SHA256 fingerprint of a public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key blob of a public key line (`type base64 [comment]`), or null when it is not one. */
export function publicKeyBlob(line: string): Buffer | null {
  const parsed = ssh2.utils.parseKey(line.trim());
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key instanceof Error ? null : key.getPublicSSH();
}
