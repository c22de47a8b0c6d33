/**
 * The SSH path end to end with real OpenSSH: `ssh`, `scp` and `sftp` (and ssh2 as a client where one connection must
 * carry several channels) through a plain TCP relay (tcp_proxy's stand-in) to the gateway, and from it to a real sshd,
 * under the bundled example policy examples/policies/ssh-guardrails.yaml.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { publicKeyBlob } from '../../extproc/ssh/host-key.ts';
import { freePort, waitFor, waitForPort } from '../harness/ports.ts';
import { makeKeyPair } from '../harness/sshd.ts';
import { AGENT, startSshStack, TARGET, type SshStack } from './ssh-stack.ts';

let stack: SshStack;
let files: string;
const CARDS = ['4111 1111 1111 1111', '5500-0000-0000-0004'];

before(async () => {
  stack = await startSshStack({ policies: ['examples/policies/ssh-guardrails.yaml'] });
  files = mkdtempSync(join(tmpdir(), 'portcullis-ssh-files-'));
  writeFileSync(join(files, 'cards.txt'), `alice ${CARDS[0]}\nbob ${CARDS[1]}\ntotal 2\n`);
});
after(async () => {
  await stack?.close();
  if (files) rmSync(files, { recursive: true, force: true });
});

/** The recorded events of the agent's session (the token's session), once everything recorded so far is stored. */
async function sessionEvents(): Promise<{ type: string; data: any }[]> {
  await stack.svc.core.recorder.flush();
  const list = await stack.svc.call(stack.svc.adminToken, 'GET', `/v1/sessions?agent=${AGENT}`);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const events: { type: string; data: any }[] = [];
  for (const s of list.body.sessions as { id: string }[]) {
    const path = `/v1/sessions/${encodeURIComponent(s.id)}/events?limit=10000`;
    events.push(...((await stack.svc.call(stack.svc.adminToken, 'GET', path)).body.events as []));
  }
  return events;
}

test('ssh AGENT@TARGET with the token runs uname -a on the real host', async () => {
  const r = await stack.ssh(['uname -a']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Linux /);
});

test('a wrong token is refused, with the reason shown by keyboard-interactive', async () => {
  const r = await stack.ssh(['uname -a'], { token: 'not-a-token' });
  assert.equal(r.status, 255);
  assert.match(r.stderr, /Refused: .*token/i);
  assert.match(r.stderr, /Permission denied/);
  assert.equal(r.stdout, '');
});

test('an expired token is refused', async () => {
  const token = await stack.issueToken('1s');
  const r = await waitFor<Awaited<ReturnType<SshStack['ssh']>> | null>(
    async () => {
      const attempt = await stack.ssh(['uname -a'], { token });
      return attempt.status === 255 ? attempt : null;
    },
    30_000,
    'the token to expire',
  );
  assert.match(r?.stderr ?? '', /Refused: .*expired/i);
});

test('the login must name the agent the token was issued to, as AGENT@TARGET', async () => {
  const other = await stack.ssh(['uname -a'], { login: `someone-else@${TARGET}` });
  assert.equal(other.status, 255);
  assert.match(other.stderr, /not issued to agent someone-else/);
  const bare = await stack.ssh(['uname -a'], { login: AGENT });
  assert.equal(bare.status, 255);
  assert.match(bare.stderr, /log in as AGENT@TARGET/);
});

test("the gateway's upstream key is no way in for the agent: publickey and passwords other than a token fail", async () => {
  const withKey = await stack.ssh(['-i', stack.sshd.clientKey.path, 'id'], { auth: 'publickey' });
  assert.equal(withKey.status, 255);
  assert.match(withKey.stderr, /Permission denied/);
  const withKeyText = await stack.ssh(['id'], { token: stack.sshd.clientKey.privateKey });
  assert.equal(withKeyText.status, 255);
});

for (const command of ['rm -rf /srv/data', 'cat /etc/shadow', 'ls /srv; rm -rf /srv/data']) {
  test(`${JSON.stringify(command)} is refused with the policy message and exit status 126`, async () => {
    const r = await stack.ssh([command]);
    assert.equal(r.status, 126, r.stderr);
    assert.match(r.stderr, /portcullis: refused by policy: /);
    assert.equal(r.stdout, '', 'nothing of the line ran: not even the ls before the rm');
  });
}

test('a command line the gateway cannot expand statically is refused, with the reason', async () => {
  const r = await stack.ssh(['cat $(echo /etc/shadow)']);
  assert.equal(r.status, 126);
  assert.match(r.stderr, /cannot inspect this command line: a command substitution/);
});

test('sh -c strings are looked through: the rm inside is refused', async () => {
  const r = await stack.ssh([`sh -c 'ls / && rm -rf /srv/data'`]);
  assert.equal(r.status, 126);
  assert.match(r.stderr, /Deleting files under/);
});

test('a refused exec leaves the connection usable for the next channel (ssh2 as client)', async () => {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: stack.relay.port,
      username: `${AGENT}@${TARGET}`,
      password: stack.agentToken,
      hostVerifier: (key: Buffer) => key.equals(publicKeyBlob(stack.gatewayHostKey) as Buffer),
    });
  });
  const exec = (cmd: string) =>
    new Promise<{ code: number; out: string; err: string }>((resolve, reject) => {
      client.exec(cmd, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        let errOut = '';
        let code = -1;
        ch.on('data', (d: Buffer) => (out += d.toString()));
        ch.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
        ch.on('exit', (c: number) => (code = c));
        ch.on('close', () => resolve({ code, out, err: errOut }));
      });
    });
  try {
    const refused = await exec('cat /etc/shadow');
    assert.equal(refused.code, 126);
    assert.match(refused.err, /refused by policy/);
    const allowed = await exec('echo still here');
    assert.equal(allowed.code, 0);
    assert.equal(allowed.out, 'still here\n');
  } finally {
    client.end();
  }
});

test('cat cards.txt: the card numbers reach the agent masked, and are recorded masked', async () => {
  const r = await stack.ssh([`cat ${join(files, 'cards.txt')}`]);
  assert.equal(r.status, 0, r.stderr);
  for (const card of CARDS) assert.ok(!r.stdout.includes(card), `card ${card} reached the agent`);
  assert.match(r.stdout, /^alice \[REDACTED:CREDIT_CARD\]\nbob \[REDACTED:CREDIT_CARD\]\ntotal 2\n$/);
  const events = (await waitFor<{ type: string; data: any }[] | null>(
    async () => {
      const evs = await sessionEvents();
      return evs.some((e) => e.type === 'output' && String(e.data.stdout ?? '').includes('alice')) ? evs : null;
    },
    30_000,
    'the output event',
  )) as { type: string; data: any }[];
  const output = events.find((e) => e.type === 'output' && String(e.data.stdout ?? '').includes('alice'));
  assert.equal(output?.data.exitStatus, 0);
  for (const card of CARDS) assert.ok(!JSON.stringify(events).includes(card), 'a card number in the recording');
});

test('each exec is recorded: the command, the commands it runs, the decision and the exit status', async () => {
  const r = await stack.ssh(['ls / | wc -l']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((await stack.ssh(['cat /etc/shadow'])).status, 126);
  const events = (await waitFor<{ type: string; data: any }[] | null>(
    async () => {
      const evs = await sessionEvents();
      return evs.some((e) => e.type === 'action' && e.data.command === 'ls / | wc -l') ? evs : null;
    },
    30_000,
    'the action event',
  )) as { type: string; data: any }[];
  const action = events.find((e) => e.type === 'action' && e.data.command === 'ls / | wc -l');
  assert.deepEqual(action?.data.commands, [
    { program: 'ls', args: ['/'] },
    { program: 'wc', args: ['-l'] },
  ]);
  const refused = events.filter(
    (e) => e.type === 'decision' && e.data.action === 'deny' && e.data.rule === 'no-secrets',
  );
  assert.ok(refused.length > 0, 'the refused cat /etc/shadow is recorded with its rule');
});

test('scp, sftp and ssh -L are refused by the sample policy', async () => {
  const local = join(files, 'cards.txt');
  const scp = await stack.client('scp', [local, `${AGENT}@${TARGET}@127.0.0.1:/tmp/copied.txt`]);
  assert.notEqual(scp.status, 0, scp.stderr);
  assert.match(scp.stderr, /File transfer \(scp, sftp, rsync\) is not allowed/);
  const legacyScp = await stack.client('scp', ['-O', local, `${AGENT}@${TARGET}@127.0.0.1:/tmp/copied.txt`]);
  assert.notEqual(legacyScp.status, 0, legacyScp.stderr);
  assert.match(legacyScp.stderr, /File transfer \(scp, sftp, rsync\) is not allowed/);
  const sftp = await stack.client('sftp', [`${AGENT}@${TARGET}@127.0.0.1`], { input: 'ls /\n' });
  assert.notEqual(sftp.status, 0, sftp.stderr);
  assert.match(sftp.stderr, /File transfer \(scp, sftp, rsync\) is not allowed/);

  // ssh -L: the forward is asked for when a connection arrives on the local port; the gateway refuses the channel.
  const localPort = await freePort();
  const tunnel = spawn(
    'ssh',
    [
      ...stack.clientOptions(),
      '-N',
      '-L',
      `${localPort}:127.0.0.1:${stack.sshd.port}`,
      '-p',
      String(stack.relay.port),
      '-l',
      `${AGENT}@${TARGET}`,
      '127.0.0.1',
    ],
    { env: stack.askpassEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let tunnelErr = '';
  tunnel.stderr.on('data', (d: Buffer) => (tunnelErr += d.toString()));
  try {
    await waitForPort(localPort, 30_000);
    const sock = connect(localPort, '127.0.0.1');
    sock.on('error', () => undefined);
    await waitFor(() => /open failed/.test(tunnelErr), 30_000, 'the refused forward').catch((err: unknown) => {
      throw new Error(`${String(err)}: ${tunnelErr}`);
    });
    sock.destroy();
  } finally {
    tunnel.kill('SIGTERM');
  }
  // ssh -W asks for the same channel at once.
  const fwd = await stack.ssh(['-W', `127.0.0.1:${stack.sshd.port}`]);
  assert.equal(fwd.status, 255, fwd.stderr);
  assert.match(fwd.stderr, /open failed/);
  const events = await sessionEvents();
  assert.ok(
    events.some((e) => e.type === 'decision' && e.data.rule === 'no-port-forwarding'),
    'the forward was decided by the policy and recorded',
  );
});

test("the target's host key must be the pinned one: another key, or none pinned, and the gateway does not connect", async () => {
  const admin = stack.svc.adminToken;
  const base = {
    kind: 'ssh',
    address: `127.0.0.1:${stack.sshd.port}`,
    recording: 'fail-closed',
    credential: { kind: 'ssh-key', user: stack.sshd.user, privateKeyRef: `file:${stack.sshd.clientKey.path}` },
  };
  // A valid key, but not this host's: as if the address now led to another machine.
  const wrong = await stack.svc.call(admin, 'POST', '/v1/targets', {
    ...base,
    name: 'web-moved',
    hostKey: stack.sshd.userCa.publicKey,
  });
  assert.equal(wrong.status, 201, JSON.stringify(wrong.body));
  assert.equal((await stack.svc.call(admin, 'POST', '/v1/targets', { ...base, name: 'web-unpinned' })).status, 201);
  await stack.svc.core.targets.refresh();
  const issued = await stack.svc.call(admin, 'POST', '/v1/tokens', {
    agent: AGENT,
    targets: ['web-moved', 'web-unpinned'],
    ttl: '10m',
  });
  const token = issued.body.token as string;
  const moved = await stack.ssh(['uname -a'], { token, login: `${AGENT}@web-moved` });
  assert.equal(moved.status, 255);
  assert.match(moved.stderr, /presented host key SHA256:\S+, not the pinned SHA256:\S+; refusing to connect/);
  assert.equal(moved.stdout, '');
  const unpinned = await stack.ssh(['uname -a'], { token, login: `${AGENT}@web-unpinned` });
  assert.equal(unpinned.status, 255);
  assert.match(unpinned.stderr, /has no valid pinned host key; the gateway does not trust on first use/);
});

test('the gateway serves its host key and fingerprint on the admin API, as ssh-keygen computes it', async () => {
  const r = await stack.svc.call(stack.svc.adminToken, 'GET', '/v1/listeners');
  assert.equal(r.status, 200);
  const ssh = (r.body as { name: string; details: { hostKey: string; fingerprint: string } }[]).find(
    (l) => l.name === 'ssh',
  );
  assert.ok(ssh);
  const keyFile = join(files, 'gateway.pub');
  writeFileSync(keyFile, `${ssh.details.hostKey}\n`);
  const { stdout } = await promisify(execFile)('ssh-keygen', ['-lf', keyFile]);
  assert.equal(stdout.split(' ')[1], ssh.details.fingerprint);
  assert.ok(stack.svc.logs().includes(ssh.details.fingerprint), 'the fingerprint is logged at start');
});

test('a connection does not outlive its token: after revocation the next exec on it is refused', async () => {
  const token = await stack.issueToken('10m');
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: stack.relay.port,
      username: `${AGENT}@${TARGET}`,
      password: token,
      hostVerifier: (key: Buffer) => key.equals(publicKeyBlob(stack.gatewayHostKey) as Buffer),
    });
  });
  const exec = (cmd: string) =>
    new Promise<{ code: number; err: string }>((resolve, reject) => {
      client.exec(cmd, (err, ch) => {
        if (err) return reject(err);
        let errOut = '';
        let code = -1;
        ch.resume();
        ch.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
        ch.on('exit', (c: number) => (code = c));
        ch.on('close', () => resolve({ code, err: errOut }));
      });
    });
  try {
    assert.equal((await exec('true')).code, 0);
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).jti as string;
    const revoked = await stack.svc.call(stack.svc.adminToken, 'DELETE', `/v1/tokens/${jti}`);
    assert.ok(revoked.status === 200 || revoked.status === 204, JSON.stringify(revoked.body));
    const after = await waitFor(
      async () => {
        const r = await exec('true');
        return r.code === 126 ? r : null;
      },
      30_000,
      'the revocation to reach the gateway',
    );
    assert.match(after?.err ?? '', /portcullis: not authorized: .*revoked/);
  } finally {
    client.end();
  }
});

test("the agent's stdin reaches the command, also when it is sent before the decision", async () => {
  const input = `${'line of input\n'.repeat(20_000)}card 4111 1111 1111 1111\n`;
  const r = await stack.ssh(['cat'], { input });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n').length, 20_002);
  assert.match(r.stdout, /card \[REDACTED:CREDIT_CARD\]\n$/);
  const counted = await stack.ssh(['wc -l'], { input });
  assert.equal(counted.stdout.trim(), '20001');
});

test('an agent may log in with a public key registered to it for the target, and with no other', async () => {
  const key = makeKeyPair(files, 'agent_key');
  const registered = await stack.svc.call(stack.svc.adminToken, 'PUT', `/v1/agents/${AGENT}`, {
    id: AGENT,
    sshKeys: [{ publicKey: key.publicKey, targets: [TARGET] }],
  });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  // Agents are cached for a second by every verifier: the registration takes effect within that.
  const byKey = (await waitFor(
    async () => {
      const r = await stack.ssh(['-i', key.path, 'id -un'], { auth: 'publickey' });
      return r.status === 0 ? r : null;
    },
    30_000,
    'the key registration to take effect',
  )) as Awaited<ReturnType<SshStack['ssh']>>;
  assert.equal(byKey.stdout.trim(), stack.sshd.user);
  // Not for another target, and not the gateway's own upstream key.
  const elsewhere = await stack.ssh(['-i', key.path, 'id'], { auth: 'publickey', login: `${AGENT}@web-moved` });
  assert.equal(elsewhere.status, 255);
  const upstreamKey = await stack.ssh(['-i', stack.sshd.clientKey.path, 'id'], { auth: 'publickey' });
  assert.equal(upstreamKey.status, 255);
  assert.ok(stack.svc.logs().includes('this public key is not registered to agent planner-1'));
  // Removing the key stops its next command on an open connection too (checked before each action).
  const removed = await stack.svc.call(stack.svc.adminToken, 'PUT', `/v1/agents/${AGENT}`, { id: AGENT, sshKeys: [] });
  assert.equal(removed.status, 200);
  const after = await waitFor(
    async () => {
      const r = await stack.ssh(['-i', key.path, 'id'], { auth: 'publickey' });
      return r.status === 255 ? r : null;
    },
    30_000,
    'the key removal to take effect',
  );
  assert.ok(after);
});

test('ssh -R is refused, and recorded as a refused remote-forward', async () => {
  const r = await stack.ssh(['-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22', 'true']);
  assert.equal(r.status, 255);
  assert.match(r.stderr, /remote port forwarding failed/);
  await waitFor(
    async () =>
      (await sessionEvents()).some(
        (e) => e.type === 'decision' && e.data.code === 'unsupported' && e.data.detail === 'remote-forward',
      ),
    30_000,
    'the refused -R in the recording',
  );
});
