#!/usr/bin/env node
// Builds Vireo: the RISC-V core (AssemblyScript -> WebAssembly) and the TypeScript sources.
// Run by `npm install` (prepare) and `npm test`; needs only the devDependencies.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

mkdirSync(join(root, 'dist'), { recursive: true });
run(bin('asc'), [
  'src/target/riscv/core/index.ts',
  '--outFile', 'dist/riscv-core.wasm',
  '--textFile', 'dist/riscv-core.wat',
  '--runtime', 'stub',
  '--importMemory', '--sharedMemory', '--maximumMemory', '65536', '--initialMemory', '512',
  '--enable', 'threads',
  '--optimizeLevel', '3', '--shrinkLevel', '0', '--noAssert',
  '--memoryBase', '65536', '--importTable',
]);
// The soft-float alone, for tests/unit/softfp.test.ts.
run(bin('asc'), ['tests/unit/softfp-entry.ts', '--outFile', 'dist/softfp-test.wasm', '--runtime', 'stub', '-O3', '--noAssert']);
run(bin('tsc'), ['-p', 'tsconfig.json']);
