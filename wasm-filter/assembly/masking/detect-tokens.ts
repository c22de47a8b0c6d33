// Service credentials with published shapes: GitHub (with its CRC32 checksum), GitLab, Slack, Stripe and
// OpenAI-style `sk-` API keys. Each starts at a word start with its prefix and runs to the end of its alphabet.
import { byteAt, C_ALNUM, C_DIGIT, C_LOWER, C_UPPER, cls, keywordAt, MATCH, NEED, NONE } from "./bytes";
import { GITHUB_TOKEN, GITLAB_TOKEN, OPENAI_API_KEY, SLACK_TOKEN, STRIPE_KEY } from "./entities";
import { found } from "./found";

const ALNUM: i32 = 0;
/** Letters, digits, '_' and '-' (and '.' for GitLab's routable tokens). */
const URLSAFE: i32 = 1;
const DOTTED: i32 = 2;

function inAlphabet(c: u32, alphabet: i32): bool {
  if ((cls(c) & C_ALNUM) != 0) return true;
  if (alphabet == ALNUM) return false;
  return c == 0x5f || c == 0x2d || (alphabet == DOTTED && c == 0x2e);
}

/** The end of the run of `alphabet` bytes from j (at most 512); -1 when the data ends inside it. */
function runEnd(p: usize, len: i32, j: i32, alphabet: i32, final: bool): i32 {
  let e = j;
  while (e < len && e - j < 512 && inAlphabet(byteAt(p, e), alphabet)) e++;
  if (e >= len && !final) return -1;
  return e;
}

/** A prefix (exact case) at i; MATCH, NONE, or NEED when the data ends inside it. */
function prefix(p: usize, len: i32, i: i32, text: string, final: bool): i32 {
  for (let k = 0; k < text.length; k++) {
    if (i + k >= len) return final ? NONE : NEED;
    if (byteAt(p, i + k) != <u32>text.charCodeAt(k)) return NONE;
  }
  return MATCH;
}

// ---------------------------------------------------------------- GITHUB_TOKEN

const CRC_TABLE: usize = memory.data(1024);
for (let n: u32 = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320 ^ (c >> 1) : c >> 1;
  store<u32>(CRC_TABLE + (<usize>n << 2), c);
}

function crc32(p: usize, s: i32, e: i32): u32 {
  let crc: u32 = 0xffffffff;
  for (let k = s; k < e; k++) crc = (crc >> 8) ^ load<u32>(CRC_TABLE + (<usize>((crc ^ byteAt(p, k)) & 0xff) << 2));
  return crc ^ 0xffffffff;
}

function base62(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  if (c - 0x41 < 26) return <i32>(c - 0x41) + 10;
  return <i32>(c - 0x61) + 36;
}

/**
 * `ghp_` (personal), `gho_` (OAuth), `ghu_` (user-to-server), `ghs_` (server-to-server), `ghr_` (refresh): 30
 * random base62 characters and 6 more that are the base62 CRC32 of those 30, as GitHub published in 2021.
 * `github_pat_` (fine-grained): 22 characters, '_', 59 characters; GitHub has not published its checksum.
 */
export function detectGithub(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i + 1 < len && byteAt(p, i + 1) == 0x69) {
    const r = prefix(p, len, i, "github_pat_", final);
    if (r != MATCH) return r;
    const e = runEnd(p, len, i + 11, URLSAFE, final);
    if (e < 0) return NEED;
    if (e - i - 11 != 82 || byteAt(p, i + 33) != 0x5f) return NONE;
    found(i, e, GITHUB_TOKEN);
    return MATCH;
  }
  if (i + 3 >= len) return final ? NONE : NEED;
  const t = byteAt(p, i + 2);
  if (byteAt(p, i + 1) != 0x68 || byteAt(p, i + 3) != 0x5f) return NONE;
  if (t != 0x70 && t != 0x6f && t != 0x75 && t != 0x73 && t != 0x72) return NONE;
  const e = runEnd(p, len, i + 4, ALNUM, final);
  if (e < 0) return NEED;
  if (e - i - 4 != 36 || (e < len && byteAt(p, e) == 0x5f)) return NONE;
  let sum: u64 = 0;
  for (let k = e - 6; k < e; k++) sum = sum * 62 + <u64>base62(byteAt(p, k));
  if (sum != <u64>crc32(p, i + 4, e - 6)) return NONE;
  found(i, e, GITHUB_TOKEN);
  return MATCH;
}

// ---------------------------------------------------------------- GITLAB_TOKEN

/**
 * GitLab's prefixed tokens (personal `glpat-`, deploy `gldt-`, runner `glrt-`, pipeline trigger `glptt-`, CI job
 * `glcbt-`, feed `glft-`, OAuth secret `gloas-`, service account `glsoat-`): at least 20 characters of
 * letters, digits, '_' and '-' after the prefix (routable tokens add '.'-separated parts).
 */
export function detectGitlab(p: usize, len: i32, i: i32, final: bool): i32 {
  let j = i;
  while (j < len && j - i < 8 && (cls(byteAt(p, j)) & C_LOWER) != 0) j++;
  if (j >= len) return final ? NONE : NEED;
  if (byteAt(p, j) != 0x2d) return NONE;
  const n = j - i;
  const ok = n == 5 && (keywordAt(p, len, i, "glpat", true) == MATCH || keywordAt(p, len, i, "glptt", true) == MATCH ||
      keywordAt(p, len, i, "glcbt", true) == MATCH || keywordAt(p, len, i, "gloas", true) == MATCH) ||
    n == 4 && (keywordAt(p, len, i, "gldt", true) == MATCH || keywordAt(p, len, i, "glrt", true) == MATCH ||
      keywordAt(p, len, i, "glft", true) == MATCH) ||
    n == 6 && keywordAt(p, len, i, "glsoat", true) == MATCH;
  if (!ok) return NONE;
  let e = runEnd(p, len, j + 1, DOTTED, final);
  if (e < 0) return NEED;
  while (e > j + 1 && byteAt(p, e - 1) == 0x2e) e--;
  if (e - j - 1 < 20) return NONE;
  found(i, e, GITLAB_TOKEN);
  return MATCH;
}

// ---------------------------------------------------------------- SLACK_TOKEN

/** `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-` tokens and `xapp-` app tokens: ≥ 10 characters after. */
export function detectSlack(p: usize, len: i32, i: i32, final: bool): i32 {
  if (i + 4 >= len) return final ? NONE : NEED;
  const b = byteAt(p, i + 1);
  const t = byteAt(p, i + 3);
  let ok = false;
  if (b == 0x6f) {
    ok = byteAt(p, i + 2) == 0x78 && (t == 0x62 || t == 0x70 || t == 0x61 || t == 0x72 || t == 0x73 || t == 0x65);
  } else {
    ok = keywordAt(p, len, i, "xapp", true) == MATCH;
  }
  if (!ok || byteAt(p, i + 4) != 0x2d) return NONE;
  const e = runEnd(p, len, i + 5, URLSAFE, final);
  if (e < 0) return NEED;
  if (e - i - 5 < 10) return NONE;
  found(i, e, SLACK_TOKEN);
  return MATCH;
}

// ---------------------------------------------------------------- STRIPE_KEY, OPENAI_API_KEY

/**
 * Stripe secret and restricted keys `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_` (≥ 24 letters and digits after)
 * and webhook secrets `whsec_` (≥ 32). Publishable keys (`pk_`) are public by design and left alone.
 */
export function detectStripe(p: usize, len: i32, i: i32, final: bool): i32 {
  let j = -1;
  let least = 24;
  const c = byteAt(p, i);
  if (c == 0x77) {
    const r = prefix(p, len, i, "whsec_", final);
    if (r != MATCH) return r;
    j = i + 6;
    least = 32;
  } else {
    if (i + 3 >= len) return final ? NONE : NEED;
    if (byteAt(p, i + 1) != 0x6b || byteAt(p, i + 2) != 0x5f) return NONE;
    let r = prefix(p, len, i + 3, "live_", final);
    if (r == NONE) r = prefix(p, len, i + 3, "test_", final);
    if (r != MATCH) return r;
    j = i + 8;
  }
  const e = runEnd(p, len, j, ALNUM, final);
  if (e < 0) return NEED;
  if (e - j < least || (e < len && (byteAt(p, e) == 0x5f || byteAt(p, e) == 0x2d))) return NONE;
  found(i, e, STRIPE_KEY);
  return MATCH;
}

/**
 * OpenAI-style API keys: `sk-` then at least 20 letters, digits, '_' or '-' with both letters and digits
 * (`sk-proj-…`, `sk-svcacct-…`, legacy `sk-…T3BlbkFJ…`, and providers that copied the shape, e.g. `sk-ant-…`).
 */
export function detectSkKey(p: usize, len: i32, i: i32, final: bool): i32 {
  const r = prefix(p, len, i, "sk-", final);
  if (r != MATCH) return r;
  const e = runEnd(p, len, i + 3, URLSAFE, final);
  if (e < 0) return NEED;
  if (e - i - 3 < 20) return NONE;
  let digits = false;
  let letters = false;
  for (let k = i + 3; k < e; k++) {
    const k2 = cls(byteAt(p, k));
    if ((k2 & C_DIGIT) != 0) digits = true;
    if ((k2 & (C_UPPER | C_LOWER)) != 0) letters = true;
  }
  if (!digits || !letters) return NONE;
  found(i, e, OPENAI_API_KEY);
  return MATCH;
}
