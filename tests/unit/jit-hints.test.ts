/**
 * The branch hints of the JIT's modules (src/target/riscv/jit/wasm.ts blockModule): each
 * hint names an `if` or `br_if` of its function, the TLB probes' hits are likely, the
 * side exits and budget exits unlikely, and the module stays valid WebAssembly.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { translate, type TranslateEnv } from '../../src/target/riscv/jit/translate.js';
import { blockModule } from '../../src/target/riscv/jit/wasm.js';

const I = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const addi = (rd: number, rs1: number, imm: number): number => I(0x13, 0, rd, rs1, imm);
const ld = (rd: number, rs1: number, imm: number): number => I(0x03, 3, rd, rs1, imm);
const sd = (rs2: number, rs1: number, imm: number): number =>
  (((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const csrrs = (rd: number, csr: number, rs1: number): number => I(0x73, 2, rd, rs1, csr);
const bne = (rs1: number, rs2: number, off: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (1 << 12) |
    (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
const jalr = (rd: number, rs1: number, imm: number): number => I(0x67, 0, rd, rs1, imm);

const PAGE = 0x10000;
const FILTER = 0x20000;

/** A region of `words` at page offset 0 (every branch target counted as run). */
function region(words: number[]) {
  const mem = new ArrayBuffer(0x40000);
  const mem32 = new Uint32Array(mem);
  words.forEach((w, i) => { mem32[(PAGE >> 2) + i] = w; });
  new Uint16Array(mem, FILTER, 65536).fill(1);
  const env: TranslateEnv = {
    mem16: new Uint16Array(mem), mem32, rvcTable: 0, hb: 0x1000, offJit: 0x800,
    hashBase: 0x2000, hashMask: 0xff, filter: FILTER,
  };
  const r = translate(env, 0x80000000, 0, PAGE, 0, new Set());
  assert.ok(r, 'translated');
  return r;
}

function leb(buf: Uint8Array, at: number): [number, number] {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    const b = buf[at++]!;
    v += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [v, at];
  }
}

/** The module's sections: custom ones by name, the function bodies of the code section. */
function parse(m: Uint8Array) {
  const custom = new Map<string, Uint8Array>();
  const bodies: Uint8Array[] = [];
  let at = 8;
  while (at < m.length) {
    const id = m[at++]!;
    let size;
    [size, at] = leb(m, at);
    const sec = m.subarray(at, at + size);
    at += size;
    if (id === 0) {
      const [len, p] = leb(sec, 0);
      custom.set(new TextDecoder().decode(sec.subarray(p, p + len)), sec.subarray(p + len));
    } else if (id === 10) {
      let [n, p] = leb(sec, 0);
      for (; n > 0; n--) {
        let len;
        [len, p] = leb(sec, p);
        bodies.push(sec.subarray(p, p + len));
        p += len;
      }
    }
  }
  return { custom, bodies };
}

test('jit: branch hints point at the regions\' ifs and br_ifs, slow paths unlikely', () => {
  const A0 = 10, A1 = 11, S0 = 8;
  // A loop (a jump back: budget check) with a load, a store (TLB probes, helper side exits)
  // and a CSR read (run by the interpreter: a side exit), then a return.
  const loop = region([ld(A0, A1, 8), sd(A0, A1, 16), csrrs(A0, 0x100, 0), addi(S0, S0, -1), bne(S0, 0, -16), jalr(0, 1, 0)]);
  const plain = region([addi(A0, A0, 1), jalr(0, 1, 0)]);
  const bytes = blockModule([plain, loop]);
  assert.ok(WebAssembly.validate(bytes), 'a valid module');
  const { custom, bodies } = parse(bytes);
  const sec = custom.get('metadata.code.branch_hint');
  assert.ok(sec, 'the module has a branch hint section');
  let [funcs, p] = leb(sec, 0);
  const seen: { func: number; op: number; likely: number }[] = [];
  for (; funcs > 0; funcs--) {
    let func, n;
    [func, p] = leb(sec, p);
    [n, p] = leb(sec, p);
    let last = -1;
    for (; n > 0; n--) {
      let off, size;
      [off, p] = leb(sec, p);
      [size, p] = leb(sec, p);
      assert.equal(size, 1);
      assert.ok(off > last, 'offsets increase');
      last = off;
      const op = bodies[func]![off]!;
      assert.ok(op === 0x04 || op === 0x0d, `hint at an if or br_if (found 0x${op.toString(16)})`);
      seen.push({ func, op, likely: sec[p++]! });
    }
  }
  assert.equal(p, sec.length, 'nothing after the hints');
  const inLoop = seen.filter((h) => h.func === 1);
  assert.equal(inLoop.filter((h) => h.op === 0x04 && h.likely === 1).length, 2, 'the load\'s and the store\'s TLB hits are likely');
  assert.ok(inLoop.filter((h) => h.op === 0x0d).every((h) => h.likely === 0), 'side exits are unlikely');
  assert.ok(inLoop.filter((h) => h.op === 0x0d).length >= 3, 'the load, the store and the CSR have side exits');
  assert.ok(inLoop.some((h) => h.op === 0x04 && h.likely === 0), 'the budget checks are unlikely');
  assert.ok(seen.filter((h) => h.func === 0).every((h) => h.op === 0x04 && h.likely === 0), 'a region without memory accesses has only its budget check');
});
