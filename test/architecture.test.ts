import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { test } from 'node:test';

// The dependency rules of ARCHITECTURE.md and STYLE.md, checked on every import in extproc/:
// data flows one way, from the protocol adapters to the core, and wire formats stop at the adapters.
const CORE = ['policy', 'masking', 'approvals', 'recording'];
const ADAPTERS = ['kube', 'postgres', 'ssh'];
const WIRE_PACKAGES = [/^@grpc\//, /^ssh2$/, /^pg-protocol$/, /^libpg-query$/, /^protobufjs/];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
}

function concernOf(path: string): string {
  return relative('extproc', path).split('/')[0];
}

test('core concerns import no adapter, no service wiring and no wire-format package', () => {
  const problems: string[] = [];
  for (const concern of CORE) {
    for (const file of files(join('extproc', concern))) {
      for (const spec of imports(file)) {
        if (spec.startsWith('.')) {
          const target = concernOf(relative('.', resolve(dirname(file), spec)));
          if ([...ADAPTERS, 'envoy-api', 'service', 'cli'].includes(target)) problems.push(`${file} imports ${spec}`);
        } else if (WIRE_PACKAGES.some((re) => re.test(spec))) {
          problems.push(`${file} imports ${spec}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('protocol adapters do not import each other', () => {
  const problems: string[] = [];
  for (const adapter of ADAPTERS) {
    let list: string[];
    try { list = files(join('extproc', adapter)); } catch { continue; }
    for (const file of list) {
      for (const spec of imports(file).filter((s) => s.startsWith('.'))) {
        const target = concernOf(relative('.', resolve(dirname(file), spec)));
        if (target !== adapter && ADAPTERS.includes(target)) problems.push(`${file} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('product code never imports test code (the demo command is the one documented exception)', () => {
  const problems: string[] = [];
  for (const file of files('extproc')) {
    if (file === join('extproc', 'cli', 'commands', 'demo.ts')) continue;
    for (const spec of imports(file).filter((s) => s.startsWith('.'))) {
      if (relative('.', resolve(dirname(file), spec)).startsWith('test/')) problems.push(`${file} imports ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});
