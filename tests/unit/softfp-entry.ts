// @ts-nocheck -- AssemblyScript (compiled by asc for softfp.test.ts), not TypeScript.
// Test entry: the soft-float API plus in-wasm benchmark loops.
export * from '../../src/target/riscv/core/softfp';
import { f64_add, f64_mul } from '../../src/target/riscv/core/softfp';

/** Runs n dependent f64_add ops in wasm (no JS call overhead); returns the last result. */
export function bench_f64_add(n: i32, rm: u32): u64 {
  let x: u64 = 0x3ff0000000000001;
  const y: u64 = 0x3e50000000000003;
  for (let i = 0; i < n; i++) x = f64_add(x, y ^ (<u64>(i & 1) << 63), rm);
  return x;
}

/** Runs n dependent f64_mul ops in wasm; returns the last result. */
export function bench_f64_mul(n: i32, rm: u32): u64 {
  let x: u64 = 0x3ff0000000000001;
  const y: u64 = 0x3ff0000000000003;
  const z: u64 = 0x3fefffffffffffa0;
  for (let i = 0; i < n; i++) x = f64_mul(x, (i & 1) != 0 ? y : z, rm);
  return x;
}
