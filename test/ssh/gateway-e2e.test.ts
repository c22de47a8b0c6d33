import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSshStack, type SshStack } from './ssh-stack.ts';

let stack: SshStack;
before(async () => {
  stack = await startSshStack({ policies: ['examples/policies/ssh-guardrails.yaml'] });
});
after(async () => {
  await stack?.close();
});

test('ssh AGENT@TARGET with the token runs uname -a on the real host', async () => {
  const r = await stack.ssh(['uname -a']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Linux /);
});
