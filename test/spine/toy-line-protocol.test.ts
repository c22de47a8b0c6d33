/**
 * The adapter contract proven with a toy: test/spine/toy-line-adapter.ts (translation only, a few dozen lines) gets
 * authentication, decisions, approval holds, recording and masking from the spine, served by the generic network
 * ext_proc loop. Envoy's side is first scripted over a real gRPC stream (each chunk sent as Envoy sends it, each answer
 * read in order per direction), then played by the network ext_proc stand-in between a real TCP client and upstream.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, connect, createServer } from 'node:net';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  newNetworkExtProcClient,
  type NetworkExternalProcessorClient,
  type NetworkProcessingResponse,
} from '../../extproc/envoy-api/index.ts';
import { loadMaskingEngine } from '../../extproc/masking/index.ts';
import { startNetworkStandIn } from '../envoy/network-stand-in.ts';
import { waitFor } from '../harness/ports.ts';
import { startToyCore, type ToyCore } from './fixtures.ts';
import { toyLineAdapter } from './toy-line-adapter.ts';

/** Only a guard against hanging (the policy's hold is 20 s): each wait ends as soon as its event happens. */
const HANG_GUARD_MS = 15_000;
let toy: ToyCore;
let client: NetworkExternalProcessorClient;

before(async () => {
  toy = await startToyCore([toyLineAdapter(await loadMaskingEngine())]);
  client = newNetworkExtProcClient(`127.0.0.1:${toy.svc.grpcPort}`);
});
after(async () => {
  client.close();
  await toy.close();
});

/** One TCP connection as Envoy's network ext_proc filter presents it: chunks in, answers out, per direction. */
function connection(target: string) {
  const md = new grpc.Metadata();
  md.add('x-portcullis-target', target);
  const call = (
    client as unknown as { Process(md: grpc.Metadata): grpc.ClientDuplexStream<object, NetworkProcessingResponse> }
  ).Process(md);
  const waiting: Record<'read' | 'write', ((r: NetworkProcessingResponse) => void)[]> = { read: [], write: [] };
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  call.on('data', (r: NetworkProcessingResponse) => {
    const dir = r.read_data ? 'read' : 'write';
    waiting[dir].shift()?.(r);
  });
  const send = (dir: 'read' | 'write', text: string): Promise<string> => {
    const answer = new Promise<NetworkProcessingResponse>((resolve) => waiting[dir].push(resolve));
    call.write(
      dir === 'read' ? { read_data: { data: Buffer.from(text) } } : { write_data: { data: Buffer.from(text) } },
    );
    return answer.then((r) => Buffer.from((dir === 'read' ? r.read_data : r.write_data)?.data ?? []).toString());
  };
  return { send, ended, close: () => call.end() };
}

test('authenticated once, each command decided and recorded, the token never forwarded, output masked', async () => {
  const token = await toy.token(['shell-1']);
  const c = connection('shell-1');
  // A line split across chunks is decided once it is whole; the AUTH line is consumed, never forwarded.
  assert.equal(await c.send('read', `AUTH ${token}\ncat /etc/mo`), '');
  assert.equal(
    await c.send('read', 'td\nrm -rf /var\n'),
    'cat /etc/motd\nfail Deleting files is not allowed for agents.\n',
  );
  assert.equal(
    await c.send('write', 'welcome, write to ops@example.com\nerror: Deleting'),
    'welcome, write to [REDACTED:EMAIL_ADDRESS]\n',
  );
  assert.equal(
    await c.send('write', ' files is not allowed for agents.\n'),
    'error: Deleting files is not allowed for agents.\n',
  );
  c.close();
  assert.equal((await c.ended).code, grpc.status.OK);

  // The session index is written by the recorder too: what it has queued goes to Redis before the listing reads it.
  await toy.svc.core.recorder.flush();
  const sessionId = (await toy.svc.call(toy.svc.adminToken, 'GET', '/v1/sessions?agent=toy-agent')).body.sessions.find(
    (s: { target: string }) => s.target === 'shell-1',
  ).id;
  const events = await toy.events(sessionId);
  assert.deepEqual(
    events.map((e) => e.type),
    ['session.start', 'action', 'decision', 'action', 'decision', 'output', 'output'],
  );
  assert.deepEqual(
    events.filter((e) => e.type === 'decision').map((e) => [e.data.action, e.data.rule]),
    [
      ['allow', 'read-only'],
      ['deny', 'no-rm'],
    ],
  );
  assert.equal(
    events[5].data.text,
    'welcome, write to [REDACTED:EMAIL_ADDRESS]',
    'the recording holds the masked output',
  );
  assert.ok(!JSON.stringify(events).includes(token) && !JSON.stringify(events).includes('ops@example.com'));
});

test('a bad token: the server itself reports the refusal and nothing of the session is decided', async () => {
  const c = connection('shell-1');
  assert.match(
    await c.send('read', 'AUTH not-a-token\nwhoami\n'),
    /^fail the bearer token is not a Portcullis agent token\nfail /,
  );
  c.close();
});

test('a command that needs approval is held, and runs once a human approves it during the hold', async () => {
  const token = await toy.token(['shell-1']);
  const c = connection('shell-1');
  assert.equal(await c.send('read', `AUTH ${token}\n`), '');
  const held = c.send('read', 'systemctl restart nginx\n');
  const pending = await waitFor(
    async (): Promise<{ id: string } | undefined> => {
      const list = (await toy.svc.call(toy.approverToken, 'GET', '/v1/approvals?state=pending')).body.items as {
        id: string;
        summary: string;
      }[];
      return list.find((a) => a.summary === 'systemctl restart nginx');
    },
    HANG_GUARD_MS,
    'the pending approval',
  );
  assert.ok(pending);
  assert.equal((await toy.svc.call(toy.approverToken, 'POST', `/v1/approvals/${pending.id}/approve`, {})).status, 200);
  assert.equal(await held, 'systemctl restart nginx\n');
  c.close();
});

test('through the network ext_proc stand-in with a real TCP client and upstream: decided, rewritten, masked', async (t) => {
  // The toy upstream: answers each line; `fail <message>` (the adapter's rewrite of a refused command) as an error.
  const upstream = createServer((s) => {
    let pending = '';
    s.on('data', (c: Buffer) => {
      pending += c.toString('utf8');
      for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        s.write(line.startsWith('fail ') ? `error: ${line.slice(5)}\n` : `ran ${line}; mail ops@example.com\n`);
      }
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const standIn = await startNetworkStandIn({
    processorAddress: `127.0.0.1:${toy.svc.grpcPort}`,
    upstream: { host: '127.0.0.1', port: (upstream.address() as AddressInfo).port },
    overrides: { initialMetadata: [['x-portcullis-target', 'shell-1']] },
  });
  t.after(async () => {
    await standIn.close();
    await new Promise((resolve) => upstream.close(resolve));
  });
  const token = await toy.token(['shell-1']);
  const client = connect(standIn.port, '127.0.0.1');
  let received = '';
  const lines = (n: number): Promise<string[]> =>
    new Promise((resolve) => {
      const check = (): void => {
        const all = received.split('\n').filter((l) => l !== '');
        if (all.length >= n) {
          client.off('data', onData);
          resolve(all);
        }
      };
      const onData = (c: Buffer): void => {
        received += c.toString('utf8');
        check();
      };
      client.on('data', onData);
      check();
    });
  client.write(`AUTH ${token}\nwhoami\nrm -rf /srv\n`);
  assert.deepEqual(await lines(2), [
    'ran whoami; mail [REDACTED:EMAIL_ADDRESS]',
    'error: Deleting files is not allowed for agents.',
  ]);
  client.end();
});
