/**
 * The core runs inside Envoy's VM, where a trap kills the VM: it must import nothing and never trap, whatever the
 * bytes and whatever the arguments of its exported functions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { WASM_PATH } from '../../extproc/masking/index.ts';
import { engine, plan } from './engine.ts';
import { seededRandom } from '../harness/seeded-random.ts';

const module = new WebAssembly.Module(readFileSync(WASM_PATH));

test('the module imports nothing (no abort, no WASI, no host calls)', () => {
  assert.deepEqual(WebAssembly.Module.imports(module), []);
});

test('random bytes of every value, every strategy, whole and streamed: no trap', () => {
  const r = seededRandom(1);
  const alphabet = Buffer.from(
    '0123456789 -+().@:="\'\\\n\teyJAKIASPBbpa-----BEGIN PRIVATE KEY-----Bearer password=DE89GB82'
      + 'ghp_github_pat_glpat-xoxb-xapp-sk_live_rk_test_whsec_sk-bc1qBC1P0x1/3://thin:@::ffff:xn--passport routing ABA',
  );
  for (const strategy of ['redact', 'mask', 'partial', 'hash'] as const) {
    const p = plan(strategy, 3);
    for (let round = 0; round < 60; round++) {
      const n = Math.floor(r() * 3000);
      const bytes = Buffer.alloc(n);
      const skewed = r() < 0.5;
      for (let k = 0; k < n; k++)
        bytes[k] = skewed ? alphabet[Math.floor(r() * alphabet.length)] : Math.floor(r() * 256);
      engine.maskBytes(bytes, p);
      const s = engine.createStream(p);
      let from = 0;
      while (from < n) {
        const size = 1 + Math.floor(r() * 700);
        s.push(bytes.subarray(from, from + size));
        from += size;
      }
      s.end();
    }
  }
});

test('hostile arguments to the exported functions: refused with -1 or 0, never a trap', () => {
  const x = new WebAssembly.Instance(module, {}).exports as Record<string, (...a: number[]) => number>;
  const calls: [string, number[]][] = [
    ['scan', [10, 0xffffffff, 1]], // before any reserve
    ['apply', []],
    ['reserve', [-1]],
    ['reserve', [2 ** 31 - 1]],
    ['reserve', [2 ** 29]],
    ['reserve', [100]],
    ['scan', [-5, 0xffffffff, 0]],
    ['scan', [1 << 30, 0xffffffff, 0]],
    ['scan', [100, 0xffffffff, 7]],
    ['setSpans', [-1, 0]],
    ['setSpans', [1 << 30, 0]],
    ['setSpans', [0, 1 << 30]],
    ['setSpans', [0, -3]],
    ['reserveSpans', [-1]],
    ['reserveSpans', [1 << 30]],
    ['setStrategy', [64, 0, 0]],
    ['setStrategy', [-1, 0, 0]],
    ['setStrategy', [3, 9, 0]],
    ['setStrategy', [3, 2, 100000]],
    ['setName', [70, 3]],
    ['setName', [3, -1]],
    ['setName', [3, 1 << 30]],
    ['setHashKey', [-1]],
    ['setHashKey', [1 << 30]],
    ['apply', []],
    ['reset', []],
    ['apply', []],
  ];
  for (const [name, args] of calls) assert.doesNotThrow(() => x[name](...args), `${name}(${args})`);
  // Garbage spans written by a host: out of order, overlapping, past the cut, bad entities — skipped, not trusted.
  const mem = () => new Uint8Array((x.memory as unknown as WebAssembly.Memory).buffer);
  const p = x.reserve(64);
  mem().fill(0x41, p, p + 64);
  assert.ok(x.scan(64, 0, 1) >= 0);
  const sp = x.reserveSpans(6);
  const spans = new Int32Array((x.memory as unknown as WebAssembly.Memory).buffer, sp, 18);
  spans.set([10, 5, 1, 20, 30, 999, -4, 8, 2, 25, 40, 3, 30, 100, 0, 0, 2 ** 31 - 1, 1]);
  assert.equal(x.setSpans(6, 64), 0);
  const n = x.apply();
  assert.ok(n >= 0);
});
