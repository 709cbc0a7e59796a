/** The compiled RISC-V core under Node: dist/riscv-core.wasm, next to the compiled sources. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function loadCoreModule(): WebAssembly.Module {
  // dist/src/target/riscv/core-module.js -> dist/riscv-core.wasm
  const here = dirname(fileURLToPath(import.meta.url));
  return new WebAssembly.Module(readFileSync(join(here, '..', '..', '..', 'riscv-core.wasm')));
}
