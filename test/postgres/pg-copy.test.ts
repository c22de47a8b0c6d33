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

const CARD = '4111 1111 1111 1111';

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
  const su = await s.db.superuser();
  try {
    // A card number kept as bytes, in a bytea column no column rule names: only the content detectors can find it.
    await su.query(`CREATE DOMAIN blob AS bytea;
      CREATE TABLE attachments (id int, body bytea, copy blob); ALTER TABLE attachments OWNER TO app_owner;
      INSERT INTO attachments VALUES (1, convert_to('card ${CARD}', 'UTF8'), convert_to('card ${CARD}', 'UTF8')),
        (2, '\\x00ff5c09'::bytea, NULL)`);
  } finally {
    await su.end();
  }
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

test("COPY TO STDOUT decodes a bytea column's text for the content detectors, as a query's rows are", async () => {
  const decode = (field: string): string => {
    assert.match(field, /^\\\\x[0-9a-f]*$/, field); // COPY doubles the backslash of bytea's hex form
    return Buffer.from(field.slice(3), 'hex').toString('latin1');
  };
  for (const setting of ['hex', 'escape']) {
    const r = await s.psql(['-At', '-c', `SET bytea_output = ${setting}`, '-c', 'COPY attachments TO STDOUT']);
    assert.equal(r.code, 0, r.err);
    const rows = r.out.trim().split('\n').slice(-2);
    const card = rows[0].split('\t');
    if (setting === 'hex') {
      for (const field of card.slice(1)) {
        const text = decode(field);
        assert.ok(!text.includes(CARD), `${setting}: the card number reached the client: ${text}`);
        assert.match(text, /^card .*1111$/, text);
      }
      // Bytes nobody would mask come back as they were, backslash and tab included.
      assert.deepEqual(rows[1].split('\t'), ['2', '\\\\x00ff5c09', '\\N']);
    } else {
      // The escape form: printable bytes as they are.
      for (const field of card.slice(1)) assert.ok(!field.includes(CARD), `${setting}: ${field}`);
      assert.match(card[1], /^card .*1111$/, card[1]);
    }
  }
  // The same bytes in a query's rows are masked the same way.
  const q = await s.psql(['-At', '-c', "SELECT convert_from(body, 'UTF8') FROM attachments WHERE id = 1"]);
  assert.ok(!q.out.includes(CARD), q.out);
});
