/** The engine and plans the masking tests share (one compiled module, a fixed hash key). */
import {
  builtinPlan,
  loadMaskingEngine,
  type CompiledMasking,
  type MaskingEngine,
  type Strategy,
} from '../../extproc/masking/index.ts';

export const HASH_KEY = Buffer.from('test-hash-key');
export const engine: MaskingEngine = await loadMaskingEngine({ hashKey: HASH_KEY });
export const ALL: CompiledMasking = builtinPlan();
export const plan = (strategy: Strategy, keep = 4): CompiledMasking => builtinPlan(undefined, strategy, keep);

export function maskText(text: string, p: CompiledMasking = ALL): string {
  return Buffer.from(engine.maskBytes(Buffer.from(text), p).output).toString();
}

/** Streams the bytes of `text` in the given pieces (byte offsets) and returns the output bytes. */
export function streamPieces(bytes: Uint8Array, cuts: number[], p: CompiledMasking = ALL): Buffer {
  const s = engine.createStream(p);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(s.push(bytes.subarray(from, c)));
    from = c;
  }
  out.push(s.end());
  return Buffer.concat(out);
}
