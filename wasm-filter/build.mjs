// Builds the masking core (wasm-filter/assembly/masking) into wasm-filter/build/masking.wasm with asc, then checks
// the two properties the core promises to Envoy's VM: no imports (so no `abort`, no WASI, no proxy calls) and no
// `unreachable` instruction (so no input can make it trap). Run by the repo's build step; plain Node, no TypeScript.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const here = dirname(fileURLToPath(import.meta.url));

const { error, stderr } = await asc.main(['--config', join(here, 'asconfig.json'), '--baseDir', here], {});
if (error) {
  process.stderr.write(stderr.toString());
  process.stderr.write(`masking core: asc failed: ${error.message}\n`);
  process.exit(1);
}

const wasmPath = join(here, 'build', 'masking.wasm');
const module = await WebAssembly.compile(await readFile(wasmPath));
const imports = WebAssembly.Module.imports(module);
if (imports.length > 0) {
  process.stderr.write(
    `masking core: must import nothing, imports ${imports.map((i) => `${i.module}.${i.name}`).join(', ')}\n`,
  );
  process.exit(1);
}
const wat = await readFile(join(here, 'build', 'masking.wat'), 'utf8');
const traps = wat.split('\n').filter((line) => /\bunreachable\b/.test(line)).length;
if (traps > 0) {
  process.stderr.write(
    `masking core: ${traps} 'unreachable' instruction(s) in build/masking.wat: some input could trap\n`,
  );
  process.exit(1);
}
const exportsList = WebAssembly.Module.exports(module).map((e) => e.name);
process.stdout.write(
  `masking core: ${wasmPath} (${(await readFile(wasmPath)).length} bytes, exports ${exportsList.join(' ')})\n`,
);
