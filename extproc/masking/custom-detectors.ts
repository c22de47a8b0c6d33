/**
 * Custom detectors (Node only): regular expressions and word lists from policies. They run on decoded text; the
 * engine maps their UTF-16 offsets back to byte offsets (`utf8Text`) so their spans join the wasm core's spans.
 *
 * A policy author's regular expression runs on RE2 (re2js): time linear in the text whatever the pattern, so a
 * pattern such as `(a+)+$` cannot stall the process on hostile data. Syntax RE2 cannot run in linear time
 * (backreferences, lookahead, lookbehind) is refused when the policy is loaded. Word lists are escaped literals built
 * here, so they stay on JavaScript's engine (they need its lookbehind for whole-word matching).
 */
import { RE2JS } from 're2js';
import type { CustomDetector } from './types.ts';

/** Finds [start, end) UTF-16 ranges in a text, in order, not overlapping, never empty. */
export type CustomMatcher = (text: string) => [number, number][];

export function findCustom(d: CustomDetector): CustomMatcher {
  if (d.kind === 'regex') return re2Matcher(compileRe2(d.pattern, d.flags ?? ''));
  const re = wordsRegex(d.words, d.caseSensitive ?? false);
  return (text) => {
    const out: [number, number][] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      out.push([m.index, m.index + m[0].length]);
    }
    return out;
  };
}

/** i, m and s as in JavaScript; u changes nothing (RE2 always reads code points). */
const RE2_FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

/**
 * Compiles a policy author's pattern for RE2. Throws with a message that says why when RE2 refuses it (most often a
 * backreference or lookaround, which would need backtracking).
 */
export function compileRe2(pattern: string, flags = '', opts: { allowEmpty?: boolean } = {}): RE2JS {
  let re: RE2JS;
  try {
    re = RE2JS.compile(
      pattern,
      [...flags].reduce((f, c) => f | (RE2_FLAGS[c] ?? 0), 0),
    );
  } catch (err) {
    throw new Error(
      `invalid regular expression: ${(err as Error).message} (patterns run on RE2: no backreferences, lookahead or lookbehind)`,
    );
  }
  if (!opts.allowEmpty && re.matcher('').find()) throw new Error('the pattern matches the empty string');
  return re;
}

function re2Matcher(re: RE2JS): CustomMatcher {
  return (text) => {
    const out: [number, number][] = [];
    const m = re.matcher(text);
    while (m.find()) {
      const start = m.start();
      const end = m.end();
      if (end > start) out.push([start, end]);
    }
    return out;
  };
}

function wordsRegex(words: readonly string[], caseSensitive: boolean): RegExp {
  const alternatives = [...new Set(words.map((w) => w.trim()))]
    .sort((a, b) => b.length - a.length)
    .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // Whole words only: no letter, digit or underscore on either side.
  return new RegExp(
    `(?<![\\p{L}\\p{N}_])(?:${alternatives.join('|')})(?![\\p{L}\\p{N}_])`,
    caseSensitive ? 'gu' : 'giu',
  );
}

/**
 * Decodes UTF-8 and keeps, for each UTF-16 unit, the byte offset it came from (plus one entry for the end), so a
 * match on the text is a byte span. Invalid bytes decode to U+FFFD one byte each, which keeps offsets exact.
 */
export function utf8Text(bytes: Uint8Array): { text: string; offsets: Uint32Array } {
  const offsets = new Uint32Array(bytes.length + 1);
  const units: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let cp = 0xfffd;
    let n = 1;
    if (b < 0x80) {
      cp = b;
    } else if (b >= 0xc2 && b < 0xe0 && cont(bytes, i + 1)) {
      cp = ((b & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
      n = 2;
    } else if (b >= 0xe0 && b < 0xf0 && cont(bytes, i + 1) && cont(bytes, i + 2)) {
      cp = ((b & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      n = 3;
      if (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)) {
        cp = 0xfffd;
        n = 1;
      }
    } else if (b >= 0xf0 && b < 0xf5 && cont(bytes, i + 1) && cont(bytes, i + 2) && cont(bytes, i + 3)) {
      cp = ((b & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f);
      n = 4;
      if (cp < 0x10000 || cp > 0x10ffff) {
        cp = 0xfffd;
        n = 1;
      }
    }
    if (cp >= 0x10000) {
      offsets[units.length] = i;
      units.push(0xd800 + ((cp - 0x10000) >> 10));
      offsets[units.length] = i;
      units.push(0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else {
      offsets[units.length] = i;
      units.push(cp);
    }
    i += n;
  }
  offsets[units.length] = bytes.length;
  let text = '';
  for (let k = 0; k < units.length; k += 8192) text += String.fromCharCode(...units.slice(k, k + 8192));
  return { text, offsets: offsets.subarray(0, units.length + 1) };
}

function cont(bytes: Uint8Array, i: number): boolean {
  return i < bytes.length && (bytes[i] & 0xc0) === 0x80;
}
