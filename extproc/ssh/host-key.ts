/**
 * The gateway's own SSH host key: generated (ed25519) on first start at the configured path, read on every later
 * start, so agents can pin it once. Its fingerprint is OpenSSH's (`SHA256:` + unpadded base64 of the SHA-256 of the
 * public key blob), the form `ssh-keygen -lf` and `ssh`'s own prompts print.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
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
    privateKey = generateHostKey();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Written whole under a private name, then linked into place: link() never replaces an existing file, so two
    // replicas starting together on a shared volume keep one key, and no reader ever sees half a key.
    const partial = `${path}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(partial, privateKey, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(partial, path);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      privateKey = readFileSync(path, 'utf8');
    } finally {
      unlinkSync(partial);
    }
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) throw new Error(`host key ${path} is not a valid SSH private key: ${key.message}`);
  const blob = key.getPublicSSH();
  return { privateKey, publicKey: `${key.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob), created };
}

/**
 * A new ed25519 key in OpenSSH format. ssh2's generator writes a key that its own parser rejects as malformed
 * about once in 250 tries, so a key is taken only once it parses.
 */
function generateHostKey(): string {
  for (let attempt = 0; attempt < 16; attempt++) {
    const key = ssh2.utils.generateKeyPairSync('ed25519').private;
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
  throw new Error('could not generate an SSH host key that parses');
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
