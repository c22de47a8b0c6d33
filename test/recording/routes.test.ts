import { tokenTable } from '../harness/admin-auth.ts';
import { runCommand } from '../harness/cli.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startAdminServer, type AdminServer } from '../../extproc/admin/server.ts';
import type { Principal } from '../../extproc/identity/principal.ts';
import { sessionsCommand, EXIT_TAMPERED } from '../../extproc/cli/commands/sessions.ts';
import {
  createRecorder,
  recordingKeys,
  recordingRoutes,
  type NewRecordingEvent,
  type RecordingEvent,
  type RecorderWithStats,
} from '../../extproc/recording/index.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { waitFor } from '../harness/ports.ts';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
/** Shaped like a real agent token: agents are never principals of the admin API. */
const AGENT_TOKEN = `${b64({ alg: 'EdDSA', typ: 'portcullis-agent+jwt', kid: 'k1' })}.${b64({ sub: 'agent-1' })}.c2ln`;

const PRINCIPALS: Record<string, Principal> = {
  'tok-audrey': { id: 'audrey', name: 'Audrey', roles: ['auditor'], groups: [] },
  'tok-root': { id: 'root', name: 'Root', roles: ['admin'], groups: [] },
  'tok-paula': { id: 'paula', name: 'Paula', roles: ['policy-author'], groups: [] },
  'tok-bob': { id: 'bob', name: 'Bob', roles: ['approver'], groups: ['dba'] },
};

const authenticate = tokenTable(PRINCIPALS);

const ANCHOR_KEY = Buffer.from('routes-test-anchor-key-0123456789');
let server: TestRedis;
let redis: Redis;
let admin: AdminServer;
let rec: RecorderWithStats;

function ev(
  sessionId: string,
  type: NewRecordingEvent['type'],
  data: Record<string, unknown>,
  o: Partial<NewRecordingEvent> = {},
): NewRecordingEvent {
  return { type, sessionId, agent: 'agent-1', target: 'db1', protocol: 'postgres', data, ...o };
}

async function get(
  path: string,
  token = 'tok-audrey',
): Promise<{ status: number; body: any; text: string; type: string }> {
  const res = await fetch(admin.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* streamed replies */
  }
  return { status: res.status, body, text, type: res.headers.get('content-type') ?? '' };
}

function cli(argv: string[], token = 'tok-audrey'): Promise<{ code: number; out: string; err: string }> {
  return runCommand(sessionsCommand, argv, { PORTCULLIS_ADMIN_URL: admin.url, PORTCULLIS_TOKEN: token });
}

before(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  await redis.ping();
  admin = await startAdminServer({ routes: recordingRoutes({ redis, anchorKey: ANCHOR_KEY }), authenticate });
  rec = createRecorder({ redis, failureMode: () => 'fail-closed', anchorKey: ANCHOR_KEY });
  // A Postgres session with an allowed and a denied statement.
  rec.record(ev('pg-1', 'session.start', { client: 'psql' }));
  rec.record(ev('pg-1', 'action', { sql: { text: 'SELECT * FROM customers' } }, { requestId: 'r1' }));
  rec.record(
    ev(
      'pg-1',
      'decision',
      { action: 'allow', rule: 'read-ok', policy: 'p', policyVersion: 2, reason: 'rule' },
      { requestId: 'r1' },
    ),
  );
  rec.record(ev('pg-1', 'action', { sql: { text: 'DELETE FROM orders' } }, { requestId: 'r2' }));
  rec.record(
    ev(
      'pg-1',
      'decision',
      { action: 'deny', rule: 'no-delete', policy: 'p', policyVersion: 2, reason: 'rule' },
      { requestId: 'r2' },
    ),
  );
  rec.record(ev('pg-1', 'session.end', {}));
  // Another agent, another target.
  rec.record(ev('k8s-1', 'session.start', {}, { agent: 'agent-2', target: 'cluster', protocol: 'kubernetes' }));
  rec.record(
    ev(
      'k8s-1',
      'action',
      { method: 'DELETE', path: '/api/v1/namespaces/prod/pods/web' },
      { agent: 'agent-2', target: 'cluster', protocol: 'kubernetes' },
    ),
  );
  rec.record(
    ev(
      'k8s-1',
      'decision',
      { action: 'require_approval', rule: 'prod', policy: 'p', policyVersion: 2, reason: 'rule' },
      { agent: 'agent-2', target: 'cluster', protocol: 'kubernetes' },
    ),
  );
  // A terminal session.
  const ssh = { agent: 'agent-1', target: 'host1', protocol: 'ssh' as const };
  rec.record(ev('ssh-1', 'session.start', { terminal: { width: 100, height: 30, term: 'xterm-256color' } }, ssh));
  rec.record(ev('ssh-1', 'action', { kind: 'shell', command: '' }, ssh));
  rec.record(ev('ssh-1', 'output', { stream: 'stdout', text: '$ ls\r\n' }, ssh));
  rec.record(ev('ssh-1', 'output', { stream: 'stdout', text: 'a.txt  b.txt\r\n' }, ssh));
  rec.record(ev('ssh-1', 'session.end', { exitStatus: 0 }, ssh));
  await rec.flush();
});

after(async () => {
  await rec.close();
  await admin.close();
  redis.disconnect();
  await server.close();
});

const ENDPOINTS = [
  '/v1/sessions',
  '/v1/sessions/pg-1',
  '/v1/sessions/pg-1/events',
  '/v1/sessions/pg-1/verify',
  '/v1/sessions/pg-1/export?format=jsonl',
  '/v1/sessions/ssh-1/export?format=asciicast',
  '/v1/sessions/pg-1/tail',
];

describe('audit API', () => {
  it('only auditors and admins can read recordings: policy authors, approvers and agent tokens are refused', async () => {
    for (const path of ENDPOINTS) {
      assert.equal((await get(path, 'tok-paula')).status, 403, `policy-author ${path}`);
      assert.equal((await get(path, 'tok-paula')).body.code, 'forbidden');
      assert.equal((await get(path, 'tok-bob')).status, 403, `approver ${path}`);
      assert.equal((await get(path, AGENT_TOKEN)).status, 401, `agent token ${path}`);
      assert.equal((await get(path, '')).status, 401, `no token ${path}`);
      assert.equal((await get(path, 'tok-audrey')).status, 200, `auditor ${path}`);
      assert.equal((await get(path, 'tok-root')).status, 200, `admin ${path}`);
    }
  });

  it('lists sessions with filters and pages', async () => {
    const ids = async (q: string): Promise<string[]> =>
      (await get(`/v1/sessions${q}`)).body.sessions.map((s: { id: string }) => s.id).sort();
    assert.deepEqual(await ids(''), ['k8s-1', 'pg-1', 'ssh-1']);
    assert.deepEqual(await ids('?agent=agent-1'), ['pg-1', 'ssh-1']);
    assert.deepEqual(await ids('?target=cluster'), ['k8s-1']);
    assert.deepEqual(await ids('?protocol=ssh'), ['ssh-1']);
    assert.deepEqual(await ids('?decision=deny'), ['pg-1']);
    assert.deepEqual(await ids('?decision=require_approval&agent=agent-2'), ['k8s-1']);
    assert.deepEqual(await ids('?q=delete'), ['k8s-1', 'pg-1']);
    assert.deepEqual(await ids('?q=customers&protocol=postgres'), ['pg-1']);
    assert.deepEqual(await ids(`?from=${new Date(Date.now() + 60_000).toISOString()}`), []);
    assert.deepEqual(await ids(`?to=${Date.now() + 1000}&from=${Date.now() - 60_000}`), ['k8s-1', 'pg-1', 'ssh-1']);
    const seen: string[] = [];
    let cursor = '';
    for (let i = 0; i < 5; i++) {
      const page = (await get(`/v1/sessions?limit=1${cursor}`)).body;
      seen.push(...page.sessions.map((s: { id: string }) => s.id));
      if (!page.nextCursor) break;
      cursor = `&cursor=${encodeURIComponent(page.nextCursor)}`;
    }
    assert.deepEqual(seen.sort(), ['k8s-1', 'pg-1', 'ssh-1']);
    assert.equal((await get('/v1/sessions?decision=maybe')).status, 400);
    assert.equal((await get('/v1/sessions?from=yesterday')).status, 400);
  });

  it('shows a session, its events in order and verifies its chain; a tampered one names the first bad seq', async () => {
    const s = (await get('/v1/sessions/pg-1')).body;
    assert.equal(s.status, 'ended');
    assert.equal(s.events, 6);
    assert.deepEqual(s.decisions, ['allow', 'deny']);
    const page = (await get('/v1/sessions/pg-1/events?limit=4')).body;
    assert.deepEqual(
      page.events.map((e: RecordingEvent) => e.seq),
      [1, 2, 3, 4],
    );
    assert.equal(page.nextSeq, 5);
    assert.deepEqual(
      (await get('/v1/sessions/pg-1/events?fromSeq=5')).body.events.map((e: RecordingEvent) => e.type),
      ['decision', 'session.end'],
    );
    assert.deepEqual((await get('/v1/sessions/pg-1/verify')).body, { valid: true, events: 6, anchored: true });
    assert.equal((await get('/v1/sessions/nope')).status, 404);

    const shown = await cli(['show', 'pg-1']);
    assert.equal(shown.code, 0);
    assert.match(shown.out, /#2 \S+ action\s+SELECT \* FROM customers/);
    assert.match(shown.out, /#5 \S+ decision\s+deny rule=no-delete policy=p@2/);
    assert.deepEqual(await cli(['verify', 'pg-1']), {
      code: 0,
      out: 'pg-1: chain valid (6 events, end anchored)\n',
      err: '',
    });

    await redis.xdel(recordingKeys.events('pg-1'), '3-0');
    assert.deepEqual((await get('/v1/sessions/pg-1/verify')).body, {
      valid: false,
      events: 5,
      firstBadSeq: 3,
      reason: 'event 3 is missing',
      anchored: true,
    });
    const v = await cli(['verify', 'pg-1']);
    assert.equal(v.code, EXIT_TAMPERED);
    assert.match(v.out, /chain BROKEN at seq 3/);
  });

  it('exports JSON Lines and, for terminal sessions, asciicast v2', async () => {
    const jsonl = await get('/v1/sessions/k8s-1/export?format=jsonl');
    assert.match(jsonl.type, /application\/x-ndjson/);
    const lines = jsonl.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as RecordingEvent);
    assert.deepEqual(
      lines.map((e) => e.seq),
      [1, 2, 3],
    );
    assert.equal(lines[2].data.action, 'require_approval');

    const cast = await get('/v1/sessions/ssh-1/export?format=asciicast');
    const [header, ...frames] = cast.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(header.version, 2);
    assert.equal(header.width, 100);
    assert.equal(header.height, 30);
    assert.equal(typeof header.timestamp, 'number');
    assert.deepEqual(header.env, { TERM: 'xterm-256color' });
    assert.deepEqual(
      frames.map((f: [number, string, string]) => f.slice(1)),
      [
        ['o', '$ ls\r\n'],
        ['o', 'a.txt  b.txt\r\n'],
      ],
    );
    assert.ok(frames.every((f: [number]) => typeof f[0] === 'number' && f[0] >= 0));

    const bad = await get('/v1/sessions/k8s-1/export?format=asciicast');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'invalid_request');

    const dir = mkdtempSync(join(tmpdir(), 'portcullis-export-'));
    try {
      const r = await cli(['export', 'ssh-1', '--format', 'asciicast', '--out', join(dir, 's.cast')]);
      assert.equal(r.code, 0);
      assert.equal(readFileSync(join(dir, 's.cast'), 'utf8'), cast.text);
      const r2 = await cli(['export', 'k8s-1']);
      assert.equal(r2.out, jsonl.text);
      const r3 = await cli(['export', 'k8s-1', '--format', 'asciicast']);
      assert.equal(r3.code, 1);
      assert.match(r3.err, /error: invalid_request: .*not a terminal session/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tails a live session until it ends, and lets go of Redis when the client goes away', async () => {
    const a = { agent: 'agent-3', target: 'db1', protocol: 'postgres' as const };
    rec.record(ev('live-1', 'session.start', {}, a));
    await rec.flush();
    const tail = cli(['tail', 'live-1', '--json']);
    await waitFor(
      async () => ((await redis.client('LIST')) as string).includes('cmd=xread'),
      5_000,
      'tail to block on XREAD',
    );
    for (let i = 0; i < 5; i++) rec.record(ev('live-1', 'action', { sql: `select ${i}` }, a));
    rec.record(ev('live-1', 'session.end', {}, a));
    await rec.flush();
    const r = await tail;
    assert.equal(r.code, 0);
    const seqs = r.out
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as RecordingEvent).seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);

    // A client that goes away mid-tail: the server's blocking connection is closed.
    rec.record(ev('live-2', 'session.start', {}, a));
    await rec.flush();
    const ac = new AbortController();
    const res = await fetch(`${admin.url}/v1/sessions/live-2/tail`, {
      headers: { authorization: 'Bearer tok-audrey' },
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.equal(JSON.parse(first.split('\n')[0]).type, 'session.start');
    await waitFor(
      async () => ((await redis.client('LIST')) as string).includes('cmd=xread'),
      5_000,
      'tail to block on XREAD',
    );
    ac.abort();
    await waitFor(
      async () => !((await redis.client('LIST')) as string).includes('cmd=xread'),
      5_000,
      'tail connection to close',
    );
  });

  it('lists sessions from the CLI', async () => {
    const r = await cli(['list', '--protocol', 'ssh']);
    assert.equal(r.code, 0);
    assert.match(r.out, /^ID\s+STARTED\s+STATUS/);
    assert.match(r.out, /ssh-1 .* ended .* agent-1 .* host1 .* ssh/);
    const denied = await cli(['list'], 'tok-paula');
    assert.equal(denied.code, 1);
    assert.match(denied.err, /error: forbidden:/);
  });
});
