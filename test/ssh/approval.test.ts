/**
 * `systemctl restart app` under the sample policy needs an approval: the gateway keeps the exec open (the rule's hold)
 * while an approver decides over the admin API; once approved, the exact command line runs once on the host. The grant
 * is single-use: the same line asks again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../harness/ports.ts';
import { startSshStack, type SshStack } from './ssh-stack.ts';

let stack: SshStack;
let approver = '';
const COMMAND = 'systemctl restart app';

before(async () => {
  stack = await startSshStack({ policies: ['examples/policies/ssh-guardrails.yaml'] });
  approver = (await stack.svc.principal('alice', ['approver'], ['sre'])).token;
});
after(async () => {
  await stack?.close();
});

async function pending(): Promise<{ id: string; summary: string }> {
  return (await waitFor(
    async () => {
      const r = await stack.svc.call(approver, 'GET', '/v1/approvals?state=pending');
      return (r.body.items as { id: string; summary: string }[]).find((i) => i.summary.includes(COMMAND));
    },
    60_000,
    'the pending approval',
  )) as { id: string; summary: string };
}

test('systemctl restart app waits for approval, then runs once; the grant is not reusable', async () => {
  const held = stack.ssh([COMMAND]);
  const request = await pending();
  assert.match(request.summary, /exec "systemctl restart app" as .* on web-1/);
  const approved = await stack.svc.call(approver, 'POST', `/v1/approvals/${request.id}/approve`, { reason: 'deploy' });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const r = await held;
  // The command ran on the host: systemctl's own answer (this test host has no unit "app", maybe no systemd), never
  // the gateway's refusal.
  assert.notEqual(r.status, 126, r.stderr);
  assert.doesNotMatch(r.stderr, /portcullis:/);
  assert.ok(r.status !== 0 || r.stdout !== '' || r.stderr !== '', 'systemctl answered');
  const state = await stack.svc.call(approver, 'GET', `/v1/approvals/${request.id}`);
  assert.equal(state.body.state, 'consumed');

  // Used up: the same line is held again as a new request; denying it refuses the exec with 126.
  const again = stack.ssh([COMMAND]);
  const second = await waitFor(
    async () => {
      const p = await pending();
      return p.id !== request.id ? p : null;
    },
    60_000,
    'a second request',
  );
  assert.ok(second);
  assert.equal(
    (await stack.svc.call(approver, 'POST', `/v1/approvals/${second.id}/deny`, { reason: 'not now' })).status,
    200,
  );
  const denied = await again;
  assert.equal(denied.status, 126);
  assert.match(denied.stderr, /portcullis: approval denied: /);
});

test('an agent that goes away while held consumes nothing: the request stays pending, recorded as abandoned', async () => {
  // The ssh client is killed (its timeout) while the gateway holds the exec.
  const held = stack.ssh(['systemctl reload app'], { timeoutMs: 5_000 });
  const request = (await waitFor(
    async () => {
      const r = await stack.svc.call(approver, 'GET', '/v1/approvals?state=pending');
      return (r.body.items as { id: string; summary: string }[]).find((i) =>
        i.summary.includes('systemctl reload app'),
      );
    },
    60_000,
    'the pending approval',
  )) as { id: string };
  const r = await held;
  assert.equal(r.status, null, 'the client was killed while held');
  await waitFor(
    async () => {
      const list = await stack.svc.call(stack.svc.adminToken, 'GET', '/v1/sessions?agent=planner-1');
      for (const s of list.body.sessions as { id: string }[]) {
        const events = (await stack.svc.call(stack.svc.adminToken, 'GET', `/v1/sessions/${s.id}/events?limit=10000`))
          .body.events as { type: string; data: any }[];
        if (
          events.some(
            (e) =>
              e.type === 'decision'
              && e.data.approval?.requestId === request.id
              && e.data.approval?.status === 'abandoned',
          )
        )
          return true;
      }
      return false;
    },
    30_000,
    'the abandoned decision',
  );
  assert.equal((await stack.svc.call(approver, 'GET', `/v1/approvals/${request.id}`)).body.state, 'pending');
});
