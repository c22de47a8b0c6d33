/**
 * A 1,000,000-row SELECT streams through the processor with bounded memory: every row is checked by the masking
 * (content detectors on, a card number in each row), and the live heap of this process (the service with the
 * processor, and the Envoy stand-in) is sampled after a full collection throughout. The figures are printed; the
 * assertion is on what the processor itself holds between chunks — the bytes of an incomplete message in its frame
 * readers — which stays under one row's size plus a chunk, whatever the result's size. The process heap also holds
 * the chunks in flight between the stand-in (which, like Envoy, drains and sends every chunk without waiting), gRPC
 * and the processor; that part depends on the machine's speed, so it is printed, not asserted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PgFrameReader } from '../../extproc/postgres/pg-frames.ts';
import { startPgStack, type PgStack } from './pg-stack.ts';

const ROWS = Number(process.env.PG_LARGE_ROWS ?? 1_000_000);

/** A full garbage collection, so that what is sampled is what the process holds, not what it has yet to collect. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let s: PgStack;

before(async () => {
  s = await startPgStack({ policies: ['examples/policies/postgres-guardrails.yaml'] });
});
after(async () => {
  await s?.close();
});

test('a 1,000,000-row result streams with bounded memory, every row masked', { timeout: 600_000 }, async () => {
  // The largest number of bytes any frame reader held after a chunk (an incomplete message waiting for the rest).
  let held = 0;
  const push = PgFrameReader.prototype.push;
  PgFrameReader.prototype.push = function (this: PgFrameReader, chunk: Buffer) {
    const frames = push.call(this, chunk);
    held = Math.max(held, this.buffered);
    return frames;
  };
  gc();
  const base = process.memoryUsage();
  let peakHeap = base.heapUsed;
  let peakRss = base.rss;
  let samples = 0;
  const sampler = setInterval(() => {
    gc();
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
    samples++;
  }, 1000);
  const started = Date.now();
  // psql keeps the whole result in its own process; the count of masked card numbers comes back on stdout.
  const r = await s.psql([
    '-At',
    '-c',
    `SELECT g, 'card 4111111111111111 of order ' || g FROM generate_series(1, ${ROWS}) g`,
  ]);
  clearInterval(sampler);
  PgFrameReader.prototype.push = push;
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.equal(lines.length, ROWS);
  assert.equal(lines[ROWS - 1], `${ROWS}|card ************1111 of order ${ROWS}`);
  assert.ok(!r.out.includes('4111111111111111'));
  const resultBytes = Buffer.byteLength(r.out);
  const heapGrowth = peakHeap - base.heapUsed;
  console.log(
    `${ROWS} rows (${(resultBytes / 1e6).toFixed(1)} MB as text) in ${((Date.now() - started) / 1000).toFixed(1)} s; `
      + `live heap: base ${(base.heapUsed / 1e6).toFixed(1)} MB, peak growth ${(heapGrowth / 1e6).toFixed(1)} MB `
      + `(${samples} samples); `
      + `process RSS peak growth ${((peakRss - base.rss) / 1e6).toFixed(1)} MB; `
      + `most bytes a frame reader held: ${held}`,
  );
  assert.ok(samples > 0);
  // A row here is under 100 bytes and a chunk at most 64 KiB (a socket read): the processor keeps no rows.
  assert.ok(held > 0, 'the readers were measured');
  assert.ok(held < 128 * 1024, `a frame reader held ${held} bytes`);
});
