import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

// The layering of docs/architecture.md, checked on every import in extproc/. From the top: cli → service (the
// composition root) → adapters (kube, postgres, ssh) → streams (the generic Envoy loops) → spine → core concerns →
// masking, common. Data flows one way, wire formats stop at the adapters and the loops, and an adapter sees the core
// only through the spine's public face.
const CORE = ['policy', 'identity', 'approvals', 'recording', 'masking'];
const ADAPTERS = ['kube', 'postgres', 'ssh'];
const WIRE_PACKAGES = [/^@grpc\//, /^ssh2$/, /^pg-protocol$/, /^libpg-query$/, /^protobufjs/];

function files(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Import {
  file: string;
  spec: string;
  /** The repo-relative path a relative import resolves to; null for a package. */
  path: string | null;
}

function imports(file: string): Import[] {
  const src = readFileSync(file, 'utf8');
  const specs = [
    ...src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] ?? m[2]);
  return specs.map((spec) => ({
    file,
    spec,
    path: spec.startsWith('.') ? relative('.', resolve(dirname(file), spec)) : null,
  }));
}

/** The concern (top folder under extproc/) a repo path belongs to, or '' outside extproc/. */
function concernOf(path: string): string {
  return path.startsWith('extproc/') ? path.split('/')[1] : '';
}

function importsOf(concerns: string[]): Import[] {
  return concerns.flatMap((c) => files(join('extproc', c)).flatMap(imports));
}

const show = (i: Import): string => `${i.file} imports ${i.spec}`;

test('core concerns import no spine, loop, adapter, service or wire-format package', () => {
  const problems = importsOf(CORE).filter((i) =>
    i.path === null
      ? WIRE_PACKAGES.some((re) => re.test(i.spec))
      : ['spine', 'streams', ...ADAPTERS, 'envoy-api', 'service', 'cli', 'admin-client'].includes(concernOf(i.path)),
  );
  assert.deepEqual(problems.map(show), []);
});

test('the spine imports only core concerns and common/: no loop, adapter, Envoy API or wire package', () => {
  const problems = importsOf(['spine']).filter((i) =>
    i.path === null
      ? WIRE_PACKAGES.some((re) => re.test(i.spec))
      : !['spine', 'common', ...CORE].includes(concernOf(i.path)),
  );
  assert.deepEqual(problems.map(show), []);
});

test("the stream loops import only the spine's public face, the Envoy API and common/", () => {
  const problems = importsOf(['streams']).filter(
    (i) =>
      i.path !== null
      && !['streams', 'envoy-api', 'common'].includes(concernOf(i.path))
      && i.path !== 'extproc/spine/index.ts',
  );
  assert.deepEqual(problems.map(show), []);
});

test("adapters translate only: they import the spine's and the loops' public faces, the masking engine, the Envoy API and common/, never each other", () => {
  const allowedFaces = ['extproc/spine/index.ts', 'extproc/streams/index.ts', 'extproc/masking/index.ts'];
  const problems: Import[] = [];
  for (const adapter of ADAPTERS) {
    for (const i of importsOf([adapter])) {
      if (i.path === null) continue;
      const concern = concernOf(i.path);
      if (concern === adapter || concern === 'envoy-api' || concern === 'common') continue;
      if (!allowedFaces.includes(i.path)) problems.push(i);
    }
  }
  assert.deepEqual(problems.map(show), []);
});

test('nothing below the composition root imports it (only the CLI starts the service)', () => {
  const below = ['spine', 'streams', ...ADAPTERS, ...CORE, 'envoy-api', 'common', 'admin'];
  const problems = importsOf(below).filter((i) => i.path !== null && ['service', 'cli'].includes(concernOf(i.path)));
  assert.deepEqual(problems.map(show), []);
});

test('product code never imports test code (the demo command is the one documented exception)', () => {
  const problems = files('extproc')
    .filter((f) => f !== join('extproc', 'cli', 'commands', 'demo.ts'))
    .flatMap(imports)
    .filter((i) => i.path?.startsWith('test/'));
  assert.deepEqual(problems.map(show), []);
});

test('the rules above see real imports (a rule that matches nothing checks nothing)', () => {
  const kube = importsOf(['kube']).map((i) => i.path);
  assert.ok(kube.includes('extproc/spine/index.ts') && kube.includes('extproc/streams/index.ts'));
  assert.ok(importsOf(['spine']).some((i) => concernOf(i.path ?? '') === 'policy'));
  assert.ok(importsOf(['streams']).some((i) => i.spec === '@grpc/grpc-js'));
});
