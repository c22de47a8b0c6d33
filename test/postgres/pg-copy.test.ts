/**
 * COPY … TO STDOUT is masked by column by splitting each row at the text format's tab: a COPY whose rows the gateway
 * would split wrongly is refused, and a COPY that failed or never ran leaves nothing behind for the next one's rows to
 * be read by. Customer 2's SSN is no pattern the content detectors know, so only the column rule keeps it from the
 * client: it shows whether the column rule applied.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SEEDED_CUSTOMERS } from '../harness/postgres.ts';
import { startPgStack, type PgStack } from './pg-stack.ts';

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

const ssn = SEEDED_CUSTOMERS[1].ssn;

test('COPY with a delimiter other than tab is refused while column rules apply, and the session goes on', async () => {
  for (const copy of ["COPY customers TO STDOUT DELIMITER '|'", "COPY customers TO STDOUT (DELIMITER ',')"]) {
    const r = await s.psql(['-At', '-c', copy, '-c', 'SELECT 1']);
    assert.match(r.err, /COPY with a DELIMITER other than tab cannot be masked by column here/, copy);
    assert.ok(!r.out.includes(ssn), `${copy}: the SSN reached the client`);
    assert.equal(r.out.trim(), '1');
  }
});

test("a COPY that failed or never ran does not lend its columns to the next COPY's rows", async () => {
  for (const first of ['COPY orders (nosuch) TO STDOUT', 'SELECT 1/0; COPY orders TO STDOUT']) {
    const r = await s.psql(['-c', first, '-c', 'COPY customers TO STDOUT']);
    assert.match(r.err, /ERROR/, first);
    assert.ok(!r.out.includes(ssn), `after ${first}: the SSN reached the client`);
    assert.equal(r.out.split('\n')[1], `2\tAlan Turing\talan@example.com\t************5559\t***-**-4320`, first);
  }
});
