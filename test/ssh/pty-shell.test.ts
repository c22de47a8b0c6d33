/**
 * An interactive shell with a pty, driven through tmux as a person (or an agent with a terminal) would: OpenSSH's
 * `ssh -tt` through the relay to the gateway and the real sshd. Each submitted line is decided before it is sent; the
 * terminal session is recorded, exported as asciicast v2, and replayed by `asciinema play`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { waitFor } from '../harness/ports.ts';
import { AGENT, startSshStack, TARGET, type SshStack } from './ssh-stack.ts';

const run = promisify(execFile);
let stack: SshStack;
let dir: string;
const SOCKET = `portcullis-pty-${process.pid}`;
const CARD = '4111 1111 1111 1111';

const tmux = (...args: string[]) => run('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { env: process.env });
const pane = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'agent')).stdout;
const paneShows = (re: RegExp, what: string) =>
  waitFor(async () => re.test(await pane()), 60_000, what).catch(async (err: unknown) => {
    throw new Error(`${String(err)}; pane:\n${await pane().catch(() => '(gone)')}`);
  });

before(async () => {
  stack = await startSshStack({ policies: ['examples/policies/ssh-guardrails.yaml'] });
  dir = mkdtempSync(join(tmpdir(), 'portcullis-pty-'));
  writeFileSync(join(dir, 'cards.txt'), `card ${CARD}\n`);
});
after(async () => {
  await tmux('kill-server').catch(() => undefined);
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a pty shell under tmux: lines decided before they run, recorded, exported as asciicast, replayed', async () => {
  const env = stack.askpassEnv();
  const ssh = [
    'ssh',
    '-tt',
    ...stack.clientOptions(),
    '-p',
    String(stack.relay.port),
    '-l',
    `${AGENT}@${TARGET}`,
    '127.0.0.1',
  ];
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  await tmux('new-session', '-d', '-s', 'agent', '-x', '100', '-y', '30', 'env', '-i', ...envArgs, ...ssh);
  // The prompt of the real host's shell (PS1 ends in "$ " or "# ").
  await paneShows(/[$#]$/m, 'the remote prompt');

  await tmux('send-keys', '-t', 'agent', '-l', 'echo hello-from-pty');
  await tmux('send-keys', '-t', 'agent', 'Enter');
  await paneShows(/^hello-from-pty$/m, 'the echo output');

  // The line is rebuilt from the keystrokes: "cat /etc/shadowX", Backspace → "cat /etc/shadow", refused.
  await tmux('send-keys', '-t', 'agent', '-l', 'cat /etc/shadowX');
  await tmux('send-keys', '-t', 'agent', 'BSpace');
  await tmux('send-keys', '-t', 'agent', 'Enter');
  await paneShows(/portcullis: refused by policy: Reading or writing password hashes/, 'the refusal');

  // History keys would recall a line the gateway never saw: dropped, with a notice; Ctrl-U clears the line.
  await tmux('send-keys', '-t', 'agent', 'Up');
  await paneShows(/line editing, history and completion keys are not passed/, 'the notice');
  await tmux('send-keys', '-t', 'agent', '-l', 'rm -rf /srv/data');
  await tmux('send-keys', '-t', 'agent', 'C-u');
  await tmux('send-keys', '-t', 'agent', 'Enter');

  await tmux('send-keys', '-t', 'agent', '-l', `cat ${join(dir, 'cards.txt')}`);
  await tmux('send-keys', '-t', 'agent', 'Enter');
  await paneShows(/^card \[REDACTED:CREDIT_CARD\]/m, 'the masked card');
  assert.ok(!(await pane()).includes(CARD), 'the card number reached the terminal');

  await tmux('send-keys', '-t', 'agent', '-l', 'exit');
  await tmux('send-keys', '-t', 'agent', 'Enter');
  await waitFor(
    async () =>
      !(await tmux('has-session', '-t', 'agent').then(
        () => true,
        () => false,
      )),
    60_000,
    'ssh to exit',
  );

  // The terminal session: its own recording, with the terminal's size, ended when the channel closed.
  const admin = stack.svc.adminToken;
  const terminal = (await waitFor(
    async () => {
      const r = await stack.svc.call(admin, 'GET', `/v1/sessions?agent=${AGENT}`);
      return (r.body.sessions as { id: string; terminal: unknown; status: string }[]).find(
        (s) => s.terminal !== null && s.status === 'ended',
      );
    },
    30_000,
    'the ended terminal session',
  )) as { id: string; terminal: { width: number; height: number } };
  assert.deepEqual(terminal.terminal, { width: 100, height: 30 });
  const events = (await stack.svc.call(admin, 'GET', `/v1/sessions/${encodeURIComponent(terminal.id)}/events`)).body
    .events as { type: string; data: any }[];
  const lines = events.filter((e) => e.type === 'action' && e.data.kind === 'shell-line').map((e) => e.data.command);
  assert.deepEqual(lines, ['echo hello-from-pty', 'cat /etc/shadow', `cat ${join(dir, 'cards.txt')}`, 'exit']);
  const decisions = events.filter((e) => e.type === 'decision').map((e) => e.data.action);
  assert.deepEqual(decisions, ['allow', 'allow', 'deny', 'allow', 'allow'], 'the shell, then each line');

  const exported = await fetch(
    `${stack.svc.adminUrl}/v1/sessions/${encodeURIComponent(terminal.id)}/export?format=asciicast`,
    {
      headers: { authorization: `Bearer ${admin}` },
    },
  );
  assert.equal(exported.status, 200);
  const cast = await exported.text();
  const [header, ...frames] = cast
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(header.version, 2);
  assert.equal(header.width, 100);
  assert.equal(header.height, 30);
  const shown = frames.map((f: [number, string, string]) => {
    assert.equal(f[1], 'o');
    return f[2];
  });
  const text = shown.join('');
  // What was typed (echoed by the host's shell) and what was shown, in order; the card masked.
  const order = [
    'echo hello-from-pty',
    'hello-from-pty',
    'cat /etc/shadow',
    'refused by policy',
    '[REDACTED:CREDIT_CARD]',
    'exit',
  ];
  let at = 0;
  for (const piece of order) {
    const i = text.indexOf(piece, at);
    assert.ok(i >= 0, `the cast shows ${JSON.stringify(piece)} after position ${at}:\n${text}`);
    at = i + piece.length;
  }
  assert.ok(!text.includes(CARD));
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i][0] >= frames[i - 1][0], 'times never go back');

  // asciinema replays it: its output is the recorded terminal output.
  const castPath = join(dir, 'session.cast');
  writeFileSync(castPath, cast);
  await tmux(
    'new-session',
    '-d',
    '-s',
    'replay',
    '-x',
    '100',
    '-y',
    '30',
    `asciinema play -i 0.05 ${castPath}; sleep 60`,
  );
  await waitFor(
    async () => /^card \[REDACTED:CREDIT_CARD\]/m.test((await tmux('capture-pane', '-p', '-t', 'replay')).stdout),
    60_000,
    'asciinema play to replay the session',
  );
  const replayed = (await tmux('capture-pane', '-p', '-t', 'replay')).stdout;
  assert.match(replayed, /hello-from-pty/);
  assert.match(replayed, /portcullis: refused by policy/);
});
