import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sshCommand } from '../../extproc/cli/commands/ssh.ts';
import { runCommand } from '../harness/cli.ts';

const cli = (argv: string[]) => runCommand(sshCommand, argv, {});

test('portcullis ssh classify prints the commands a line runs, through sh -c', async () => {
  const r = await cli(['classify', `ls /srv; bash -c 'rm -rf /srv/data' > /dev/null`]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), {
    commands: [
      { program: 'ls', args: ['/srv'] },
      { program: 'rm', args: ['-rf', '/srv/data'] },
    ],
    redirects: [{ op: '>', fd: '', target: '/dev/null' }],
  });
});

test('a line that cannot be expanded statically prints {"error"} and exits 1', async () => {
  const r = await cli(['classify', 'rm -rf $(cat dirs)']);
  assert.equal(r.code, 1);
  assert.match(JSON.parse(r.out).error, /command substitution/);
});

test('usage errors exit 2', async () => {
  assert.equal((await cli(['classify'])).code, 2);
  assert.equal((await cli(['what'])).code, 2);
});
