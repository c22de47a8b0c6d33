/**
 * What the recording keeps of a PostgreSQL session: the login, each statement with its classification, the decision
 * and the output (command tags, row count, masked sample); never the password exchange, the token, the database
 * password or an unmasked value; bound values only as hashes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { PG_APP_OWNER, SEEDED_CUSTOMERS } from '../harness/postgres.ts';
import { PG_TARGET, startPgStack, type PgStack } from './pg-stack.ts';

const run = promisify(execFile);

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

test('login, statements, decisions and masked outputs are recorded; no secret or clear value anywhere in Redis', async () => {
  const c = s.client();
  await c.connect();
  await c.query('SELECT id, card_number, ssn FROM customers WHERE id = $1', [1]);
  await c.query('TRUNCATE orders').catch(() => {});
  await c.end();
  await s.svc.core.recorder.flush();
  const auditor = await s.svc.principal('auditor-1', ['auditor']);
  const r = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/events?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const events = r.body.events as { type: string; requestId?: string; data: any }[];
  assert.equal(events[0].type, 'session.start');
  const byType = (t: string) => events.filter((e) => e.type === t);
  assert.ok(byType('action').some((e) => e.data.connect?.database === 'app'));
  // A statement is recorded with its decision (data.request). Its output is folded into that decision (data.output)
  // when it came before the decision was written, and is an `output` event of its own otherwise.
  const select = byType('decision').find((e) => /FROM customers WHERE id = \$1/.test(e.data.request?.statement ?? ''));
  assert.ok(select, 'the SELECT is recorded');
  assert.equal(select.data.action, 'allow');
  assert.equal(select.data.request.classification[0].kind, 'SelectStmt');
  assert.deepEqual(select.data.request.classification[0].tables, [{ name: 'customers', access: 'read' }]);
  assert.equal(select.data.request.parameters, 1);
  assert.match(select.data.request.parameterHashes[0], /^[0-9a-f]{16}$/);
  const own = events.filter((e) => e.requestId === select.requestId).map((e) => e.type);
  assert.deepEqual(own, select.data.output ? ['decision'] : ['decision', 'output']);
  const output = select.data.output ?? byType('output').find((e) => e.requestId === select.requestId)?.data;
  assert.ok(output, 'the output is recorded');
  assert.deepEqual(output.commands, ['SELECT 1']);
  assert.equal(output.rows, 1);
  assert.deepEqual(output.sample, [['1', '************1111', '***-**-6789']]);
  const truncate = byType('decision').find((e) => e.data.request?.statement === 'TRUNCATE orders');
  assert.equal(truncate?.data.action, 'deny');
  assert.equal(truncate?.data.rule, 'no-destruction');
  // The statements are the session's search text, as actions recorded on their own are.
  const found = await s.svc.call(auditor.token, 'GET', '/v1/sessions?q=TRUNCATE%20orders');
  assert.ok(
    found.body.sessions.some((x: { id: string }) => x.id === s.sessionId),
    JSON.stringify(found.body),
  );

  const redis = new Redis(s.redis.url);
  try {
    let everything = '';
    for (const key of await redis.keys('*')) {
      const type = await redis.type(key);
      if (type === 'stream') everything += JSON.stringify(await redis.xrange(key, '-', '+'));
      else if (type === 'string') everything += await redis.get(key);
      else if (type === 'hash') everything += JSON.stringify(await redis.hgetall(key));
    }
    for (const secret of [s.agentToken, PG_APP_OWNER.password, SEEDED_CUSTOMERS[0].card, SEEDED_CUSTOMERS[0].ssn]) {
      assert.ok(!everything.includes(secret), `found ${secret.slice(0, 6)}… in Redis`);
    }
    assert.ok(!/SASL|SCRAM|r=.*,s=.*,i=\d+/.test(everything), 'no trace of the password exchange');
  } finally {
    redis.disconnect();
  }
  assert.ok(!s.svc.logs().includes(s.agentToken) && !s.svc.logs().includes(PG_APP_OWNER.password));
});

test('statements of connections sharing a session each have their output recorded once, with their own rows', async () => {
  // Two connections of one token (one session) interleave their statements, as a pool's do: each statement's output
  // is folded into its own decision or recorded as its own event, never into another statement's decision.
  const clients = [s.client(), s.client()];
  await Promise.all(clients.map((c) => c.connect()));
  try {
    const runs = [];
    for (let i = 1; i <= 20; i++)
      runs.push(clients[i % 2].query(`SELECT n FROM generate_series(1, ${i}) AS n /* run ${i} */`));
    await Promise.all(runs);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  await s.svc.core.recorder.flush();
  const auditor = await s.svc.principal('auditor-3', ['auditor']);
  const r = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/events?limit=10000`);
  const events = r.body.events as { type: string; requestId?: string; data: any }[];
  for (let i = 1; i <= 20; i++) {
    const decisions = events.filter(
      (e) => e.type === 'decision' && e.data.request?.statement?.includes(`/* run ${i} */`),
    );
    assert.equal(decisions.length, 1, `statement ${i} is decided once`);
    const [d] = decisions;
    const outputs = [
      ...(d.data.output ? [d.data.output] : []),
      ...events.filter((e) => e.type === 'output' && e.requestId === d.requestId).map((e) => e.data),
    ];
    assert.equal(outputs.length, 1, `statement ${i} has one output`);
    assert.equal(outputs[0].rows, i, `statement ${i}'s own row count`);
    assert.deepEqual(outputs[0].commands, [`SELECT ${i}`]);
  }
  const verified = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/verify`);
  assert.equal(verified.body.valid, true, JSON.stringify(verified.body));
});

test('pipelined statements, and statements after a masked one, each record their own row and masked counts', async () => {
  // libpq's pipeline mode (pgbench's \startpipeline) sends every statement before the first result comes back, so
  // each is decided before the rows of the one ahead of it are read. A statement's counts are its own nonetheless.
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pipeline-'));
  const script = join(dir, 'pipeline.sql');
  writeFileSync(
    script,
    [
      '\\startpipeline',
      'SELECT id, card_number FROM customers ORDER BY id /* pipe a */;',
      'SELECT n FROM generate_series(1, 5) AS n /* pipe b */;',
      '\\endpipeline',
      '',
    ].join('\n'),
  );
  try {
    // One client, one run of the script, the extended protocol (pipeline mode needs it).
    const once = ['-n', '-c', '1', '-t', '1', '-M', 'extended', '-f', script];
    const to = ['-h', '127.0.0.1', '-p', String(s.envoy.port), '-U', s.agent, PG_TARGET];
    await run('pgbench', [...once, ...to], {
      env: { ...process.env, PGPASSWORD: s.agentToken, PGSSLMODE: 'disable' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const c = s.client();
  await c.connect();
  try {
    await c.query('SELECT id, ssn FROM customers WHERE id = 1 /* after a */');
    await c.query('SELECT 1 AS one /* after b */');
  } finally {
    await c.end();
  }
  await s.svc.core.recorder.flush();
  const auditor = await s.svc.principal('auditor-4', ['auditor']);
  const r = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/events?limit=10000`);
  const events = r.body.events as { type: string; requestId?: string; data: any }[];
  const outputOf = (marker: string) => {
    const d = events.find((e) => e.type === 'decision' && e.data.request?.statement?.includes(marker));
    assert.ok(d, `${marker} is recorded`);
    return d.data.output ?? events.find((e) => e.type === 'output' && e.requestId === d.requestId)?.data;
  };
  const counts = (marker: string) => {
    const o = outputOf(marker);
    return { commands: o.commands, rows: o.rows, maskedValues: o.maskedValues, withheldValues: o.withheldValues };
  };
  assert.deepEqual(counts('/* pipe a */'), { commands: ['SELECT 3'], rows: 3, maskedValues: 3, withheldValues: 0 });
  assert.deepEqual(counts('/* pipe b */'), { commands: ['SELECT 5'], rows: 5, maskedValues: 0, withheldValues: 0 });
  assert.deepEqual(counts('/* after a */'), { commands: ['SELECT 1'], rows: 1, maskedValues: 1, withheldValues: 0 });
  assert.deepEqual(counts('/* after b */'), { commands: ['SELECT 1'], rows: 1, maskedValues: 0, withheldValues: 0 });
  // Each sample holds its own statement's rows, masked as the client got them.
  assert.deepEqual(outputOf('/* pipe a */').sample[0], ['1', '************1111']);
  assert.deepEqual(outputOf('/* pipe b */').sample, [['1'], ['2'], ['3'], ['4'], ['5']]);
  assert.deepEqual(outputOf('/* after b */').sample, [['1']]);
});

test('a recorded session verifies, and a statement its recording cannot take is refused (fail-closed)', async () => {
  const auditor = await s.svc.principal('auditor-2', ['auditor']);
  const verified = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/verify`);
  assert.equal(verified.body.valid, true, JSON.stringify(verified.body));
  const c = s.client();
  await c.connect();
  try {
    await s.redis.stop();
    const deadline = Date.now() + 10_000;
    while (s.svc.core.recorder.canAccept('pg-app')) {
      assert.ok(Date.now() < deadline, 'the recorder noticed Redis is gone');
      await new Promise((r) => setTimeout(r, 50));
    }
    await assert.rejects(c.query('SELECT 1'), /session recording is unavailable/);
    await s.redis.start();
    while (!s.svc.core.recorder.canAccept('pg-app')) {
      assert.ok(Date.now() < deadline + 20_000, 'the recorder is back');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2);
  } finally {
    await c.end();
  }
  await s.svc.core.recorder.flush();
  const after = await s.svc.call(auditor.token, 'GET', `/v1/sessions/${s.sessionId}/verify`);
  assert.equal(after.body.valid, true, JSON.stringify(after.body));
});
