/**
 * The tail anchor: a keyed checkpoint of where a session's chain ends. The writer stores, in the same atomic script
 * call that appends a session's events, HMAC-SHA256(key, "<session id>\n<last seq>\n<last hash>") beside the tip in
 * the session's metadata. The key never reaches Redis (the MAC is computed here, and only the MAC is sent), so someone
 * with write access to Redis but not the key cannot move the tip: deleting the newest events or appending a
 * well-formed forged one leaves a chain that ends elsewhere than the anchored tip, and a new anchor cannot be made.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The MAC of a session's tip (hex). */
export function anchorOf(key: Buffer, sessionId: string, lastSeq: number, lastHash: string): string {
  return createHmac('sha256', key).update(`${sessionId}\n${lastSeq}\n${lastHash}`).digest('hex');
}

/** Whether `mac` is the anchor of this tip (constant time). */
export function anchorMatches(key: Buffer, sessionId: string, lastSeq: number, lastHash: string, mac: string): boolean {
  const want = Buffer.from(anchorOf(key, sessionId, lastSeq, lastHash), 'hex');
  const got = Buffer.from(mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Smallest key accepted (bytes): an HMAC-SHA256 key shorter than this is guessable. */
const MIN_KEY_BYTES = 16;
const KEY_FILE = 'recording-anchor.key';

/**
 * The anchor key: from `ref` (`env:NAME` or `file:/path`, the key's bytes as hex or raw text), else from the data
 * directory's key file, made (32 random bytes) on first start. Replicas must share the key (set `ref`): each verifies
 * anchors the others wrote.
 */
export async function loadAnchorKey(ref: string | null, dataDir: string): Promise<Buffer> {
  let text: string;
  if (ref?.startsWith('env:')) {
    const v = process.env[ref.slice(4)];
    if (v === undefined) throw new Error(`recording.anchorKeyRef: environment variable ${ref.slice(4)} is not set`);
    text = v;
  } else if (ref?.startsWith('file:')) {
    text = await readFile(ref.slice(5), 'utf8');
  } else {
    await mkdir(dataDir, { recursive: true });
    const path = join(dataDir, KEY_FILE);
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      text = randomBytes(32).toString('hex');
      try {
        await writeFile(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        // Another process sharing the data directory made it first: use theirs.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        text = await readFile(path, 'utf8');
      }
    }
  }
  const t = text.trim();
  const key = /^([0-9a-f]{2})+$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'utf8');
  if (key.length < MIN_KEY_BYTES)
    throw new Error(`recording anchor key is too short (${key.length} bytes; at least ${MIN_KEY_BYTES})`);
  return key;
}
