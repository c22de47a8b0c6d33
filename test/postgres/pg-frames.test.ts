/** The frame reader: whole messages only, whatever the chunking; strict lengths checked before buffering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PgFrameError, PgFrameReader } from '../../extproc/postgres/pg-frames.ts';
import { cstr, message, startupMessage } from '../../extproc/postgres/pg-wire.ts';

/** A client's first bytes, pipelined: startup, then a Query, Parse, Bind, Execute and Sync in one stream. */
const STREAM = Buffer.concat([
  startupMessage([
    ['user', 'planner-1'],
    ['database', 'pg-app'],
  ]),
  message('Q', cstr('SELECT 1; SELECT 2')),
  message('P', cstr(''), cstr('SELECT $1::int'), Buffer.from([0, 0])),
  message('B', cstr(''), cstr(''), Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x37, 0, 0])),
  message('E', cstr(''), Buffer.alloc(4)),
  message('S'),
]);

const types = (frames: { type: string }[]): string => frames.map((f) => f.type || '∅').join('');

test('every split point, and one byte at a time, yields the same whole messages', () => {
  const whole = new PgFrameReader('client', 1 << 20, 'untyped').push(STREAM);
  assert.equal(types(whole), '∅QPBES');
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const r = new PgFrameReader('client', 1 << 20, 'untyped');
    const frames = [...r.push(STREAM.subarray(0, cut)), ...r.push(STREAM.subarray(cut))];
    assert.deepEqual(
      frames.map((f) => f.raw),
      whole.map((f) => f.raw),
      `split at ${cut}`,
    );
    assert.equal(r.buffered, 0);
  }
  const r = new PgFrameReader('client', 1 << 20, 'untyped');
  const bytewise = [...STREAM].flatMap((b) => r.push(Buffer.from([b])));
  assert.equal(types(bytewise), '∅QPBES');
  assert.equal(Buffer.concat(bytewise.map((f) => f.raw)).equals(STREAM), true);
});

test('a declared length over the cap is refused from its header alone', () => {
  const r = new PgFrameReader('client', 1024, 'typed');
  const header = Buffer.from([0x51, 0x40, 0, 0, 0]); // 'Q', 1 GB
  assert.throws(
    () => r.push(header),
    (e: Error) => e instanceof PgFrameError && /over the gateway's limit/.test(e.message),
  );
  assert.equal(r.buffered, 5, 'nothing but the header was taken in');
});

test('lengths below the protocol minimum are refused', () => {
  assert.throws(() => new PgFrameReader('client', 1024, 'typed').push(Buffer.from([0x51, 0, 0, 0, 3])), PgFrameError);
  assert.throws(() => new PgFrameReader('client', 1024, 'untyped').push(Buffer.from([0, 0, 0, 7])), PgFrameError);
  assert.throws(
    () => new PgFrameReader('client', 1 << 30, 'untyped').push(Buffer.from([0, 0, 0x27, 0x11])),
    /over the gateway's limit of 10000 bytes/,
  );
});

test('the single-byte answer to SSLRequest is one frame, then typed messages follow', () => {
  const r = new PgFrameReader('server', 1024, 'single-byte');
  const frames = r.push(Buffer.concat([Buffer.from('N'), message('R', Buffer.from([0, 0, 0, 0]))]));
  assert.equal(types(frames), 'NR');
});
