#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS GLIBC_TUNABLES=glibc.malloc.hugetlb=1 node --v8-pool-size=1
// The `vireo` command: runs the bundle of the compiled sources (dist/cli, see scripts/build.mjs).
// `npm start` and bench/ run this file. Its first line sets:
// One V8 background thread (--v8-pool-size=1): V8's background work (the tier-up of
// JIT-translated guest code, GC) then never takes the core of the thread that runs the
// guest on a 2-core host, which made -accel tcg,jit=on slower.
// No NODE_EXTRA_CA_CERTS: Node 20 parses those certificates before it runs any script,
// ~40 ms of a 60 ms start-up where it is set, and Vireo makes no TLS connections.
// glibc's malloc advises its large blocks into transparent huge pages (as guest RAM is,
// src/system/host-memory.ts): the decompressed boot images (20 MB) then cost a few page
// faults instead of ~5000, which took ~0.1 s of the start-up on a virtualised host.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// The JIT's WebAssembly carries branch hints (src/target/riscv/jit/wasm.ts): with them V8
// moves the slow paths out of line. The V8 of Node 20 and 22 (11.x, 12.x) reads them only
// with this flag (later ones may not know it, and would print an error), set here rather
// than on the first line, where it delayed the firmware banner by 20-40 ms (bench/boot).
if (Number(process.versions.v8.split('.')[0]) <= 12) setFlagsFromString('--experimental-wasm-branch-hinting');

const entry = new URL('../dist/cli/vireo.mjs', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(`vireo: not built yet: run \`npm install\` in ${join(dirname(fileURLToPath(import.meta.url)), '..')}\n`);
  process.exit(1);
}
const { main } = await import(entry.href);
const status = await main(process.argv.slice(2));
// Exit explicitly: an open stdin (or a timer) would otherwise keep Node alive. The
// terminal is restored by the stdio backend's close or exit handler.
process.exitCode = status;
process.exit(status);
