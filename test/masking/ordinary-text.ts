/**
 * Ordinary text with nothing to mask, generated reproducibly from a seed: application logs, English prose, JSON
 * documents and source code (TypeScript, Python, C++, SQL, shell), in about equal parts. It is full of what trips
 * detectors up — timestamps, versions, UUIDs, git hashes, durations, ports, prices, words such as "password",
 * "passport", "routing" and "bearer" in prose, `::` in C++, `key: value` pairs — but holds no value a detector should
 * report: digit runs are at most 8 digits, or 19-digit ids starting with 1 (like snowflake ids), hex ids hold a
 * letter, and hosts are names, not addresses.
 */

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the a an of to in for on with by from at as is was are be been being have has had do does did will would can '
  + 'could should may might must shall request response server client user agent policy engine database table row '
  + 'column index query plan cache session token key value password passport routing bearer authorization account '
  + 'number phone address email card bank transfer payment invoice order customer report summary meeting schedule '
  + 'project release version deploy rollback cluster node pod container service network latency throughput error '
  + 'warning info debug timeout retry backoff queue worker thread process memory disk file path config setting '
  + 'feature flag test build pipeline review approve merge branch commit push pull secret credential access '
  + 'permission role group team owner admin operator security audit log record event metric alert incident'
).split(' ');
const NAMES = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Peggy'];
const HOSTS = ['api', 'db-primary', 'cache-1', 'worker-7', 'gateway', 'auth', 'search', 'billing', 'ingest'];
const LEVELS = ['INFO', 'WARN', 'DEBUG', 'ERROR', 'TRACE'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

export function ordinaryText(seed: number): () => string {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (max: number): number => Math.floor(r() * max);
  // Hex ids hold at least one letter: an all-digit 16-digit id that passes Luhn with a card issuer's prefix cannot
  // be told from a card number, and is reported as one.
  const hex = (n: number): string => {
    const h = Array.from({ length: n }, () => '0123456789abcdef'[int(16)]);
    h[int(n)] = 'abcdef'[int(6)];
    return h.join('');
  };
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  const date = (): string => `20${pad(20 + int(7), 2)}-${pad(1 + int(12), 2)}-${pad(1 + int(28), 2)}`;
  const time = (): string => `${pad(int(24), 2)}:${pad(int(60), 2)}:${pad(int(60), 2)}`;
  const uuid = (): string => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  const snowflake = (): string => `1${String(int(1e9)).padStart(9, '0')}${String(int(1e8)).padStart(8, '0')}`;
  const sentence = (): string => {
    const n = 6 + int(14);
    const w = Array.from({ length: n }, () => pick(WORDS));
    if (r() < 0.3) w.splice(int(n), 0, String(int(10000)));
    if (r() < 0.2) w.splice(int(n), 0, pick(NAMES));
    const s = w.join(' ');
    return `${s[0].toUpperCase()}${s.slice(1)}${pick(['.', '.', '?', '!', ';'])}`;
  };
  const kinds: (() => string)[] = [
    // log lines
    () =>
      `${date()}T${time()}.${pad(int(1000), 3)}Z ${pick(LEVELS)} [${pick(HOSTS)}] ${pick(METHODS)} /api/v${1 + int(3)}/${pick(WORDS)}s/${int(100000)} status=${pick([200, 201, 204, 301, 400, 403, 404, 500])} latency=${int(900)}ms bytes=${int(99999)} trace=${hex(16)} req=${uuid()}\n`,
    () =>
      `${date()} ${time()} ${pick(HOSTS)}.internal:${pick([443, 5432, 6379, 8080, 9090])} ${pick(LEVELS).toLowerCase()}: ${sentence()} (attempt ${1 + int(5)}/5, retry in ${int(30)}s)\n`,
    // prose
    () => `${Array.from({ length: 2 + int(4) }, sentence).join(' ')}\n`,
    () =>
      `${pick(NAMES)} said the ${pick(WORDS)} of ${pick(WORDS)} was ${int(100)}% done by ${date()}, costing $${int(1000)}.${pad(int(100), 2)}; see section ${1 + int(9)}.${1 + int(9)}.${1 + int(9)}.\n`,
    // JSON
    () =>
      `${JSON.stringify({ id: int(1e8), uid: snowflake(), name: `${pick(NAMES)} ${pick(WORDS)}`, price: int(100000) / 100, created: `${date()}T${time()}Z`, tags: [pick(WORDS), pick(WORDS)], ok: r() < 0.5, version: `${int(5)}.${int(30)}.${int(10)}`, ref: uuid(), commit: hex(40) })}\n`,
    () =>
      `{"kind":"${pick(['Pod', 'Deployment', 'Service', 'ConfigMap'])}","apiVersion":"v1","metadata":{"name":"${pick(HOSTS)}-${hex(5)}","namespace":"${pick(['prod', 'dev', 'default'])}","resourceVersion":"${int(1e8)}","labels":{"app":"${pick(HOSTS)}"}},"spec":{"replicas":${int(20)},"ports":[{"containerPort":${pick([80, 443, 8080])}}]}}\n`,
    // source code
    () =>
      `export function ${pick(WORDS)}${pick(NAMES)}(${pick(WORDS)}: number, opts = {}): Promise<${pick(['string', 'void', 'number'])}> {\n  const ${pick(WORDS)} = await fetch(\`/api/\${id}\`, { method: '${pick(METHODS)}' });\n  if (${pick(WORDS)} >= ${int(1000)} && x.${pick(WORDS)} !== null) return ${pick(WORDS)}.map((a) => a * ${int(9)});\n  // TODO(${pick(NAMES).toLowerCase()}): ${sentence()}\n}\n`,
    () =>
      `def ${pick(WORDS)}_${pick(WORDS)}(self, ${pick(WORDS)}=None):\n    """${sentence()}"""\n    for i in range(${int(100)}):\n        self.${pick(WORDS)}[i] = i ** 2 % ${1 + int(97)}\n    return {"${pick(WORDS)}": self.${pick(WORDS)}, "count": len(self.${pick(WORDS)})}\n`,
    () =>
      `std::vector<std::string> ${pick(WORDS)}s;\nfor (auto it = m.begin(); it != m.end(); ++it) { ns::${pick(WORDS)}::apply(*it, 0x${hex(4)}); }\nSELECT id, ${pick(WORDS)}, created_at FROM ${pick(WORDS)}s WHERE ${pick(WORDS)} = $1 AND created_at > now() - interval '${int(30)} days' LIMIT ${int(500)};\n`,
    () =>
      `kubectl -n ${pick(['prod', 'dev'])} rollout restart deployment/${pick(HOSTS)} && echo "done: $?" # ${sentence()}\ncurl -sS -X ${pick(METHODS)} https://${pick(HOSTS)}.example.com/v1/${pick(WORDS)}?page=${int(50)}&limit=${int(100)} | jq '.items[] | .${pick(WORDS)}'\n`,
  ];
  return () => pick(kinds)();
}

/** About `bytes` bytes of ordinary text from `seed`, in pieces of about `piece` bytes. */
export function* ordinaryChunks(seed: number, bytes: number, piece = 1 << 16): Generator<Buffer> {
  const next = ordinaryText(seed);
  let made = 0;
  while (made < bytes) {
    const parts: string[] = [];
    let n = 0;
    while (n < piece) {
      const s = next();
      parts.push(s);
      n += s.length;
    }
    const b = Buffer.from(parts.join(''));
    made += b.length;
    yield b;
  }
}
