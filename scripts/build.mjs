#!/usr/bin/env node
// Builds Vireo: the RISC-V core (AssemblyScript -> WebAssembly), the TypeScript sources,
// the `vireo` command's bundle (dist/cli), and the browser build in dist/web (`npm run web`).
// Run by `npm install` (prepare) and `npm test`; needs only the devDependencies.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
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
// tsc only writes: the output of a source deleted since the last build would stay (and a
// stale test would still run).
for (const dir of ['src', 'tests', 'bench']) rmSync(join(root, 'dist', dir), { recursive: true, force: true });
run(bin('tsc'), ['-p', 'tsconfig.json']);

// The `vireo` command (bin/vireo.js) runs a bundle of the compiled sources: Node starts it
// in ~25 ms instead of ~65 ms for some 130 separate modules. The boards (and koffi, with the
// KVM code) stay in chunks loaded on demand. Each module's import.meta.url is kept pointing
// at its file in dist/src, relative to the bundle, for the files found from there (the
// core, package.json, the thread entry points, which run unbundled).
const cli = join(root, 'dist', 'cli');
const keepModuleUrls = {
  name: 'keep-module-urls',
  setup(build) {
    build.onLoad({ filter: /[\\/]dist[\\/]src[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const url = `new URL(${JSON.stringify(relative(cli, args.path).split(sep).join('/'))}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'js' };
    });
  },
};
rmSync(cli, { recursive: true, force: true });
await esbuild.build({
  entryPoints: { vireo: join(root, 'dist', 'src', 'system', 'vl.js') }, outdir: cli, outExtension: { '.js': '.mjs' },
  bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', plugins: [keepModuleUrls], logLevel: 'warning',
});

// The browser build: the page, the embeddable VirtualMachine, and the worker that runs
// the guest, from the same sources as the CLI. The one host module that differs is
// swapped here: the core's loader, which reads dist/riscv-core.wasm under Node.
const web = join(root, 'dist', 'web');
rmSync(web, { recursive: true, force: true }); // no chunk of an older build stays
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
// koffi: imported only under Node (src/system/host-memory.ts), never in a page.
const common = { bundle: true, platform: 'browser', target: 'chrome111', minify: true, sourcemap: true, logLevel: 'warning', absWorkingDir: root, external: ['koffi'] };
await esbuild.build({ ...common, entryPoints: { 'vireo-worker': 'src/web/worker.ts', 'vireo-hart': 'src/web/hart-worker.ts' }, outdir: web, format: 'iife', plugins: [browserCore, browserThreads] });
await esbuild.build({ ...common, entryPoints: { vireo: 'src/web/vm.ts' }, outdir: web, format: 'esm' });
// Split: the page's entry starts the machine's worker before the terminal's chunks arrive.
await esbuild.build({ ...common, entryPoints: { 'vireo-page': 'src/web/page.ts' }, outdir: web, format: 'esm', splitting: true });
copyFileSync(join(root, 'web', 'index.html'), join(web, 'index.html'));
copyFileSync(join(root, 'node_modules', '@xterm', 'xterm', 'css', 'xterm.css'), join(web, 'xterm.css'));
copyFileSync(join(root, 'dist', 'riscv-core.wasm'), join(web, 'riscv-core.wasm'));
