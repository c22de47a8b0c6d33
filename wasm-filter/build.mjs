// Builds the masking core (wasm-filter/assembly/masking → build/masking.wasm) and the proxy-wasm filter that links it
// (wasm-filter/assembly/filter → build/filter.wasm) with asc, then checks the properties both promise to Envoy's VM,
// where a trap kills the VM for good (docs/envoy-behaviour.md D.4):
// - no `unreachable` instruction anywhere (so no input can make them trap through an abort);
// - the core imports nothing; the filter imports only proxy-wasm ABI 0.2.1 functions (no `abort`, and none of the
//   0.1.0-only calls that make Envoy refuse the module) and exports what Envoy's host looks up;
// - the filter's start function (AssemblyScript top level) calls no import: the host allows no proxy call then;
// - the filter never calls the AssemblyScript allocator: the core owns the heap with an allocator of its own.
// Run by the repo's build step (npm `prepare`, `npm run build:wasm`, scripts/setup.mjs); plain Node, no TypeScript.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const here = dirname(fileURLToPath(import.meta.url));

/** The host functions of ABI 0.2.1 the filter may import (Envoy's proxy-wasm-cpp-host), plus the WASI calls it implements. */
const ABI_0_2_1_IMPORTS = new Set([
  'env.proxy_log',
  'env.proxy_get_log_level',
  'env.proxy_get_buffer_bytes',
  'env.proxy_set_buffer_bytes',
  'env.proxy_get_header_map_pairs',
  'env.proxy_set_header_map_pairs',
  'env.proxy_get_header_map_value',
  'env.proxy_replace_header_map_value',
  'env.proxy_add_header_map_value',
  'env.proxy_remove_header_map_value',
  'env.proxy_get_header_map_size',
  'env.proxy_get_property',
  'env.proxy_set_property',
  'env.proxy_send_local_response',
  'env.proxy_continue_stream',
  'env.proxy_close_stream',
  'env.proxy_set_tick_period_milliseconds',
  'env.proxy_get_current_time_nanoseconds',
  'env.proxy_http_call',
  'env.proxy_define_metric',
  'env.proxy_increment_metric',
  'env.proxy_record_metric',
  'env.proxy_get_metric',
  'env.proxy_set_effective_context',
  'env.proxy_done',
  'wasi_snapshot_preview1.random_get',
  'wasi_snapshot_preview1.environ_sizes_get',
  'wasi_snapshot_preview1.environ_get',
]);
const FILTER_EXPORTS = [
  'memory',
  'malloc',
  'proxy_abi_version_0_2_1',
  'proxy_on_context_create',
  'proxy_on_vm_start',
  'proxy_on_configure',
  'proxy_on_tick',
  'proxy_on_http_call_response',
  'proxy_on_request_headers',
  'proxy_on_response_headers',
  'proxy_on_response_body',
  'proxy_on_done',
  'proxy_on_delete',
];

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

async function build(name, config) {
  const { error, stderr } = await asc.main(['--config', join(here, config), '--baseDir', here], {});
  if (error) {
    process.stderr.write(stderr.toString());
    fail(`${name}: asc failed: ${error.message}`);
  }
  const wasmPath = join(here, 'build', `${name}.wasm`);
  const bytes = await readFile(wasmPath);
  const module = await WebAssembly.compile(bytes);
  const wat = await readFile(join(here, 'build', `${name}.wat`), 'utf8');
  const traps = wat.split('\n').filter((line) => /\bunreachable\b/.test(line)).length;
  if (traps > 0) fail(`${name}: ${traps} 'unreachable' instruction(s) in build/${name}.wat: some input could trap`);
  return { wasmPath, size: bytes.length, module, wat };
}

/** Functions reachable from `start` through direct calls (the text format names every call target). */
function reachableFrom(wat, start) {
  const bodies = new Map();
  let current;
  for (const line of wat.split('\n')) {
    const def = /^ \(func (\$\S+)/.exec(line);
    if (def) {
      current = def[1];
      bodies.set(current, []);
      continue;
    }
    const call = /\bcall (\$\S+)/.exec(line);
    if (call && current) bodies.get(current).push(call[1]);
  }
  const seen = new Set([start]);
  const todo = [start];
  while (todo.length > 0) for (const f of bodies.get(todo.pop()) ?? []) if (!seen.has(f) && seen.add(f)) todo.push(f);
  return seen;
}

const core = await build('masking', 'asconfig.json');
const coreImports = WebAssembly.Module.imports(core.module);
if (coreImports.length > 0)
  fail(`masking core: must import nothing, imports ${coreImports.map((i) => `${i.module}.${i.name}`).join(', ')}`);
process.stdout.write(
  `masking core: ${core.wasmPath} (${core.size} bytes, exports ${WebAssembly.Module.exports(core.module)
    .map((e) => e.name)
    .join(' ')})\n`,
);

const filter = await build('filter', 'asconfig.filter.json');
const imports = WebAssembly.Module.imports(filter.module).map((i) => `${i.module}.${i.name}`);
const foreign = imports.filter((i) => !ABI_0_2_1_IMPORTS.has(i));
if (foreign.length > 0) fail(`filter: imports outside proxy-wasm ABI 0.2.1: ${foreign.join(', ')}`);
const exported = new Set(WebAssembly.Module.exports(filter.module).map((e) => e.name));
const missing = FILTER_EXPORTS.filter((e) => !exported.has(e));
if (missing.length > 0) fail(`filter: missing exports ${missing.join(', ')}`);
const importNames = new Set([...filter.wat.matchAll(/^ \(import "[^"]+" "[^"]+" \(func (\$\S+)/gm)].map((m) => m[1]));
const start = /^ \(start (\$\S+)\)/m.exec(filter.wat);
if (start) {
  const calledAtStart = [...reachableFrom(filter.wat, start[1])].filter((f) => importNames.has(f));
  if (calledAtStart.length > 0) fail(`filter: the start function calls host functions: ${calledAtStart.join(', ')}`);
}
if (/\bcall \$~lib\/rt\/stub\/__alloc\b/.test(filter.wat))
  fail('filter: calls the AssemblyScript allocator (use the static regions of assembly/filter/memory.ts)');
process.stdout.write(`proxy-wasm filter: ${filter.wasmPath} (${filter.size} bytes, ${imports.length} ABI imports)\n`);
