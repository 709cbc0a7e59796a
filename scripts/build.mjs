#!/usr/bin/env node
// Builds Vireo: the RISC-V core (AssemblyScript -> WebAssembly), the TypeScript sources,
// and the browser build in dist/web (`npm run web`).
// Run by `npm install` (prepare) and `npm test`; needs only the devDependencies.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

mkdirSync(join(root, 'dist'), { recursive: true });
// The core's memory is made by cpu.ts (sized to the guest RAM); its declared minimum is the
// part below the guest RAM (RAM_HOST, 4 MiB), so that the smallest guest (-m 16M) fits.
run(bin('asc'), [
  'src/target/riscv/core/index.ts',
  '--outFile', 'dist/riscv-core.wasm',
  '--textFile', 'dist/riscv-core.wat',
  '--runtime', 'stub',
  '--importMemory', '--sharedMemory', '--maximumMemory', '65536', '--initialMemory', '64',
  '--enable', 'threads',
  '--optimizeLevel', '3', '--shrinkLevel', '0', '--noAssert',
  '--memoryBase', '65536', '--importTable',
]);
// The soft-float alone, for tests/unit/softfp.test.ts.
run(bin('asc'), ['tests/unit/softfp-entry.ts', '--outFile', 'dist/softfp-test.wasm', '--runtime', 'stub', '-O3', '--noAssert']);
run(bin('tsc'), ['-p', 'tsconfig.json']);

// The browser build: the page, the embeddable VirtualMachine, and the worker that runs
// the guest, from the same sources as the CLI. The one host module that differs is
// swapped here: the core's loader, which reads dist/riscv-core.wasm under Node.
const web = join(root, 'dist', 'web');
mkdirSync(web, { recursive: true });
const browserCore = {
  name: 'browser-core-module',
  setup(build) {
    build.onResolve({ filter: /^\.\/core-module\.js$/ }, (args) =>
      args.importer.endsWith(join('target', 'riscv', 'cpu.ts')) ? { path: join(root, 'src', 'web', 'core-module.ts') } : undefined);
  },
};
// The hart threads' host end (node's worker_threads) becomes Web Workers.
const browserThreads = {
  name: 'browser-hart-threads',
  setup(build) {
    build.onResolve({ filter: /^\.\/mttcg-spawn\.js$/ }, (args) =>
      dirname(args.importer) === join(root, 'src', 'accel', 'tcg') ? { path: join(root, 'src', 'web', 'mttcg-spawn.ts') } : undefined);
  },
};
const common = { bundle: true, platform: 'browser', target: 'chrome111', minify: true, sourcemap: true, logLevel: 'warning', absWorkingDir: root };
await esbuild.build({ ...common, entryPoints: { 'vireo-worker': 'src/web/worker.ts', 'vireo-hart': 'src/web/hart-worker.ts' }, outdir: web, format: 'iife', plugins: [browserCore, browserThreads] });
await esbuild.build({ ...common, entryPoints: { vireo: 'src/web/vm.ts', 'vireo-page': 'src/web/page.ts' }, outdir: web, format: 'esm' });
copyFileSync(join(root, 'web', 'index.html'), join(web, 'index.html'));
copyFileSync(join(root, 'node_modules', '@xterm', 'xterm', 'css', 'xterm.css'), join(web, 'xterm.css'));
copyFileSync(join(root, 'dist', 'riscv-core.wasm'), join(web, 'riscv-core.wasm'));
