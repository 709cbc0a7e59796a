/**
 * The interpreter runs the frequent compressed instructions without expanding them
 * (src/target/riscv/core/exec.ts): every 16-bit encoding must do exactly what its 32-bit
 * expansion does (the core's table, checked by the ISA and difftests) — registers, memory,
 * next pc, link and traps — from two register states, one of pointers into RAM and one random.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { RiscvCpus, RVC_TABLE } from '../../src/target/riscv/cpu.js';

const BASE = 0x80000000;
const CODE = 0x100000; // RAM offset of the instruction under test
const DATA = 0x200000; // RAM offset of the window the pointer registers point into
const WINDOW = 0x10000;
const TRAP = 0x300000;

const jalImm = (i: number): number => ((i & 0x80000000) >> 11) | (i & 0xff000) | ((i >>> 9) & 0x800) | ((i >>> 20) & 0x7fe);
const branchImm = (i: number): number => ((i & 0x80000000) >> 19) | ((i & 0x80) << 4) | ((i >>> 20) & 0x7e0) | ((i >>> 7) & 0x1e);

function machine() {
  const cpus = new RiscvCpus({ ramBase: BASE, ramSize: 16 << 20, romBase: 0x1000, romSize: 0x1000 }, 1, new AddressSpace(), () => 0, null);
  const hart = cpus.harts[0]!;
  const dv = new DataView(cpus.ram.buffer, cpus.ram.byteOffset, cpus.ram.byteLength);
  return { cpus, hart, dv };
}

test('interpreter: each compressed instruction does what its 32-bit expansion does', () => {
  const a = machine(); // runs the 16-bit encoding
  const b = machine(); // runs its expansion
  const table = new Uint32Array(a.cpus.memory.buffer, RVC_TABLE, 65536);
  let seed = 0x2545f491;
  const rnd = (): bigint => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return BigInt(seed >>> 0);
  };
  const pattern = new Uint8Array(WINDOW).map((_, i) => (i * 37 + 11) & 0xff);
  const states = [
    Array.from({ length: 32 }, (_, i) => BigInt(BASE + DATA + 0x800 * (i & 15) + 0x400)),
    Array.from({ length: 32 }, () => (rnd() << 32n) | rnd()),
  ];
  const pc = BigInt(BASE + CODE);
  let checked = 0;
  for (let c = 0; c < 65536; c++) {
    if ((c & 3) === 3) continue;
    const e = table[c]!;
    for (const regs of states) {
      for (const [m, word] of [[a, c], [b, e]] as const) {
        m.hart.reset(BASE + CODE);
        m.hart.setCsr(0x305, BigInt(BASE + TRAP)); // mtvec
        m.hart.setCsr(0x300, 1n << 13n); // mstatus.FS: initial
        for (let r = 1; r < 32; r++) m.hart.x[r] = regs[r]!;
        m.cpus.ram.set(pattern, DATA);
        m.dv.setUint32(CODE, word, true);
        m.hart.run(1);
      }
      const where = `c=0x${c.toString(16)} (expansion 0x${e.toString(16)}) with ${regs === states[0] ? 'pointers' : 'random values'}`;
      if (e === 0xffffffff) { // reserved: illegal, with the encoding as mtval
        assert.equal(a.hart.pc, BigInt(BASE + TRAP), where);
        assert.equal(a.hart.csr(0x342), 2n, where);
        assert.equal(a.hart.csr(0x343), BigInt(c), where);
        continue;
      }
      // The expansion is 2 bytes longer: its fall-through and link are pc + 4, not pc + 2
      // (which a jump or taken branch to pc + 4 makes ambiguous: those are decided here).
      const adjust = (v: bigint): bigint => (v === pc + 4n ? pc + 2n : v);
      const op = e & 0x7f;
      if (op === 0x6f || op === 0x63) {
        const target = pc + BigInt(op === 0x6f ? jalImm(e) : branchImm(e));
        const taken = op === 0x6f || (regs[8 + ((c >> 7) & 7)] === 0n) === (((c >> 13) & 7) === 6);
        assert.equal(b.hart.pc, taken ? target : pc + 4n, `next pc of ${where} (expansion)`);
        assert.equal(a.hart.pc, taken ? target : pc + 2n, `next pc of ${where}`);
      } else {
        assert.equal(a.hart.pc, adjust(b.hart.pc), `next pc of ${where}`);
      }
      assert.deepEqual([...a.hart.x], [...b.hart.x].map(adjust), `x registers of ${where}`);
      assert.deepEqual([...a.hart.f], [...b.hart.f], `f registers of ${where}`);
      for (const csr of [0x341, 0x342, 0x343]) assert.equal(a.hart.csr(csr), b.hart.csr(csr), `CSR 0x${csr.toString(16)} of ${where}`);
      assert.ok(Buffer.from(a.cpus.ram.subarray(DATA, DATA + WINDOW)).equals(b.cpus.ram.subarray(DATA, DATA + WINDOW)), `memory of ${where}`);
      checked++;
    }
  }
  assert.ok(checked > 80000, `${checked} cases compared`);
});
