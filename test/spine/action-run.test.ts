/**
 * The spine driven directly, over a whole real core: every way an action can end records exactly one `decision`
 * event, and that event says what the agent got. The last test is the guard against recording a decision twice.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Spine, type Action, type FinalOutcome, type Outcome, type Session } from '../../extproc/spine/index.ts';
import { EMPTY_SSH } from '../../extproc/spine/index.ts';
import { startToyCore, UPSTREAM_KEY, type ToyCore } from './fixtures.ts';

let toy: ToyCore;
let spine: Spine;
let token = '';

before(async () => {
  toy = await startToyCore();
  spine = new Spine(toy.svc.core);
  token = await toy.token();
});
after(async () => toy.close());

function exec(command: string): Action {
  return {
    section: { protocol: 'ssh', ssh: { ...EMPTY_SSH, kind: 'exec', command, user: 'ops' } },
    recorded: { command },
    canonical: () => command,
    summary: () => `exec ${command}`,
  };
}

async function session(target = 'shell-1'): Promise<Session> {
  const auth = await spine.authenticate({ protocol: 'ssh', target, token });
  assert.ok(auth.ok, JSON.stringify(auth));
  return auth.session;
}

const OPTS = { maxHoldMs: 0, credential: 'ssh-key' as const };

/** Runs one action and returns its outcome and every event recorded under its request id. */
async function run(s: Session, action: Action, opts = OPTS): Promise<{ outcome: Outcome; events: any[] }> {
  const requestId = `req_${randomUUID()}`;
  const outcome = await spine.begin(s, requestId).decide(action, opts);
  return { outcome, events: (await toy.events(s.id)).filter((e) => e.requestId === requestId) };
}

function decisionOf(events: any[]): any {
  const decisions = events.filter((e) => e.type === 'decision');
  assert.equal(decisions.length, 1, `exactly one decision: ${JSON.stringify(events.map((e) => e.type))}`);
  return decisions[0].data;
}

test('allowed: the action goes upstream with the target credential, and is recorded as allowed by its rule', async () => {
  const s = await session();
  const { outcome, events } = await run(s, exec('cat /etc/motd'));
  assert.equal(outcome.kind, 'allow');
  assert.ok(outcome.kind === 'allow' && outcome.credential?.kind === 'ssh-key');
  assert.equal(
    (outcome as { credential: { privateKey: { reveal(): string } } }).credential.privateKey.reveal(),
    UPSTREAM_KEY.trim(),
    'the vault trims the file',
  );
  assert.deepEqual(
    events.map((e) => e.type),
    ['action', 'decision'],
  );
  assert.equal(events[0].data.command, 'cat /etc/motd');
  const d = decisionOf(events);
  assert.deepEqual([d.action, d.code, d.reason, d.rule, d.policy], ['allow', null, 'rule', 'read-only', 'toy-shell']);
  assert.ok(!JSON.stringify(events).includes('toy-upstream-key'), 'the credential is never recorded');
});

test("denied by a rule, and by the default: refused with the rule's words or the default's", async () => {
  const s = await session();
  const denied = await run(s, exec('rm -rf /var/lib'));
  assert.deepEqual(denied.outcome, {
    kind: 'refuse',
    refusal: { code: 'policy-deny', message: 'Deleting files is not allowed for agents.', detail: 'rule' },
  });
  assert.deepEqual(pick(decisionOf(denied.events), 'action', 'code', 'reason', 'rule'), {
    action: 'deny',
    code: 'policy-deny',
    reason: 'rule',
    rule: 'no-rm',
  });
  const byDefault = await run(s, exec('curl http://example.com'));
  assert.equal(byDefault.outcome.kind, 'refuse');
  assert.deepEqual(pick(decisionOf(byDefault.events), 'action', 'code', 'reason', 'rule'), {
    action: 'deny',
    code: 'policy-deny',
    reason: 'default',
    rule: null,
  });
});

test('policy allows but the credential cannot be had: recorded as refused (upstream-credential), not as allowed', async () => {
  const missing = await run(await session('shell-nokey'), exec('whoami'));
  assert.equal(missing.outcome.kind, 'refuse');
  assert.equal((missing.outcome as Extract<FinalOutcome, { kind: 'refuse' }>).refusal.code, 'upstream-credential');
  const d = decisionOf(missing.events);
  assert.deepEqual(pick(d, 'action', 'code', 'reason', 'policyAction', 'rule'), {
    action: 'deny',
    code: 'upstream-credential',
    reason: 'gateway',
    policyAction: 'allow',
    rule: 'read-only',
  });
  // A credential of the wrong kind for the protocol is refused the same way, before anything goes upstream.
  const wrongKind = await run(await session('shell-token'), exec('whoami'));
  assert.equal(decisionOf(wrongKind.events).code, 'upstream-credential');
});

test('approval required, no hold: refused with the request id; approved, the same action runs once', async () => {
  const s = await session();
  const first = await run(s, exec('systemctl restart nginx'));
  assert.equal(first.outcome.kind, 'refuse');
  const refused = (first.outcome as Extract<FinalOutcome, { kind: 'refuse' }>).refusal;
  assert.equal(refused.code, 'approval-required');
  assert.match(
    refused.message,
    /^Restarting a service needs a human\. — approval required .* request (apr_\S+) is waiting for approver group "sre"/,
  );
  const d = decisionOf(first.events);
  assert.deepEqual(pick(d, 'action', 'code', 'reason'), {
    action: 'require_approval',
    code: 'approval-required',
    reason: 'rule',
  });
  assert.equal(d.approval.status, 'pending');
  const id = d.approval.requestId;
  assert.equal(
    (await toy.svc.call(toy.approverToken, 'POST', `/v1/approvals/${id}/approve`, { reason: 'ok' })).status,
    200,
  );
  const again = await run(s, exec('systemctl restart nginx'));
  assert.equal(again.outcome.kind, 'allow');
  assert.deepEqual(pick(decisionOf(again.events), 'action', 'policyAction', 'code'), {
    action: 'allow',
    policyAction: 'require_approval',
    code: null,
  });
  assert.deepEqual(decisionOf(again.events).approval, { requestId: id, status: 'granted', grant: 'once' });
  const third = await run(s, exec('systemctl restart nginx'));
  assert.equal(third.outcome.kind, 'refuse', 'a once grant is used up');
});

test('approval denied by a human: refused with approval-denied', async () => {
  const s = await session();
  const first = await run(s, exec('systemctl restart redis'));
  const id = decisionOf(first.events).approval.requestId;
  assert.equal(
    (await toy.svc.call(toy.approverToken, 'POST', `/v1/approvals/${id}/deny`, { reason: 'not today' })).status,
    200,
  );
  const second = await run(s, exec('systemctl restart redis'));
  assert.equal((second.outcome as Extract<FinalOutcome, { kind: 'refuse' }>).refusal.code, 'approval-denied');
  assert.match((second.outcome as Extract<FinalOutcome, { kind: 'refuse' }>).refusal.message, /not today/);
  assert.deepEqual(pick(decisionOf(second.events), 'action', 'code', 'policyAction'), {
    action: 'deny',
    code: 'approval-denied',
    policyAction: 'require_approval',
  });
});

test('a hold records nothing until it ends: approved during the hold → allowed once; abandoned → one decision, nothing consumed', async () => {
  const s = await session();
  const requestId = `req_${randomUUID()}`;
  const held = await spine
    .begin(s, requestId)
    .decide(exec('systemctl restart postgres'), { ...OPTS, maxHoldMs: 10_000 });
  assert.equal(held.kind, 'hold');
  assert.ok(held.kind === 'hold' && held.holdMs === 10_000, "the shorter of the rule's hold and the protocol's");
  assert.equal(
    (await toy.events(s.id)).filter((e) => e.requestId === requestId && e.type === 'decision').length,
    0,
    'no decision while held',
  );
  const pending = (await toy.svc.call(toy.approverToken, 'GET', '/v1/approvals?state=pending')).body.items.find(
    (a: any) => a.summary === 'exec systemctl restart postgres',
  );
  const resumed =
    held.kind === 'hold' ? held.resume(new AbortController().signal) : Promise.reject(new Error('not held'));
  assert.equal((await toy.svc.call(toy.approverToken, 'POST', `/v1/approvals/${pending.id}/approve`, {})).status, 200);
  assert.equal((await resumed).kind, 'allow');
  const events = (await toy.events(s.id)).filter((e) => e.requestId === requestId);
  assert.equal(decisionOf(events).approval.status, 'granted');

  const leftId = `req_${randomUUID()}`;
  const left = await spine.begin(s, leftId).decide(exec('systemctl restart cron'), { ...OPTS, maxHoldMs: 10_000 });
  assert.equal(left.kind, 'hold');
  const agentGone = new AbortController();
  const waiting = left.kind === 'hold' ? left.resume(agentGone.signal) : Promise.reject(new Error('not held'));
  agentGone.abort(new Error('agent went away'));
  await assert.rejects(waiting, /agent went away/);
  const d = decisionOf((await toy.events(s.id)).filter((e) => e.requestId === leftId));
  assert.deepEqual(pick(d, 'action', 'code', 'detail'), {
    action: 'require_approval',
    code: 'approval-required',
    detail: 'abandoned',
  });
  assert.equal(d.approval.status, 'abandoned');
});

test('refused before classification, and a fault before the decision: each recorded once, as the agent saw it', async () => {
  const s = await session();
  const a = spine.begin(s, `req_${randomUUID()}`);
  const out = a.refuse(
    { code: 'bad-request', message: 'unparseable command line', detail: 'bad-syntax' },
    { raw: 'echo "unterminated' },
  );
  assert.equal(out.kind, 'refuse');
  const b = spine.begin(s, `req_${randomUUID()}`);
  b.fault(new Error('parser crashed'));
  const events = await toy.events(s.id);
  const da = decisionOf(events.filter((e) => e.requestId === a.requestId));
  assert.deepEqual(pick(da, 'action', 'code', 'detail', 'reason'), {
    action: 'deny',
    code: 'bad-request',
    detail: 'bad-syntax',
    reason: 'gateway',
  });
  assert.deepEqual(pick(decisionOf(events.filter((e) => e.requestId === b.requestId)), 'action', 'code'), {
    action: 'deny',
    code: 'internal',
  });
});

test('authentication: no token, a token for another target, an unknown target; session.start recorded once per session', async () => {
  const none = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token: undefined });
  assert.deepEqual(none.ok ? null : [none.refusal.code, none.refusal.detail], ['unauthenticated', 'token-missing']);
  const other = await spine.authenticate({
    protocol: 'ssh',
    target: 'shell-1',
    token: await toy.token(['shell-token']),
  });
  assert.deepEqual(other.ok ? null : [other.refusal.code, other.refusal.detail], ['forbidden', 'token-out_of_scope']);
  const nowhere = await spine.authenticate({ protocol: 'ssh', target: 'no-such-target', token });
  assert.deepEqual(nowhere.ok ? null : nowhere.refusal.code, 'misconfigured');
  const wrongProtocol = await spine.authenticate({ protocol: 'kubernetes', target: 'shell-1', token });
  assert.equal(wrongProtocol.ok, false, 'a target is served only by its own protocol');
  const fresh = await toy.token(['shell-1']);
  const s1 = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token: fresh });
  const s2 = await spine.authenticate({ protocol: 'ssh', target: 'shell-1', token: fresh });
  assert.ok(s1.ok && s2.ok && s1.session.id === s2.session.id);
  const starts = (await toy.events(s1.ok ? s1.session.id : '')).filter((e) => e.type === 'session.start');
  assert.equal(starts.length, 1);
});

test('an action is decided once: a second decide() or a decide() after refuse() throws and records nothing more', async () => {
  const s = await session();
  const a = spine.begin(s, `req_${randomUUID()}`);
  assert.equal((await a.decide(exec('whoami'), OPTS)).kind, 'allow');
  assert.throws(() => a.decide(exec('whoami'), OPTS), /already decided/);
  const b = spine.begin(s, `req_${randomUUID()}`);
  b.refuse({ code: 'unsupported', message: 'no', detail: 'x' }, {});
  assert.throws(() => b.decide(exec('whoami'), OPTS), /already decided/);
  assert.throws(() => b.refuse({ code: 'unsupported', message: 'no', detail: 'x' }, {}), /decided twice/);
  const events = await toy.events(s.id);
  for (const id of [a.requestId, b.requestId]) decisionOf(events.filter((e) => e.requestId === id));
});

function pick(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}
