/**
 * The RISC-V → WebAssembly JIT (src/target/riscv/jit, src/target/riscv/core/jit.ts):
 * self-modifying code is never run stale (guest stores + FENCE.I, device writes),
 * and a fault in the middle of a translated block leaves the exact pc, registers
 * and instret — the same as the interpreter.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { RegionGuestMemory } from '../../src/hw/core/guest-memory.js';
import { RiscvCpus, RunExit } from '../../src/target/riscv/cpu.js';
import { CodeGuardMemory } from '../../src/target/riscv/jit/jit.js';

const BASE = 0x80000000;
// Encoders (RV64I).
const I = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const addi = (rd: number, rs1: number, imm: number): number => I(0x13, 0, rd, rs1, imm);
const ld = (rd: number, rs1: number, imm: number): number => I(0x03, 3, rd, rs1, imm);
const lw = (rd: number, rs1: number, imm: number): number => I(0x03, 2, rd, rs1, imm);
const sw = (rs2: number, rs1: number, imm: number): number =>
  (((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const bne = (rs1: number, rs2: number, off: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (1 << 12) |
    (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
const jal = (rd: number, off: number): number =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12) |
    (rd << 7) | 0x6f) >>> 0;
const jalr = (rd: number, rs1: number, imm: number): number => I(0x67, 0, rd, rs1, imm);
const auipc = (rd: number, imm20: number): number => ((imm20 << 12) | (rd << 7) | 0x17) >>> 0;
const lui = (rd: number, imm20: number): number => ((imm20 << 12) | (rd << 7) | 0x37) >>> 0;
const csrr = (rd: number, csr: number): number => I(0x73, 2, rd, 0, csr);
const csrw = (csr: number, rs1: number): number => I(0x73, 1, 0, rs1, csr);
const FENCE_I = 0x0000100f;
const WFI = 0x10500073;
const [RA, T0, T1, T2, S0, A0, A1, A2, A3, A4] = [1, 5, 6, 7, 8, 10, 11, 12, 13, 14];

/** A one-hart machine with `words` at RAM offset 0 (and at the given other offsets). */
function machine(jit: boolean, code: Map<number, number[]>, threshold = 2) {
  const bus = new AddressSpace();
  const cpus = new RiscvCpus({ ramBase: BASE, ramSize: 64 << 20, romBase: 0x1000, romSize: 0x1000 }, 1, bus, () => 0,
    jit ? { threshold } : null);
  const dv = new DataView(cpus.ram.buffer, cpus.ram.byteOffset, cpus.ram.byteLength);
  for (const [off, words] of code) words.forEach((w, i) => dv.setUint32(off + 4 * i, w, true));
  const hart = cpus.harts[0]!;
  hart.reset(BASE);
  return { cpus, hart, dv };
}

function runToWfi(h: ReturnType<typeof machine>['hart']): void {
  for (let i = 0; i < 100; i++) if (h.run(10_000) === RunExit.Wfi) return;
  assert.fail('the program did not reach WFI');
}

/** Runs `code` to WFI on the interpreter (off) and with the JIT (on): registers, instret, and what the JIT translated and ran. */
function interpreterAndJit(code: Map<number, number[]>, threshold?: number) {
  const [off, on] = [false, true].map((jit) => {
    const m = machine(jit, code, threshold);
    runToWfi(m.hart);
    const stats = m.cpus.jit?.stats;
    return { x: [...m.hart.x], instret: m.hart.instret, blocks: stats?.blocks ?? 0, translated: stats?.insns ?? 0, inRegions: m.cpus.jit?.counters().insns ?? 0n };
  });
  return { off: off!, on: on! };
}

test('jit: a fault in the middle of a block reports the exact pc, registers and instret', () => {
  const code = new Map<number, number[]>([
    [0x00, [
      auipc(T0, 0), addi(T1, T0, 0x100), csrw(0x305, T1), addi(A4, T0, 0x200), addi(S0, 0, 50),
      /* 0x14 loop: */ addi(A1, A1, 1), addi(A2, A2, 3), ld(A3, A4, 0), addi(S0, S0, -1), bne(S0, 0, -0x10),
      /* 0x28 */ lui(A4, 0x40000), jal(0, -0x18),
    ]],
    [0x100, [csrr(T1, 0x341), csrr(T2, 0x342), WFI]],
    [0x200, [0x55667788, 0x11223344]],
  ]);
  const { off, on } = interpreterAndJit(code);
  assert.ok(on.blocks > 0, 'the loop was translated');
  assert.equal(on.x[T1], BigInt(BASE + 0x1c), 'mepc is the faulting load');
  assert.equal(on.x[T2], 5n, 'load access fault');
  assert.equal(on.x[A1], 51n);
  assert.equal(on.x[A2], 153n);
  assert.equal(on.x[A3], 0x1122334455667788n, 'the faulting load did not write its destination');
  assert.equal(on.x[S0], 0n);
  assert.deepEqual(on.x, off.x, 'same registers as the interpreter');
  assert.equal(on.instret, off.instret, 'same instret as the interpreter');
});

test('jit: an AMO in a region without loads or stores probes the write TLB, and faults as in the interpreter', () => {
  // amoadd.w a0, a1, (a4): 50 times on RAM (the loop gets translated), then at address 0,
  // which is no RAM: a store/AMO access fault, not an atomic add somewhere in host memory.
  const amoaddW = (rd: number, rs1: number, rs2: number): number => ((rs2 << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x2f) >>> 0;
  const code = new Map<number, number[]>([
    [0x00, [
      auipc(T0, 0), addi(T1, T0, 0x100), csrw(0x305, T1), addi(A4, T0, 0x200), addi(S0, 0, 50), addi(A1, 0, 3),
      /* 0x18 loop: */ amoaddW(A0, A4, A1), addi(S0, S0, -1), bne(S0, 0, -8),
      /* 0x24 */ addi(A4, 0, 0), jal(0, -0x10),
    ]],
    [0x100, [csrr(T1, 0x342), csrr(T2, 0x341), WFI]],
    [0x200, [0, 0]],
  ]);
  const { off, on } = interpreterAndJit(code);
  assert.ok(on.blocks > 0 && on.inRegions > 0n, 'the loop ran translated');
  assert.equal(on.x[T1], 7n, 'store/AMO access fault');
  assert.equal(on.x[T2], BigInt(BASE + 0x18), 'mepc is the AMO');
  assert.equal(on.x[A0], 147n, 'the 50 adds on RAM happened');
  assert.deepEqual(on.x, off.x, 'same registers as the interpreter');
  assert.equal(on.instret, off.instret, 'same instret as the interpreter');
});

test('jit: a load that faults keeps its destination (also its base) and the block\'s later writes undone', () => {
  // The loop's block writes a1, loads a4 from a4 (a pointer to itself), then writes a2:
  // after the fault, a4 holds the bad address, a1 the increment, a2 its old value.
  const code = new Map<number, number[]>([
    [0x00, [
      auipc(T0, 0), addi(T1, T0, 0x100), csrw(0x305, T1), addi(A4, T0, 0x200), addi(S0, 0, 50), addi(A2, 0, 3),
      /* 0x18 loop: */ addi(A1, A1, 1), ld(A4, A4, 0), addi(A2, 0, 7), addi(S0, S0, -1), bne(S0, 0, -0x10),
      /* 0x2c */ addi(A2, 0, 5), lui(A4, 0x40000), jal(0, -0x1c),
    ]],
    [0x100, [csrr(T1, 0x341), csrr(T2, 0x342), WFI]],
    [0x200, [BASE + 0x200, 0]],
  ]);
  const { off, on } = interpreterAndJit(code);
  assert.ok(on.blocks > 0 && on.inRegions > 0n, 'the loop ran translated');
  assert.equal(on.x[T1], BigInt(BASE + 0x1c), 'mepc is the faulting load');
  assert.equal(on.x[T2], 5n, 'load access fault');
  assert.equal(on.x[A4], 0x40000000n, 'the load did not write its destination, its own base');
  assert.equal(on.x[A1], 51n, 'the write before the load happened');
  assert.equal(on.x[A2], 5n, 'the write after the load did not');
  assert.deepEqual(on.x, off.x, 'same registers as the interpreter');
  assert.equal(on.instret, off.instret, 'same instret as the interpreter');
});

test('jit: a run retires exactly its budget, however it falls across translated loops', () => {
  // A loop of 3 instructions and one of 1 instruction (a branch to itself), 200 k times in all.
  const code = new Map<number, number[]>([
    [0x00, [addi(S0, 0, 2000), /* 0x04 */ addi(A0, A0, 1), addi(S0, S0, -1), bne(S0, 0, -8),
      lui(S0, 0x30), /* 0x14 */ addi(S0, S0, -1), bne(S0, 0, -4), WFI]],
  ]);
  const m = machine(true, code);
  const budgets = [1, 2, 3, 7, 100, 333, 1000, 4096, 5, 60_000];
  let retired = 0n;
  for (let i = 0; retired < 190_000n; i++) {
    const budget = budgets[i % budgets.length]!;
    assert.equal(m.hart.run(budget), RunExit.Budget);
    retired += BigInt(budget);
    assert.equal(BigInt(m.hart.instret), retired, `run(${budget}) retired exactly its budget`);
  }
  assert.ok(m.cpus.jit!.counters().insns > 100_000n, 'most of it ran translated');
});

test('jit: code reached only by running on past an instruction that straddles pages gets translated', () => {
  // A loop from 0xff0 whose 32-bit instruction at 0xffe crosses into the next page: no
  // jump ever targets the rest of the body (0x1002...), which must get hot all the same.
  const C_NOP = 0x0001;
  const halves = [addi(A1, A1, 1), addi(A2, A2, 1), addi(A3, A3, 1)].flatMap((w) => [w & 0xffff, w >>> 16]);
  halves.push(C_NOP);
  const tail = [addi(A4, A4, 5), addi(A1, A1, 2), addi(A2, A2, 3), addi(A3, A3, 4), addi(A4, A4, 6), addi(S0, S0, -1)];
  for (const w of tail) halves.push(w & 0xffff, w >>> 16);
  const back = bne(S0, 0, 0xff0 - (0xff0 + 2 * halves.length));
  halves.push(back & 0xffff, back >>> 16, WFI & 0xffff, WFI >>> 16, C_NOP);
  const words: number[] = [];
  for (let i = 0; i < halves.length; i += 2) words.push((halves[i]! | (halves[i + 1]! << 16)) >>> 0);
  const code = new Map<number, number[]>([[0x00, [addi(S0, 0, 100), jal(0, 0xff0 - 4)]], [0xff0, words]]);
  const { off, on } = interpreterAndJit(code);
  assert.deepEqual(on.x, off.x, 'same registers as the interpreter');
  assert.equal(on.x[A4], 1100n);
  assert.equal(on.instret, off.instret, 'same instret as the interpreter');
  // The part before the straddling instruction is 4 of the loop's 12 instructions.
  assert.ok(on.inRegions > 4n * 100n + 5n * 80n, `the part after it ran translated too (${on.inRegions} instructions in regions)`);
});

test('jit: code gets hot by the instructions run from it, not by the jumps to it', () => {
  // A 201-instruction function called 20 times, at threshold 1000: hot after five calls
  // (counting jumps, it would take 1000 calls).
  const code = new Map<number, number[]>([
    [0x00, [addi(S0, 0, 20), /* 0x04 loop: */ jal(RA, 0x400 - 0x04), addi(S0, S0, -1), bne(S0, 0, -8), WFI]],
    [0x400, [...Array.from({ length: 200 }, () => addi(A0, A0, 1)), jalr(0, RA, 0)]],
  ]);
  const { off, on } = interpreterAndJit(code, 1000);
  assert.deepEqual(on.x, off.x, 'same registers as the interpreter');
  assert.equal(on.x[A0], 4000n);
  assert.equal(on.instret, off.instret, 'same instret as the interpreter');
  assert.ok(on.inRegions > 5n * 201n, `the function ran translated (${on.inRegions} instructions in regions)`);
});

test('jit: a branch target the interpreter never ran is left out of the region until it runs', () => {
  // A hot loop with a branch out of line to 8 instructions (an error path, as GCC places
  // one) taken once, at iteration `flip`; the loop is hot after a few iterations.
  const beq = (rs1: number, rs2: number, off: number): number => (bne(rs1, rs2, off) & ~0x7000) >>> 0;
  const program = (flip: number) => new Map<number, number[]>([
    [0x00, [addi(S0, 0, 200), addi(A1, 0, flip),
      /* 0x08 loop: */ addi(A0, A0, 1), beq(S0, A1, 0x100 - 0x0c),
      /* 0x10 back: */ addi(S0, S0, -1), bne(S0, 0, -0x0c), WFI]],
    [0x100, [...Array.from({ length: 8 }, (_, i) => addi(A2, A2, i + 1)), jal(0, 0x10 - 0x120)]],
  ]);
  // Taken late: the loop (4 instructions) was translated without the cold code, which
  // then ran in the interpreter, once.
  const late = interpreterAndJit(program(100));
  assert.deepEqual(late.on.x, late.off.x, 'same registers as the interpreter');
  assert.equal(late.on.instret, late.off.instret, 'same instret as the interpreter');
  assert.equal(late.on.x[A2], 36n);
  assert.equal(late.on.translated, 4, 'only the loop was translated');
  // Taken at the first iteration, before the loop got hot: the code had run, and joined the region.
  const early = interpreterAndJit(program(200));
  assert.deepEqual(early.on.x, early.off.x, 'same registers as the interpreter');
  assert.equal(early.on.translated, 4 + 9, 'the loop and the code it branched to were translated');
});

/** Calls func 20 times (a0 += 1 each), patches its first instruction to a0 += 100, FENCE.I, calls it again. */
const smc = new Map<number, number[]>([
  [0x00, [
    auipc(T0, 0), addi(S0, 0, 20), addi(A0, 0, 0),
    /* 0x0c loop: */ jal(RA, 0x34), addi(S0, S0, -1), bne(S0, 0, -8),
    /* 0x18 */ lw(T1, T0, 0x80), sw(T1, T0, 0x40), FENCE_I, jal(RA, 0x40 - 0x24), WFI,
  ]],
  [0x40, [addi(A0, A0, 1), jalr(0, RA, 0)]],
  [0x80, [addi(A0, A0, 100)]],
]);

test('jit: self-modifying code (store, FENCE.I) runs the new instruction', () => {
  for (const jit of [false, true]) {
    const m = machine(jit, smc);
    runToWfi(m.hart);
    assert.equal(m.hart.x[A0], 120n, `jit=${jit}`);
    if (jit) {
      assert.ok(m.cpus.jit!.stats.blocks > 0, 'func was translated');
      assert.ok(m.cpus.jit!.stats.invalidations > 0, 'the store invalidated it');
      assert.match(m.cpus.jit!.report(), /^regions +[1-9]\d* \(\d+ blocks/m, 'info jit counts the regions');
    }
  }
});

test('jit: a device (DMA) write to translated code drops the stale block', () => {
  // Run the loop only (stop at the patch), patch through the device view of RAM, then call func again.
  const code = new Map(smc);
  code.set(0x18, [WFI, jal(RA, 0x40 - 0x1c), WFI]);
  const m = machine(true, code);
  runToWfi(m.hart);
  assert.equal(m.hart.x[A0], 20n);
  assert.ok(m.cpus.jit!.stats.blocks > 0);
  const mem = new CodeGuardMemory(new RegionGuestMemory([{ base: BASE, bytes: m.cpus.ram }]), m.cpus.jit!, BASE, m.cpus.ramHost);
  const patch = new Uint8Array(4);
  new DataView(patch.buffer).setUint32(0, addi(A0, A0, 100), true);
  // A device reading the code (a transfer out of guest RAM) leaves the translations alone...
  const invalidations = m.cpus.jit!.stats.invalidations;
  assert.ok(mem.contains(BASE, 0x100) && !mem.contains(BASE - 4, 8));
  assert.equal(mem.readView(BASE, 0x100)?.length, 0x100);
  assert.equal(m.cpus.jit!.stats.invalidations, invalidations);
  // ...one that may write drops them.
  assert.ok(mem.write(BASE + 0x40, patch));
  assert.equal(m.cpus.jit!.stats.invalidations, invalidations + 1);
  runToWfi(m.hart);
  assert.equal(m.hart.x[A0], 120n);
});

test('jit: -accel tcg,jit=on|off is parsed (absent: VIREO_JIT decides), other values are errors', async () => {
  const { parseCommandLine } = await import('../../src/system/cmdline.js');
  const accel = (...argv: string[]) => {
    const r = parseCommandLine(argv);
    assert.equal(r.kind, 'run');
    return (r as { options: { accel: unknown } }).options.accel;
  };
  assert.deepEqual(accel('-accel', 'tcg,jit=on'), { names: ['tcg'], thread: 'single', jit: true });
  assert.deepEqual(accel('-accel', 'tcg,thread=single,jit=off'), { names: ['tcg'], thread: 'single', jit: false });
  assert.deepEqual(accel('-accel', 'tcg'), { names: ['tcg'], thread: 'single' });
  assert.throws(() => parseCommandLine(['-accel', 'tcg,jit=yes']), /invalid 'jit' setting/);
});
