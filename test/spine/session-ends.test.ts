/**
 * Sessions end: `session.end` is recorded once, by the spine's SessionEnds, when the session's token expires or after
 * the idle bound without activity. The clock is injected and the sweep called directly; the core (Redis, recorder,
 * tokens) is real.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { EMPTY_SSH, SessionEnds, Spine, type Action, type Session } from '../../extproc/spine/index.ts';
import { startToyCore, type ToyCore } from './fixtures.ts';

let toy: ToyCore;
let now = Date.now();
let spine: Spine;

before(async () => {
  toy = await startToyCore();
  spine = new Spine(toy.svc.core, { sessionIdleMs: 60_000, now: () => now });
});
after(async () => toy.close());

const whoami: Action = {
  section: { protocol: 'ssh', ssh: { ...EMPTY_SSH, kind: 'exec', command: 'whoami', user: 'ops' } },
  recorded: { command: 'whoami' },
  canonical: () => 'whoami',
  summary: () => 'exec whoami',
};

async function session(token: string): Promise<Session> {
  const auth = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token });
  assert.ok(auth.ok, JSON.stringify(auth));
  return auth.session;
}

const ends = async (id: string) => (await toy.events(id)).filter((e) => e.type === 'session.end');

test('a session idle for longer than the bound is ended once, with reason idle, and refused afterwards', async () => {
  now = Date.now();
  const token = await toy.token(['shell-1']);
  const s = await session(token);
  now += 30_000;
  // An action is activity: the idle time counts from its events.
  await spine.begin(s, `req_${randomUUID()}`).decide(whoami, { maxHoldMs: 0, credential: 'ssh-key' });
  now += 59_999;
  assert.equal(spine.sessionEnds.sweep(), 0, 'not idle yet: the action was 59.999 s ago');
  now += 1;
  assert.equal(spine.sessionEnds.sweep(), 1);
  assert.equal(spine.sessionEnds.sweep(), 0, 'ended once');
  const [end, ...more] = await ends(s.id);
  assert.deepEqual(more, []);
  assert.equal(end.data.reason, 'idle');
  assert.equal(end.data.idleMs, 60_000);
  const events = await toy.events(s.id);
  assert.equal(events.at(-1)?.type, 'session.end', 'the last event of the session');
  const session2 = await toy.svc.call(toy.svc.adminToken, 'GET', `/v1/sessions/${s.id}`);
  assert.equal(session2.body.status, 'ended');
  // The token is still valid, but this session has ended: the agent needs a new token (a new session).
  const again = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token });
  assert.deepEqual(again.ok ? null : [again.refusal.code, again.refusal.detail], ['unauthenticated', 'session-ended']);
  const verify = await toy.svc.call(toy.svc.adminToken, 'GET', `/v1/sessions/${s.id}/verify`);
  assert.equal(verify.body.valid, true);
});

test('a session whose token expires is ended once, with reason token-expired, even while active', async () => {
  now = Date.now();
  const s = await session(await toy.token(['shell-1']));
  // The token lives 10 minutes; the session stays active (authenticated every 50 s) past that.
  for (let t = 0; t < 10 * 60_000; t += 50_000) {
    now += 50_000;
    spine.sessionEnds.active(s.id);
    spine.sessionEnds.sweep();
  }
  now += 50_000;
  spine.sessionEnds.sweep();
  const found = await ends(s.id);
  assert.equal(found.length, 1);
  assert.equal(found[0].data.reason, 'token-expired');
  assert.ok(Date.parse(String(found[0].data.expiresAt)) <= now);
  assert.equal(spine.sessionEnds.sweep(), 0);
});

test('the sweep timer is unref and stops; a refused end is tried again on the next sweep', () => {
  let t = 0;
  const recorded: string[] = [];
  let accept = false;
  const e = new SessionEnds({
    recorder: {
      record: (ev) => {
        if (!accept) return { accepted: false, reason: 'buffer full' };
        recorded.push(`${ev.sessionId}:${(ev.data as { reason: string }).reason}`);
        return { accepted: true };
      },
    },
    idleMs: 1000,
    now: () => t,
  });
  const s = { id: 's-1', agent: { id: 'a' }, target: { name: 'x' }, protocol: 'kubernetes' as const };
  e.opened(s, 10_000);
  e.opened({ ...s, id: 's-2' }, 500);
  t = 600;
  assert.equal(e.sweep(), 0, 'refused: kept');
  accept = true;
  assert.equal(e.sweep(), 1);
  assert.deepEqual(recorded, ['s-2:token-expired']);
  t = 1600;
  e.opened(s, 10_000);
  t = 2599;
  assert.equal(e.sweep(), 0);
  t = 2600;
  assert.equal(e.sweep(), 1);
  assert.deepEqual(recorded, ['s-2:token-expired', 's-1:idle']);
  assert.equal(e.endedIdle('s-1'), true);
  assert.equal(e.size, 0);
  e.start();
  e.stop();
});
