/**
 * Malformed frames end that connection with an ErrorResponse the client really receives (SQLSTATE 08P01, made by the
 * server and rewritten, since network ext_proc cannot write toward the client on its own), and the service keeps
 * serving other connections. Raw sockets write the bad bytes; a pg client shows the same after a real login.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startPgStack, type PgStack } from './pg-stack.ts';

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

/** Sends `bytes` on a fresh connection; resolves with everything received until the connection closes. */
function exchange(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(s.envoy.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(got)));
    sock.write(bytes);
  });
}

/** The fields of the first ErrorResponse in `bytes`. */
function firstError(bytes: Buffer): Map<string, string> {
  assert.equal(String.fromCharCode(bytes[0]), 'E', `expected an ErrorResponse, got ${bytes.toString('latin1')}`);
  const end = 1 + bytes.readInt32BE(1);
  const fields = new Map<string, string>();
  let at = 5;
  while (at < end && bytes[at] !== 0) {
    const code = String.fromCharCode(bytes[at]);
    const stop = bytes.indexOf(0, at + 1);
    fields.set(code, bytes.toString('utf8', at + 1, stop));
    at = stop + 1;
  }
  return fields;
}

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

async function stillServing(): Promise<void> {
  const r = await s.psql(['-At', '-c', 'SELECT 41 + 1']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), '42');
}

test('a 1 GB startup length ends the connection with FATAL 08P01 naming the limit', async () => {
  const e = firstError(await exchange(Buffer.concat([int32(1 << 30), int32(196608)])));
  assert.equal(e.get('S'), 'FATAL');
  assert.equal(e.get('C'), '08P01');
  assert.match(e.get('M') ?? '', /protocol violation: client message length 1073741824 is over the gateway's limit/);
  await stillServing();
});

test('a truncated startup (a parameter without its terminator) ends the connection with FATAL 08P01', async () => {
  const body = Buffer.concat([int32(196608), Buffer.from('user\0planner')]);
  const e = firstError(await exchange(Buffer.concat([int32(body.length + 4), body])));
  assert.equal(e.get('C'), '08P01');
  assert.match(e.get('M') ?? '', /unterminated string/);
  await stillServing();
});

test('a startup length smaller than the protocol allows is refused', async () => {
  const e = firstError(await exchange(int32(3)));
  assert.equal(e.get('C'), '08P01');
  assert.match(e.get('M') ?? '', /invalid client message length 3/);
  await stillServing();
});

test('after login, a message whose length lies about its fields ends the connection with FATAL 08P01', async () => {
  const c = s.client();
  await c.connect();
  const failed = new Promise<{ code?: string; message: string }>((resolve) => c.once('error', resolve));
  // A Query whose declared length ends before its text's terminator.
  const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
  stream.write(Buffer.concat([Buffer.from('Q'), int32(8), Buffer.from('SELE')]));
  const err = await failed;
  assert.equal(err.code, '08P01');
  assert.match(err.message, /protocol violation: Query: unterminated string/);
  await c.end().catch(() => {});
  await stillServing();
});

test('after login, a 1 GB message length ends the connection with FATAL 08P01', async () => {
  const c = s.client();
  await c.connect();
  const failed = new Promise<{ code?: string; message: string }>((resolve) => c.once('error', resolve));
  const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
  stream.write(Buffer.concat([Buffer.from('Q'), int32(1 << 30)]));
  const err = await failed;
  assert.equal(err.code, '08P01');
  assert.match(err.message, /over the gateway's limit/);
  await c.end().catch(() => {});
  await stillServing();
});

test('a CancelRequest is not forwarded: the connection is closed without an answer', async () => {
  const got = await exchange(Buffer.concat([int32(16), int32(80877102), int32(1234), int32(5678)]));
  assert.equal(got.length, 0);
  await stillServing();
});
