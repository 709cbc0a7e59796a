// Tests for the RISC-V soft-float (src/target/riscv/core/softfp.ts, F/D extensions,
// RISC-V Unprivileged ISA 20191213 chapters 11-12): every operation is checked against
// reference vectors produced by real RISC-V F/D instructions in all five rounding
// modes (scripts/gen-softfp-vectors.sh, run under qemu-riscv64-static), comparing
// result bits and fflags. SOFTFP_VECTORS=<file[.gz]> checks another vector file
// (e.g. a larger run of the generator).
//
// softfp.ts is AssemblyScript: scripts/build.mjs compiles it (through softfp-entry.ts,
// which adds benchmark loops) to dist/softfp-test.wasm.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const wasmPath = join(root, 'dist', 'softfp-test.wasm');
const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath)), {});
const wasm = instance.exports as Record<string, unknown>;
const fflags = wasm.fflags as WebAssembly.Global;
type Fn = (...args: Array<number | bigint>) => number | bigint;
const fn = (name: string): Fn => {
  const f = wasm[name];
  assert.equal(typeof f, 'function', `softfp export ${name}`);
  return f as Fn;
};

/** Calls an export with fflags cleared; returns [result as unsigned, fflags]. */
function call(name: string, ...args: Array<number | bigint>): [number | bigint, number] {
  fflags.value = 0;
  const r = fn(name)(...args);
  return [typeof r === 'bigint' ? BigInt.asUintN(64, r) : r >>> 0, fflags.value as number];
}

// ---------------------------------------------------------------------------
// Reference vectors (format documented in scripts/gen-softfp-vectors.c)

const TYPE_NAMES = ['f32', 'f64', 'i32', 'u32', 'i64', 'u64'];
const TYPE_WIDTH = [4, 8, 4, 4, 8, 8];
const MODE_NAMES = ['RNE', 'RTZ', 'RDN', 'RUP', 'RMM'];

interface Block {
  name: string;
  nIn: number;
  inWidth: number;
  outWidth: number;
  nModes: number;
  count: number;
  data: Buffer;
  offset: number;
}

function loadVectors(): Block[] {
  const file = process.env.SOFTFP_VECTORS ?? join(root, 'tests/unit/softfp-vectors.bin.gz');
  const raw = readFileSync(file);
  const buf = file.endsWith('.gz') ? gunzipSync(raw) : raw;
  const blocks: Block[] = [];
  let p = 0;
  while (p < buf.length) {
    const len = buf[p++];
    const name = buf.toString('latin1', p, p + len);
    p += len;
    const [nIn, tin, tout, nModes] = [buf[p], buf[p + 1], buf[p + 2], buf[p + 3]];
    const count = buf.readUInt32LE(p + 4);
    p += 8;
    const block = { name, nIn, inWidth: TYPE_WIDTH[tin], outWidth: TYPE_WIDTH[tout], nModes, count, data: buf, offset: p };
    assert.ok(TYPE_NAMES[tin] && TYPE_NAMES[tout], `bad types in block ${name}`);
    p += count * (nIn * block.inWidth + nModes * (block.outWidth + 1));
    blocks.push(block);
  }
  assert.equal(p, buf.length, 'vector file truncated');
  return blocks;
}

const read = (buf: Buffer, p: number, w: number): number | bigint => (w === 4 ? buf.readUInt32LE(p) : buf.readBigUInt64LE(p));
const hex = (v: number | bigint, w: number): string => v.toString(16).padStart(w * 2, '0');

/** Checks every vector of a block; returns how many were checked. */
function checkBlock(b: Block): number {
  const f = fn(b.name);
  const failures: string[] = [];
  let failed = 0;
  let p = b.offset;
  for (let i = 0; i < b.count; i++) {
    const args: Array<number | bigint> = [];
    for (let k = 0; k < b.nIn; k++, p += b.inWidth) args.push(read(b.data, p, b.inWidth));
    for (let rm = 0; rm < b.nModes; rm++) {
      const want = read(b.data, p, b.outWidth);
      const wantFlags = b.data[p + b.outWidth];
      p += b.outWidth + 1;
      fflags.value = 0;
      const r = b.nModes > 1 ? f(...args, rm) : f(...args);
      const got = typeof r === 'bigint' ? BigInt.asUintN(64, r) : r >>> 0;
      const gotFlags = fflags.value as number;
      if (got !== want || gotFlags !== wantFlags) {
        if (++failed <= 12) {
          const ops = args.map((a) => hex(a, b.inWidth)).join(', ');
          const mode = b.nModes > 1 ? ` ${MODE_NAMES[rm]}` : '';
          failures.push(
            `${b.name}(${ops})${mode}: want ${hex(want, b.outWidth)} flags ${wantFlags}, got ${hex(got, b.outWidth)} flags ${gotFlags}`,
          );
        }
      }
    }
  }
  assert.equal(failed, 0, `${failed} mismatches:\n${failures.join('\n')}`);
  return b.count * b.nModes;
}

const blocks = loadVectors();
const FLOAT_OPS = ['add', 'sub', 'mul', 'div', 'sqrt', 'fma', 'min', 'max', 'eq', 'lt', 'le', 'classify'];
const expected = [
  ...['f32', 'f64'].flatMap((f) => [...FLOAT_OPS, 'to_i32', 'to_u32', 'to_i64', 'to_u64'].map((op) => `${f}_${op}`)),
  ...['i32', 'u32', 'i64', 'u64'].flatMap((t) => [`${t}_to_f32`, `${t}_to_f64`]),
  'f32_to_f64',
  'f64_to_f32',
];

test('reference vectors cover the whole soft-float API', () => {
  assert.deepEqual(new Set(blocks.map((b) => b.name)), new Set(expected));
});

for (const b of blocks) {
  test(`${b.name} matches RISC-V reference results (${b.count} operand sets)`, () => {
    checkBlock(b);
  });
}

// ---------------------------------------------------------------------------
// Behaviors the vectors cannot show

test('fflags accumulate across operations until the caller clears them', () => {
  fflags.value = 0;
  fn('f64_div')(0x3ff0000000000000n, 0n, 0); // 1/0: DZ
  fn('f32_add')(0x3f800000, 0x33800001, 0); // 1 + tiny: NX
  fn('f64_sqrt')(0xbff0000000000000n, 0); // sqrt(-1): NV
  assert.equal(fflags.value, 8 | 1 | 16);
  fn('f64_add')(0x3ff0000000000000n, 0x3ff0000000000000n, 0); // exact: leaves flags alone
  assert.equal(fflags.value, 8 | 1 | 16);
});

test('fma signed-zero results (fnmadd/fmsub are built by flipping input signs)', () => {
  const one = 0x3ff0000000000000n, neg = 0x8000000000000000n;
  // 1*1 + -1 is an exact zero: +0, except -0 in RDN.
  for (let rm = 0; rm < 5; rm++) assert.deepEqual(call('f64_fma', one, one, one | neg, rm), [rm === 2 ? neg : 0n, 0]);
  // (-0)*x + (-0) = -0 in every mode; (+0)*x + (-0) = +0 except RDN.
  assert.deepEqual(call('f64_fma', neg, one, neg, 0), [neg, 0]);
  assert.deepEqual(call('f64_fma', 0n, one, neg, 0), [0n, 0]);
  assert.deepEqual(call('f64_fma', 0n, one, neg, 2), [neg, 0]);
  assert.deepEqual(call('f32_fma', 0x3f800000, 0x3f800000, 0xbf800000, 2), [0x80000000, 0]);
  // inf*0 + qNaN is invalid on RISC-V.
  assert.deepEqual(call('f32_fma', 0x7f800000, 0, 0x7fc00000, 0), [0x7fc00000, 16]);
});

test('f64_add and f64_mul throughput (informational)', (t) => {
  for (const name of ['f64_add', 'f64_mul']) {
    const bench = fn(`bench_${name}`);
    bench(100_000, 0); // warm up
    const n = 5_000_000;
    const t0 = performance.now();
    bench(n, 0);
    const ms = performance.now() - t0;
    t.diagnostic(`${name}: ${((n / ms) * 1000 / 1e6).toFixed(1)} M ops/s (in-wasm loop, RNE)`);
  }
});
