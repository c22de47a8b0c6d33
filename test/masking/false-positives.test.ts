import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL, engine } from './engine.ts';
import { ordinaryChunks } from './ordinary-text.ts';

/** The suite scans 8 MiB; `bench/masking.bench.ts` scans 200 MiB of the same generator (other seeds). */
const SUITE_BYTES = 8 * 1024 * 1024;

test(`no false positives in ${SUITE_BYTES >> 20} MiB of ordinary logs, prose, JSON and source code (every detector on)`, () => {
  const stream = engine.createStream(ALL);
  let bytes = 0;
  for (const chunk of ordinaryChunks(1, SUITE_BYTES)) {
    const out = stream.push(chunk);
    bytes += out.length;
    if (stream.findings().length > 0) {
      const text = chunk.toString();
      const found = engine.maskText(text, ALL);
      const line = found.value.split('\n').find((l) => l.includes('[REDACTED:'));
      assert.fail(`found ${JSON.stringify(stream.findings())} in ordinary text, e.g. ${line}`);
    }
  }
  bytes += stream.end().length;
  assert.deepEqual(stream.findings(), []);
  assert.ok(bytes >= SUITE_BYTES);
});
