/**
 * The spine's refusals in PostgreSQL's terms: each refusal code's SQLSTATE (an exhaustive switch, so a new code cannot
 * go unmapped), and the way a refused statement reaches the client. Network ext_proc cannot write toward the client in
 * answer to the client's bytes, so the server itself must answer: the refused message is replaced by one naming a
 * prepared statement that does not exist (`portcullis_refused_<connection>_<n>`), the server answers ErrorResponse
 * 26000 naming it, and the write side replaces that ErrorResponse with the refusal. The session goes on as after any
 * error: a simple Query ends with ReadyForQuery, an extended-protocol batch skips to its Sync.
 */
import { randomBytes } from 'node:crypto';
import type { Refusal, RefusalCode } from '../spine/index.ts';
import { cstr, errorResponse, int16, message, type NoticeFields, simpleQuery } from './pg-wire.ts';

export function sqlstateOf(code: RefusalCode): string {
  switch (code) {
    case 'unauthenticated':
      return '28P01'; // invalid_password
    case 'forbidden':
      return '28000'; // invalid_authorization_specification
    case 'misconfigured':
      return '08004'; // sqlserver_rejected_establishment_of_sqlconnection
    case 'bad-request':
      return '42601'; // syntax_error
    case 'unsupported':
    case 'unsupported-media':
    case 'unmaskable-response':
      return '0A000'; // feature_not_supported
    case 'too-large':
      return '54000'; // program_limit_exceeded
    case 'policy-deny':
    case 'approval-required':
    case 'approval-denied':
      return '42501'; // insufficient_privilege
    case 'recording-unavailable':
    case 'store-unavailable':
      return '57P03'; // cannot_connect_now
    case 'upstream-credential':
      return '08004';
    case 'internal':
      return 'XX000'; // internal_error
    default: {
      const never: never = code;
      throw new Error(`unmapped refusal code ${String(never)}`);
    }
  }
}

/** The refusal as the ErrorResponse the client reads. */
export function refusalError(r: Refusal, severity: 'ERROR' | 'FATAL'): Buffer {
  return errorResponse(severity, sqlstateOf(r.code), r.message);
}

/** Refusals of one connection awaiting the server's error that carries them to the client. */
export class PendingRefusals {
  private readonly prefix = `portcullis_refused_${randomBytes(6).toString('hex')}_`;
  private readonly pending = new Map<string, Refusal>();
  private n = 0;

  private name(r: Refusal): string {
    const name = `${this.prefix}${++this.n}`;
    this.pending.set(name, r);
    return name;
  }

  /** A simple Query the server refuses in place of a refused Query or FunctionCall. */
  query(r: Refusal): Buffer {
    return simpleQuery(`EXECUTE ${this.name(r)}`);
  }

  /** A Bind the server refuses in place of a refused Bind (the portal name is kept; the batch then skips to Sync). */
  bind(r: Refusal, portal: string): Buffer {
    return message('B', cstr(portal), cstr(this.name(r)), int16(0), int16(0), int16(0));
  }

  /** If `fields` is the server's error for one of ours, the client's ErrorResponse; otherwise null. */
  answer(fields: NoticeFields): Buffer | null {
    if (fields.get('C') !== '26000') return null;
    const m = /"(portcullis_refused_[0-9a-f]+_\d+)"/.exec(fields.get('M') ?? '');
    const r = m ? this.pending.get(m[1]) : undefined;
    if (!m || !r) return null;
    this.pending.delete(m[1]);
    return refusalError(r, 'ERROR');
  }
}
