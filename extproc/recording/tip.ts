/**
 * A session's tip as stored in its metadata: one field `tip` = `<lastSeq> <lastHash> <anchor>` (anchor empty when no
 * key is configured), written with every append. One field rather than three keeps the per-session write of each
 * batch small (recorder-batch.ts).
 */
export interface Tip {
  seq: number;
  hash: string;
  /** The tip's anchor (anchor.ts); '' when it was written without a key. */
  anchor: string;
}

export function formatTip(seq: number, hash: string, anchor: string): string {
  return `${seq} ${hash} ${anchor}`;
}

/** The stored tip, or null when the field is absent or not a tip. */
export function parseTip(field: string | null | undefined): Tip | null {
  const m = field ? /^(\d+) ([0-9a-f]{64}) ([0-9a-f]*)$/.exec(field) : null;
  return m ? { seq: Number(m[1]), hash: m[2], anchor: m[3] } : null;
}
