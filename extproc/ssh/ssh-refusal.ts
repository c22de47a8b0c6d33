/**
 * The spine's refusals in SSH's terms. A refused `exec`, shell or subsystem gets the channel opened, the message on
 * stderr and exit status 126 — the shell's "found but cannot run" status, which no ssh client or command of its own
 * returns for a connection problem (ssh itself exits 255) — and the connection stays up for the next channel. A refused
 * forwarding gets its channel open or global request failed ("administratively prohibited").
 */
import type { Refusal } from '../spine/index.ts';

/** The exit status of a channel the gateway refused. */
export const REFUSED_EXIT_STATUS = 126;

/** The line the agent reads on stderr (terminated with CRLF on a pty, LF otherwise). */
export function refusalLine(r: Refusal): string {
  return `portcullis: ${label(r)}: ${r.message}`;
}

function label(r: Refusal): string {
  switch (r.code) {
    case 'policy-deny':
      return 'refused by policy';
    case 'approval-required':
      return 'needs approval';
    case 'approval-denied':
      return 'approval denied';
    case 'bad-request':
      return 'refused';
    case 'unsupported':
      return 'not supported';
    case 'unsupported-media':
    case 'too-large':
    case 'unmaskable-response':
      return 'refused';
    case 'unauthenticated':
    case 'forbidden':
      return 'not authorized';
    case 'misconfigured':
    case 'recording-unavailable':
    case 'store-unavailable':
    case 'upstream-credential':
    case 'internal':
      return 'gateway unavailable';
    default: {
      const never: never = r.code;
      throw new Error(`unmapped refusal code ${String(never)}`);
    }
  }
}
