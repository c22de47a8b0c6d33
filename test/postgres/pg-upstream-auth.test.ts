/**
 * A database that asks the gateway's role for md5 or a cleartext password: the data path refuses the login with
 * 08004 and a message naming the cause (docs/postgres.md, "Connecting"), before any password is sent upstream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PG_CLEARTEXT_ROLE, PG_MD5_ROLE } from '../harness/postgres.ts';
import { startPgStack } from './pg-stack.ts';

for (const [method, role, code] of [
  ['md5', PG_MD5_ROLE, 5],
  ['cleartext', PG_CLEARTEXT_ROLE, 3],
] as const) {
  test(`an upstream asking for ${method} is refused with 08004, saying so`, async () => {
    const s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'], role });
    try {
      const c = s.client();
      await assert.rejects(c.connect(), (e: { code?: string; message: string }) => {
        assert.equal(e.code, '08004');
        assert.match(
          e.message,
          new RegExp(`asks for authentication method ${code}; the gateway logs in with SCRAM-SHA-256 only`),
        );
        return true;
      });
    } finally {
      await s.close();
    }
  });
}
