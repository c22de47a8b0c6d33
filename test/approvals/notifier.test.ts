import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';
import { createApprovals, createWebhookNotifier, type ApprovalRequest } from '../../extproc/approvals/index.ts';
import { auditSink, bob, clock, requirement, root, sqlAction } from './fixtures.ts';

interface Receiver {
  url: string;
  bodies: unknown[];
  attempts: number;
  close(): Promise<void>;
}

/** A webhook receiver on loopback. `respond` decides each attempt's fate (return false to leave it hanging). */
async function receiver(respond: (attempt: number, res: ServerResponse) => boolean): Promise<Receiver> {
  const r = { bodies: [] as unknown[], attempts: 0 };
  const server: Server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (d: Buffer) => {
      text += d.toString();
    });
    req.on('end', () => {
      r.attempts++;
      const accepted = respond(r.attempts, res);
      if (accepted) {
        r.bodies.push(JSON.parse(text));
        res.end('ok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    get bodies() {
      return r.bodies;
    },
    get attempts() {
      return r.attempts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const failFirst = (attempt: number, res: ServerResponse): boolean => {
  if (attempt === 1) {
    res.statusCode = 503;
    res.end('busy');
    return false;
  }
  return true;
};

let redisServer: TestRedis;
let redis: Redis;
before(async () => {
  redisServer = await startRedis({ appendonly: false });
  redis = new Redis(redisServer.url);
});
after(async () => {
  redis.disconnect();
  await redisServer.close();
});

test('every new request and state change reaches the webhooks, retried after a failure, in both formats', async () => {
  const json = await receiver(failFirst);
  const slack = await receiver(failFirst);
  const notifier = createWebhookNotifier({
    urls: [
      { url: json.url, format: 'json' },
      { url: slack.url, format: 'slack' },
    ],
    adminBaseUrl: 'https://portcullis.example/admin/',
    baseDelayMs: 10,
    maxAttempts: 4,
  });
  const sink = auditSink();
  const clk = clock();
  const approvals = createApprovals({ redis, audit: sink.audit, notifier, now: clk.now });
  try {
    const once = sqlAction('DELETE FROM orders');
    const a = await approvals.check(once);
    await approvals.approve(a.requestId, bob, 'ok');
    await approvals.check(once); // consumed
    const b = await approvals.check(sqlAction('DROP TABLE t'));
    await approvals.deny(b.requestId, bob, 'never');
    const c = await approvals.check(sqlAction('TRUNCATE t'));
    clk.advance(301_000);
    await approvals.sweep(); // expired
    const w = sqlAction('DELETE FROM t WHERE id = 1', { rule: 'w', requirement: requirement({ grant: 'window' }) });
    const d = await approvals.check(w);
    await approvals.approve(d.requestId, bob);
    await approvals.check(w); // a window use: recorded, not notified
    await approvals.revoke(d.requestId, root, 'done');

    const expected = [
      [a.requestId, 'approval.requested'],
      [a.requestId, 'approval.approved'],
      [a.requestId, 'approval.consumed'],
      [b.requestId, 'approval.requested'],
      [b.requestId, 'approval.denied'],
      [c.requestId, 'approval.requested'],
      [c.requestId, 'approval.expired'],
      [d.requestId, 'approval.requested'],
      [d.requestId, 'approval.approved'],
      [d.requestId, 'approval.revoked'],
    ]
      .map((x) => x.join(' '))
      .sort();
    // Every audit event but the window use was notified.
    assert.deepEqual(
      sink.events
        .filter((e) => e.type !== 'approval.used')
        .map((e) => `${e.requestId} ${e.type}`)
        .sort(),
      expected,
    );
    assert.deepEqual(sink.types(d.requestId), [
      'approval.requested',
      'approval.approved',
      'approval.used',
      'approval.revoked',
    ]);

    await waitFor(
      () => json.bodies.length === expected.length && slack.bodies.length === expected.length,
      10_000,
      'all deliveries',
    );
    assert.equal(json.attempts, expected.length + 1, 'the failed first attempt was retried');
    const got = (json.bodies as { type: string; request: ApprovalRequest }[])
      .map((x) => `${x.request.id} ${x.type}`)
      .sort();
    assert.deepEqual(got, expected);
    const consumed = (json.bodies as { type: string; request: ApprovalRequest }[]).find(
      (x) => x.type === 'approval.consumed',
    );
    assert.equal(consumed?.request.state, 'consumed');

    const slackBodies = slack.bodies as { text: string; blocks: { type: string; elements?: { url?: string }[] }[] }[];
    const requested = slackBodies.find(
      (x) => x.text.includes(a.requestId) && x.text.startsWith('*Approval requested*'),
    );
    assert.ok(requested, JSON.stringify(slackBodies));
    const link = `https://portcullis.example/admin/v1/approvals/${a.requestId}`;
    assert.ok(requested.text.includes(`<${link}/approve|Approve>`));
    assert.ok(requested.text.includes(`<${link}/deny|Deny>`));
    assert.ok(requested.text.includes('DELETE FROM orders'));
    const buttons = requested.blocks.find((x) => x.type === 'actions')?.elements?.map((e) => e.url);
    assert.deepEqual(buttons, [`${link}/approve`, `${link}/deny`]);
    const denied = slackBodies.find((x) => x.text.startsWith('*Denied*'));
    assert.ok(denied?.text.includes('by Bob: never'));
    assert.equal(
      denied?.blocks.some((x) => x.type === 'actions'),
      false,
      'no buttons once decided',
    );
  } finally {
    await approvals.close();
    await notifier.close();
    await json.close();
    await slack.close();
  }
});

test('a receiver that never answers does not hold up check() or approve()', async () => {
  const held: ServerResponse[] = [];
  const stuck = await receiver((_n, res) => {
    held.push(res);
    return false;
  });
  const notifier = createWebhookNotifier({
    urls: [{ url: stuck.url, format: 'json' }],
    adminBaseUrl: 'http://x',
    maxAttempts: 1,
  });
  const approvals = createApprovals({ redis, audit: () => {}, notifier });
  try {
    const del = sqlAction('DELETE FROM stuck');
    const a = await approvals.check(del);
    await approvals.approve(a.requestId, bob);
    assert.equal((await approvals.check(del)).status, 'granted');
    await waitFor(() => held.length === 3, 10_000, 'three deliveries in flight');
    assert.equal(notifier.pending(), 3, 'all three still undelivered while the data path went on');
  } finally {
    await approvals.close();
    await notifier.close();
    await stuck.close();
  }
});

test('delivery gives up after maxAttempts', async () => {
  const down = await receiver((_n, res) => {
    res.statusCode = 500;
    res.end();
    return false;
  });
  const notifier = createWebhookNotifier({
    urls: [{ url: down.url, format: 'json' }],
    adminBaseUrl: 'http://x',
    maxAttempts: 3,
    baseDelayMs: 5,
  });
  try {
    const approvals = createApprovals({ redis, audit: () => {}, notifier });
    await approvals.check(sqlAction('DELETE FROM gone'));
    await waitFor(() => notifier.pending() === 0, 10_000, 'the queue to drain');
    assert.equal(down.attempts, 3);
  } finally {
    await notifier.close();
    await down.close();
  }
});
