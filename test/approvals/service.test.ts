import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';
import { AdminError } from '../../extproc/admin/errors.ts';
import { createApprovals, type Approvals } from '../../extproc/approvals/index.ts';
import { APPROVALS_PREFIX } from '../../extproc/approvals/store.ts';
import { alice, audrey, auditSink, bob, carol, clock, dave, paula, requirement, root, sqlAction } from './fixtures.ts';

let server: TestRedis;
let redis: Redis;
before(async () => {
  server = await startRedis({ appendonly: false });
  redis = new Redis(server.url);
});
after(async () => {
  redis.disconnect();
  await server.close();
});
beforeEach(async () => {
  await redis.flushdb();
});

function setup(): { approvals: Approvals; sink: ReturnType<typeof auditSink>; clk: ReturnType<typeof clock> } {
  const sink = auditSink();
  const clk = clock();
  return { approvals: createApprovals({ redis, audit: sink.audit, now: clk.now }), sink, clk };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof AdminError && err.code === code);
}

describe('once grants', () => {
  test('the identical action runs exactly once after approval; a retry after that asks again', async () => {
    const { approvals, sink } = setup();
    const del = sqlAction('DELETE FROM orders WHERE id = 1');
    const first = await approvals.check(del);
    assert.equal(first.status, 'pending');
    const again = await approvals.check(del);
    assert.deepEqual(again, first, 'a retry while pending gets the same request');
    await approvals.approve(first.requestId, bob, 'looks right');
    assert.deepEqual(await approvals.check(del), { status: 'granted', requestId: first.requestId, grant: 'once' });
    const third = await approvals.check(del);
    assert.equal(third.status, 'pending');
    assert.notEqual(third.requestId, first.requestId, 'a consumed grant is gone; a new request is raised');
    assert.deepEqual(sink.types(first.requestId), ['approval.requested', 'approval.approved', 'approval.consumed']);
  });

  test('an action differing only in a literal is not covered', async () => {
    const { approvals } = setup();
    const one = await approvals.check(sqlAction('DELETE FROM orders WHERE id = 1'));
    await approvals.approve(one.requestId, bob);
    const other = await approvals.check(sqlAction('DELETE FROM orders WHERE id = 999'));
    assert.equal(other.status, 'pending');
    assert.notEqual(other.requestId, one.requestId);
    // Nor is the same statement by another agent or on another target.
    assert.equal(
      (await approvals.check(sqlAction('DELETE FROM orders WHERE id = 1', { agent: { id: 'agent-2', groups: [] } })))
        .status,
      'pending',
    );
    assert.equal(
      (await approvals.check(sqlAction('DELETE FROM orders WHERE id = 1', { target: 'billing-db' }))).status,
      'pending',
    );
    assert.equal((await approvals.check(sqlAction('DELETE FROM orders WHERE id = 1'))).status, 'granted');
  });

  test('concurrent retries consume a once grant exactly once', async () => {
    const { approvals, sink } = setup();
    const del = sqlAction('DELETE FROM orders');
    const { requestId } = await approvals.check(del);
    await approvals.approve(requestId, bob);
    // Separate connections, so the retries really race inside Redis rather than queue on one socket.
    const conns = Array.from({ length: 8 }, () => new Redis(server.url));
    try {
      const services = conns.map((c) => createApprovals({ redis: c, audit: sink.audit }));
      const results = await Promise.all(services.flatMap((s) => [s.check(del), s.check(del), s.check(del)]));
      const granted = results.filter((r) => r.status === 'granted');
      assert.equal(granted.length, 1, JSON.stringify(results));
      const pendingIds = new Set(results.filter((r) => r.status === 'pending').map((r) => r.requestId));
      assert.equal(pendingIds.size, 1, 'the losers share one new pending request');
      assert.equal(sink.events.filter((e) => e.type === 'approval.consumed').length, 1);
      assert.equal(sink.events.filter((e) => e.type === 'approval.requested').length, 2);
    } finally {
      for (const c of conns) c.disconnect();
    }
  });

  test('an approved once grant unused for ttlSeconds expires', async () => {
    const { approvals, sink, clk } = setup();
    const del = sqlAction('DELETE FROM orders');
    const { requestId } = await approvals.check(del);
    await approvals.approve(requestId, bob);
    clk.advance(301_000);
    const r = await approvals.check(del);
    assert.equal(r.status, 'pending');
    assert.notEqual(r.requestId, requestId);
    assert.equal((await approvals.get(requestId, bob)).state, 'expired');
    assert.deepEqual(sink.types(requestId), ['approval.requested', 'approval.approved', 'approval.expired']);
  });
});

describe('expiry', () => {
  test('a pending request expires lazily on read, as a recorded state change', async () => {
    const { approvals, sink, clk } = setup();
    const { requestId } = await approvals.check(sqlAction('DROP TABLE orders'));
    clk.advance(299_000);
    assert.equal((await approvals.get(requestId, bob)).state, 'pending');
    clk.advance(1_000);
    const r = await approvals.get(requestId, bob);
    assert.equal(r.state, 'expired');
    assert.deepEqual(
      r.history.map((h) => `${h.from}->${h.to}`),
      ['pending->expired'],
    );
    await rejectsWith(approvals.approve(requestId, bob), 'conflict');
    assert.deepEqual(sink.types(requestId), ['approval.requested', 'approval.expired']);
  });

  test('the sweeper expires overdue requests nobody reads, once each', async () => {
    const { approvals, sink, clk } = setup();
    const a = await approvals.check(sqlAction('DROP TABLE a'));
    const b = await approvals.check(sqlAction('DROP TABLE b'));
    clk.advance(100_000);
    const c = await approvals.check(sqlAction('DROP TABLE c'));
    clk.advance(250_000);
    assert.equal(await approvals.sweep(), 2);
    assert.equal(await approvals.sweep(), 0);
    assert.equal(sink.events.filter((e) => e.type === 'approval.expired').length, 2);
    assert.deepEqual(
      (await approvals.list({ state: 'pending' }, bob)).map((r) => r.id),
      [c.requestId],
    );
    const expired = (await approvals.list({ state: 'expired' }, bob)).map((r) => r.id).sort();
    assert.deepEqual(expired, [a.requestId, b.requestId].sort());
  });

  test('startExpirySweeper runs the sweep in the background', async () => {
    const { approvals, sink, clk } = setup();
    const { requestId } = await approvals.check(sqlAction('DROP TABLE orders'));
    clk.advance(400_000);
    approvals.startExpirySweeper(20);
    try {
      for (let i = 0; i < 200 && !sink.types(requestId).includes('approval.expired'); i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(sink.types(requestId), ['approval.requested', 'approval.expired']);
    } finally {
      await approvals.close();
    }
  });
});

describe('denial', () => {
  test('one denial denies; retries are refused with the reason until ttlSeconds have passed', async () => {
    const { approvals, sink, clk } = setup();
    const del = sqlAction('DELETE FROM orders');
    const { requestId } = await approvals.check(del);
    const denied = await approvals.deny(requestId, carol, 'not during the sale');
    assert.equal(denied.state, 'denied');
    assert.deepEqual(
      { by: denied.denial?.by, reason: denied.denial?.reason },
      { by: 'carol', reason: 'not during the sale' },
    );
    assert.deepEqual(await approvals.check(del), { status: 'denied', requestId, reason: 'not during the sale' });
    await rejectsWith(approvals.approve(requestId, bob), 'conflict');
    clk.advance(300_000);
    const later = await approvals.check(del);
    assert.equal(later.status, 'pending');
    assert.notEqual(later.requestId, requestId);
    assert.deepEqual(sink.types(requestId), ['approval.requested', 'approval.denied']);
  });
});

describe('quorum', () => {
  test('min_approvals distinct approvers are needed; the same approver twice does not count', async () => {
    const { approvals, sink } = setup();
    const del = sqlAction('TRUNCATE orders', { requirement: requirement({ minApprovals: 2 }) });
    const { requestId } = await approvals.check(del);
    const afterOne = await approvals.approve(requestId, bob, 'ok');
    assert.equal(afterOne.state, 'pending');
    assert.equal((await approvals.check(del)).status, 'pending');
    await rejectsWith(approvals.approve(requestId, bob), 'conflict');
    const afterTwo = await approvals.approve(requestId, carol);
    assert.equal(afterTwo.state, 'approved');
    assert.deepEqual(
      afterTwo.approvals.map((v) => v.by),
      ['bob', 'carol'],
    );
    assert.equal((await approvals.check(del)).status, 'granted');
    const approvedEvents = sink.events.filter((e) => e.type === 'approval.approved');
    assert.deepEqual(
      approvedEvents.map((e) => [e.data.approver, e.data.quorumMet]),
      [
        ['bob', false],
        ['carol', true],
      ],
    );
  });

  test('a denial after a partial approval denies', async () => {
    const { approvals } = setup();
    const { requestId } = await approvals.check(
      sqlAction('TRUNCATE orders', { requirement: requirement({ minApprovals: 2 }) }),
    );
    await approvals.approve(requestId, bob);
    assert.equal((await approvals.deny(requestId, carol, 'no')).state, 'denied');
  });
});

describe('window grants', () => {
  const win = (sql: string) => sqlAction(sql, { requirement: requirement({ grant: 'window', windowSeconds: 600 }) });

  test('cover every action of the rule for the agent and target until the window ends', async () => {
    const { approvals, sink, clk } = setup();
    const first = await approvals.check(win('DELETE FROM orders WHERE id = 1'));
    assert.equal(
      (await approvals.check(win('DELETE FROM orders WHERE id = 2'))).requestId,
      first.requestId,
      'one request per rule scope',
    );
    await approvals.approve(first.requestId, bob);
    for (const id of [1, 2, 3, 999]) {
      assert.deepEqual(await approvals.check(win(`DELETE FROM orders WHERE id = ${id}`)), {
        status: 'granted',
        requestId: first.requestId,
        grant: 'window',
      });
    }
    assert.equal(
      (
        await approvals.check(
          sqlAction('DELETE FROM orders WHERE id = 1', {
            target: 'billing-db',
            requirement: requirement({ grant: 'window' }),
          }),
        )
      ).status,
      'pending',
      'another target is not covered',
    );
    assert.equal(
      (
        await approvals.check(
          sqlAction('DELETE FROM orders WHERE id = 1', {
            rule: 'other-rule',
            requirement: requirement({ grant: 'window' }),
          }),
        )
      ).status,
      'pending',
      'another rule is not covered',
    );
    assert.equal(sink.events.filter((e) => e.type === 'approval.used').length, 4);
    clk.advance(600_000);
    const after = await approvals.check(win('DELETE FROM orders WHERE id = 1'));
    assert.equal(after.status, 'pending');
    assert.equal((await approvals.get(first.requestId, bob)).state, 'expired');
  });

  test('a revoked window stops covering at once', async () => {
    const { approvals, sink } = setup();
    const { requestId } = await approvals.check(win('DELETE FROM orders WHERE id = 1'));
    await approvals.approve(requestId, bob);
    assert.equal((await approvals.check(win('DELETE FROM orders WHERE id = 5'))).status, 'granted');
    const revoked = await approvals.revoke(requestId, root, 'incident');
    assert.equal(revoked.state, 'revoked');
    assert.equal(revoked.revocation?.reason, 'incident');
    assert.equal((await approvals.check(win('DELETE FROM orders WHERE id = 5'))).status, 'pending');
    await rejectsWith(approvals.revoke(requestId, root), 'conflict');
    assert.ok(sink.types(requestId).includes('approval.revoked'));
  });
});

describe('who may decide', () => {
  test('the human the agent acts for cannot approve or deny its request', async () => {
    const { approvals } = setup();
    const { requestId } = await approvals.check(sqlAction('DELETE FROM orders'));
    await rejectsWith(approvals.approve(requestId, alice), 'forbidden');
    await rejectsWith(approvals.deny(requestId, alice), 'forbidden');
    await rejectsWith(approvals.approve(requestId, { ...bob, id: 'agent-planner' }), 'forbidden');
    assert.equal((await approvals.get(requestId, bob)).state, 'pending');
  });

  test("only approvers of the rule's group decide; admins, auditors and policy authors do not", async () => {
    const { approvals } = setup();
    const { requestId } = await approvals.check(sqlAction('DELETE FROM orders'));
    for (const p of [dave, root, audrey, paula]) {
      await rejectsWith(approvals.approve(requestId, p), 'forbidden');
      await rejectsWith(approvals.deny(requestId, p), 'forbidden');
    }
    await rejectsWith(approvals.revoke(requestId, dave), 'forbidden');
    await rejectsWith(approvals.approve('apr_missing', bob), 'not_found');
    assert.equal((await approvals.get(requestId, bob)).approvals.length, 0);
  });

  test("approvers list and see only their groups' requests; admins and auditors see all", async () => {
    const { approvals } = setup();
    const db = await approvals.check(sqlAction('DELETE FROM orders'));
    const sre = await approvals.check(sqlAction('DROP TABLE x', { requirement: requirement({ group: 'sre' }) }));
    assert.deepEqual(
      (await approvals.list({ state: 'pending' }, carol)).map((r) => r.id),
      [db.requestId],
    );
    assert.deepEqual(
      (await approvals.list({ state: 'pending' }, dave)).map((r) => r.id),
      [sre.requestId],
    );
    assert.equal((await approvals.list({}, audrey)).length, 2);
    assert.equal((await approvals.list({ limit: 1 }, root)).length, 1);
    await rejectsWith(approvals.get(sre.requestId, carol), 'forbidden');
    await rejectsWith(approvals.list({}, paula), 'forbidden');
    assert.equal((await approvals.get(sre.requestId, audrey)).group, 'sre');
  });
});

describe('waitForDecision', () => {
  // The hold is far longer than the test's own timeout: only the pub/sub wake-up can make this pass.
  test('returns granted as soon as an approval lands, without a retry', { timeout: 10_000 }, async () => {
    const { approvals, sink, clk } = setup();
    const del = sqlAction('DELETE FROM orders', { requirement: requirement({ holdSeconds: 120 }) });
    const first = await approvals.check(del);
    assert.equal(first.status, 'pending');
    const waiting = approvals.waitForDecision(del, first.requestId, 120_000);
    await waitFor(
      async () => ((await redis.pubsub('NUMSUB', `${APPROVALS_PREFIX}events`)) as [string, number])[1] > 0,
      5_000,
      'the subscription',
    );
    await redis.ping(); // let the waiter's first read (which sees 'pending') go ahead of the approval
    // Approve from another service instance (another replica), so the news travels through Redis pub/sub.
    const other = new Redis(server.url);
    try {
      await createApprovals({ redis: other, audit: () => {}, now: clk.now }).approve(first.requestId, bob);
      assert.deepEqual(await waiting, { status: 'granted', requestId: first.requestId, grant: 'once' });
      assert.ok(sink.types(first.requestId).includes('approval.consumed'));
    } finally {
      other.disconnect();
      await approvals.close();
    }
  });

  test('returns denied when denied, and pending when the hold runs out', { timeout: 10_000 }, async () => {
    const { approvals } = setup();
    try {
      const del = sqlAction('DELETE FROM orders');
      const { requestId } = await approvals.check(del);
      const waiting = approvals.waitForDecision(del, requestId, 120_000);
      await waitFor(
        async () => ((await redis.pubsub('NUMSUB', `${APPROVALS_PREFIX}events`)) as [string, number])[1] > 0,
        5_000,
        'the subscription',
      );
      await redis.ping();
      await approvals.deny(requestId, bob, 'no');
      assert.deepEqual(await waiting, { status: 'denied', requestId, reason: 'no' });
      const upd = sqlAction('UPDATE orders SET x = 1');
      const p = await approvals.check(upd);
      const r = await approvals.waitForDecision(upd, p.requestId, 50);
      assert.equal(r.status, 'pending');
      assert.equal(r.requestId, p.requestId);
    } finally {
      await approvals.close();
    }
  });

  test('returns at once for a request already decided', async () => {
    const { approvals } = setup();
    try {
      const del = sqlAction('DELETE FROM orders');
      const { requestId } = await approvals.check(del);
      await approvals.approve(requestId, bob);
      assert.equal((await approvals.waitForDecision(del, requestId, 60_000)).status, 'granted');
    } finally {
      await approvals.close();
    }
  });
});

test('audit events carry the session, agent, target, protocol and the deciding rule', async () => {
  const { approvals, sink } = setup();
  const { requestId } = await approvals.check(sqlAction('DELETE FROM orders', { sessionId: 'sess-42' }));
  await approvals.approve(requestId, bob, 'fine');
  const [requested, approved] = sink.events;
  assert.deepEqual(
    { ...requested, data: undefined },
    {
      type: 'approval.requested',
      sessionId: 'sess-42',
      agent: 'agent-planner',
      target: 'orders-db',
      protocol: 'postgres',
      requestId,
      data: undefined,
    },
  );
  assert.equal(requested.data.rule, 'destructive-writes');
  assert.equal(requested.data.policy, 'prod-db');
  assert.equal(requested.data.summary, 'DELETE FROM orders');
  assert.equal(approved.data.approver, 'bob');
  assert.equal(approved.data.reason, 'fine');
});
