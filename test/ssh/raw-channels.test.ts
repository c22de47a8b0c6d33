/**
 * Subsystems and port forwards carry bytes the gateway cannot mask (an SFTP stream, any TCP protocol): a rule may
 * allow them, and then they pass only where no masking rule applies to the session. Environment variables are filtered
 * whatever the policy says (sshd here would accept any PORTCULLIS_TEST_* variable).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ssh2, { type Client } from 'ssh2';
import { publicKeyBlob } from '../../extproc/ssh/host-key.ts';
import { AGENT, startSshStack, TARGET, type SshStack } from './ssh-stack.ts';

const RAW_ALLOWED = `apiVersion: portcullis.dev/v1
kind: Policy
name: raw-allowed
mode: enforce
scope:
  targets:
    kinds: [ssh]
rules:
  - name: transfers-and-forwards
    when: ssh.kind in ["subsystem", "port-forward"]
    action: allow
  - name: printenv
    when: ssh.kind == "exec" && ssh.programs == ["printenv"]
    action: allow
`;
const MASKING = `apiVersion: portcullis.dev/v1
kind: Policy
name: mask-cards
mode: enforce
scope:
  targets:
    kinds: [ssh]
rules: []
masking:
  - name: cards
    entities: [CREDIT_CARD]
    strategy: redact
`;

let dir: string;
let open: SshStack;
let masked: SshStack;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-raw-'));
  writeFileSync(join(dir, 'raw-allowed.yaml'), RAW_ALLOWED);
  writeFileSync(join(dir, 'mask-cards.yaml'), MASKING);
  writeFileSync(join(dir, 'hello.txt'), 'hello over sftp\n');
  open = await startSshStack({ policies: [join(dir, 'raw-allowed.yaml')] });
  masked = await startSshStack({ policies: [join(dir, 'raw-allowed.yaml'), join(dir, 'mask-cards.yaml')] });
});
after(async () => {
  await open?.close();
  await masked?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('sftp through the gateway when a rule allows it and nothing is masked', async () => {
  const copy = join(dir, 'copy.txt');
  const r = await open.client('sftp', [`${AGENT}@${TARGET}@127.0.0.1`], {
    input: `get ${join(dir, 'hello.txt')} ${copy}\n`,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(copy, 'utf8'), 'hello over sftp\n');
});

test('with a masking rule in force, an allowed sftp is refused: its bytes could not be masked', async () => {
  const r = await masked.client('sftp', [`${AGENT}@${TARGET}@127.0.0.1`], { input: 'ls /\n' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /the sftp subsystem's data cannot be masked, and masking applies here/);
});

test('ssh -W reaches the forwarded port when allowed and unmasked; refused when masking applies', async () => {
  const through = await open.ssh(['-W', `127.0.0.1:${open.sshd.port}`], {
    input: 'SSH-2.0-probe\r\n',
    timeoutMs: 20_000,
  });
  assert.match(through.stdout, /^SSH-2\.0-OpenSSH/, through.stderr);
  const refused = await masked.ssh(['-W', `127.0.0.1:${masked.sshd.port}`]);
  assert.equal(refused.status, 255);
  assert.match(refused.stderr, /open failed/);
});

test('only the locale and TZ reach the target of all the environment the agent sends', async () => {
  const client: Client = await new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({
      host: '127.0.0.1',
      port: open.relay.port,
      username: `${AGENT}@${TARGET}`,
      password: open.agentToken,
      hostVerifier: (key: Buffer) => key.equals(publicKeyBlob(open.gatewayHostKey) as Buffer),
    });
  });
  try {
    const out = await new Promise<string>((resolve, reject) => {
      client.exec(
        'printenv',
        { env: { LANG: 'C.UTF-8', TZ: 'UTC', PORTCULLIS_TEST_SECRET: 'leak', LD_PRELOAD: '/tmp/x.so' } },
        (err, ch) => {
          if (err) return reject(err);
          let text = '';
          ch.on('data', (d: Buffer) => (text += d.toString()));
          ch.stderr.resume();
          ch.on('close', () => resolve(text));
        },
      );
    });
    assert.match(out, /^LANG=C\.UTF-8$/m);
    assert.match(out, /^TZ=UTC$/m);
    assert.doesNotMatch(out, /PORTCULLIS_TEST_SECRET|LD_PRELOAD/);
  } finally {
    client.end();
  }
});
