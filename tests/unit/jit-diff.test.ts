/**
 * Differential test of the JIT against the interpreter: random RV64IMC programs (with
 * some A, F/D and Zicsr), generated from a seeded PRNG, run on two machines, one with
 * the JIT at threshold 1 and small random run() budgets, one interpreting. Each program
 * is a list of sequences (straight code with forward branches, counted loops, calls
 * within and across pages, self-modifying code with FENCE.I) that end in ECALL; loads
 * and stores hit a data area across a page boundary (misaligned too) and an unmapped
 * address. The trap handler logs mcause, mepc, mtval, minstret and all x/f registers at
 * every checkpoint and fault and skips the instruction, so the log compares the state
 * after each sequence and at each precise trap; at the end the x/f registers, pc,
 * instret and the RAM the programs touch must match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { RiscvCpus, RunExit } from '../../src/target/riscv/cpu.js';

const BASE = 0x80000000;
const DATA = 0x22000; // x29: loads and stores reach DATA-1024..DATA+1023 (two pages)
const LOG = 0x100000; // x30: the trap handler's log
const LOG_ENTRY = 8 * (4 + 29 + 32);
const COMPARED = 0x200000; // bytes of RAM compared (code, data, log)
const FAULT_ADDR = 0x10000n; // x27: nothing is mapped there
// Registers: random code writes x2..x24 only. x1 = ra, x25/x26 = temporaries of the
// fixed sequences, x27 = faulting base, x28 = loop counter, x29 = data, x30/x31 = handler.
const RA = 1, T25 = 25, T26 = 26, XF = 27, XL = 28, XD = 29, XLOG = 30, XH = 31;

/** xorshift32: the same programs on every run. */
function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  const int = (n: number): number => next() % n;
  return { next, int, range: (lo: number, hi: number) => lo + int(hi - lo + 1), pick: <T>(a: readonly T[]): T => a[int(a.length)]!,
    u64: (): bigint => (BigInt(next()) << 32n) | BigInt(next()) };
}
type Rng = ReturnType<typeof prng>;

// Encoders.
const R = (op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const I = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const S = (op: number, f3: number, rs1: number, rs2: number, imm: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op) >>> 0;
const B = (f3: number, rs1: number, rs2: number, off: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
const JAL = (rd: number, off: number): number =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12) |
    (rd << 7) | 0x6f) >>> 0;
const U = (op: number, rd: number, imm20: number): number => (((imm20 & 0xfffff) << 12) | (rd << 7) | op) >>> 0;
const addi = (rd: number, rs1: number, imm: number): number => I(0x13, 0, rd, rs1, imm);
const csr = (f3: number, rd: number, rs1: number, n: number): number => I(0x73, f3, rd, rs1, n);
const CB = (f3: number, rs: number, o: number): number =>
  (f3 << 13) | (((o >> 8) & 1) << 12) | (((o >> 3) & 3) << 10) | ((rs - 8) << 7) | (((o >> 6) & 3) << 5) |
  (((o >> 1) & 3) << 3) | (((o >> 5) & 1) << 2) | 1;
const CJ = (o: number): number =>
  (5 << 13) | (((o >> 11) & 1) << 12) | (((o >> 4) & 1) << 11) | (((o >> 8) & 3) << 9) | (((o >> 10) & 1) << 8) |
  (((o >> 6) & 1) << 7) | (((o >> 7) & 1) << 6) | (((o >> 1) & 7) << 3) | (((o >> 5) & 1) << 2) | 1;
const CI = (f3: number, rd: number, imm: number, q: number): number =>
  (f3 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 31) << 2) | q;
const ECALL = 0x73, EBREAK = 0x100073, WFI = 0x10500073, FENCE_I = 0x100f, MRET = 0x30200073;
const [MSTATUS, MTVEC, MSCRATCH, MEPC, MCAUSE, MTVAL, MINSTRET, FFLAGS, FRM] =
  [0x300, 0x305, 0x340, 0x341, 0x342, 0x343, 0xb02, 0x001, 0x002];

/** One instruction (size 2 or 4) or a label (size 0); `enc` sees its pc and the labels. */
interface Item { size: 0 | 2 | 4; label?: string; enc?: (pc: number, at: (l: string) => number) => number }
const w = (v: number): Item => ({ size: 4, enc: () => v });
const h = (v: number): Item => ({ size: 2, enc: () => v });

class Gen {
  private labels = 0;
  constructor(private readonly r: Rng) {}
  label(): string { return `L${this.labels++}`; }
  rd(): number { return this.r.range(2, 24); }
  rs(): number { return this.r.int(32); }
  creg(): number { return this.r.range(8, 15); }
  simm(bits: number): number { return this.r.range(-(1 << (bits - 1)), (1 << (bits - 1)) - 1); }

  /** One random straight-line instruction (no control flow). */
  insn(): Item[] {
    const r = this.r;
    const k = r.int(100);
    if (k < 20) {
      const [f7, f3] = r.pick([[0, 0], [0x20, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0x20, 5], [0, 6], [0, 7],
        [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [1, 5], [1, 6], [1, 7]] as const);
      return [w(R(0x33, f3, f7, this.rd(), this.rs(), this.rs()))];
    }
    if (k < 28) {
      const [f7, f3] = r.pick([[0, 0], [0x20, 0], [0, 1], [0, 5], [0x20, 5], [1, 0], [1, 4], [1, 5], [1, 6], [1, 7]] as const);
      return [w(R(0x3b, f3, f7, this.rd(), this.rs(), this.rs()))];
    }
    if (k < 40) {
      const f3 = r.pick([0, 2, 3, 4, 6, 7, 1, 5, 5]);
      const imm = f3 === 1 ? r.int(64) : f3 === 5 ? r.int(64) | (r.int(2) << 10) : this.simm(12);
      return [w(I(0x13, f3, this.rd(), this.rs(), imm))];
    }
    if (k < 44) {
      const f3 = r.pick([0, 1, 5]);
      return [w(I(0x1b, f3, this.rd(), this.rs(), f3 === 0 ? this.simm(12) : r.int(32) | (f3 === 5 ? r.int(2) << 10 : 0)))];
    }
    if (k < 47) return [w(U(r.pick([0x37, 0x17]), this.rd(), r.next()))];
    if (k < 60) return [this.rvc()];
    if (k < 72) { // loads and stores around the data page boundary, any alignment
      const imm = r.range(-1024, 1023);
      return [r.int(2) ? w(I(0x03, r.int(7), this.rd(), XD, imm)) : w(S(0x23, r.int(4), XD, this.rs(), imm))];
    }
    if (k < 75) { // faulting load or store (precise trap, logged)
      const imm = r.range(0, 255);
      return [r.int(2) ? w(I(0x03, r.int(7), this.rd(), XF, imm)) : w(S(0x23, r.int(4), XF, this.rs(), imm))];
    }
    if (k < 80) return this.amo();
    if (k < 86) { // CSRs: scratch, counters, FP flags and rounding mode
      const c = r.pick([MSCRATCH, MINSTRET, 0xc02, FFLAGS, FRM]);
      if (c === MINSTRET || c === 0xc02) return [w(csr(2, this.rd(), 0, c))];
      if (c === FRM) return [w(csr(5, this.rd(), r.int(5), c))];
      return [w(csr(r.range(1, 3), this.rd(), this.rs(), c))];
    }
    return this.fp();
  }

  rvc(): Item {
    const r = this.r;
    switch (r.int(12)) {
      case 0: return h(CI(0, this.rd(), this.simm(6) || 1, 1)); // c.addi
      case 1: return h(CI(1, this.rd(), this.simm(6), 1)); // c.addiw
      case 2: return h(CI(2, this.rd(), this.simm(6), 1)); // c.li
      case 3: return h(CI(3, r.range(3, 24), this.simm(6) || 1, 1)); // c.lui
      case 4: return h(CI(4, (r.int(2) << 3) | (this.creg() - 8), r.range(1, 63), 1)); // c.srli / c.srai
      case 5: return h(CI(4, (2 << 3) | (this.creg() - 8), this.simm(6), 1)); // c.andi
      case 6: case 7: { // c.sub c.xor c.or c.and c.subw c.addw
        const wide = r.int(2);
        return h((4 << 13) | (wide << 12) | (3 << 10) | ((this.creg() - 8) << 7) | (r.int(wide ? 2 : 4) << 5) | ((this.creg() - 8) << 2) | 1);
      }
      case 8: return h(CI(0, this.rd(), r.range(1, 63), 2)); // c.slli
      case 9: case 10: return h((4 << 13) | (r.int(2) << 12) | (this.rd() << 7) | (r.range(1, 31) << 2) | 2); // c.mv / c.add
      default: return h(1); // c.nop
    }
  }

  amo(): Item[] {
    const r = this.r;
    const d = r.int(2);
    const off = (r.range(-100, 100) << 3) + (r.int(10) === 0 ? r.range(1, 7) : 0); // sometimes misaligned: a trap
    const at = w(addi(T26, XD, off));
    const amo = (f5: number, rd: number, rs2: number) => w(R(0x2f, 2 + d, f5 << 2, rd, T26, rs2));
    if (r.int(4) === 0) { // LR/SC, sometimes with a store in between
      const mid = r.int(2) ? [w(S(0x23, 3, XD, this.rs(), off))] : [];
      return [at, amo(2, this.rd(), 0), ...mid, amo(3, this.rd(), this.rs())];
    }
    return [at, amo(r.pick([0, 1, 4, 8, 0xc, 0x10, 0x14, 0x18, 0x1c]), this.rd(), this.rs())];
  }

  fp(): Item[] {
    const r = this.r;
    const fmt = r.int(2); // 0: single, 1: double
    const f = (): number => r.int(32);
    const rm = r.pick([0, 1, 2, 3, 4, 7]);
    switch (r.int(9)) {
      case 0: return [w(R(0x53, rm, (r.int(4) << 2) | fmt, f(), f(), f()))]; // fadd fsub fmul fdiv
      case 1: return [w(R(0x53, rm, 0x2c | fmt, f(), f(), 0))]; // fsqrt
      case 2: return [w(((f() << 27) | (fmt << 25) | (f() << 20) | (f() << 15) | (rm << 12) | (f() << 7) | r.pick([0x43, 0x47, 0x4b, 0x4f])) >>> 0)];
      case 3: return [w(R(0x53, r.int(3), 0x10 | fmt, f(), f(), f())), w(R(0x53, r.int(2), 0x14 | fmt, f(), f(), f()))];
      case 4: return [w(R(0x53, rm, 0x60 | fmt, this.rd(), f(), r.int(4))), w(R(0x53, rm, 0x68 | fmt, f(), this.rs(), r.int(4)))];
      case 5: return [w(R(0x53, 0, 0x70 | fmt, this.rd(), f(), 0)), w(R(0x53, 0, 0x78 | fmt, f(), this.rs(), 0))]; // fmv
      case 6: return [w(R(0x53, r.int(3), 0x50 | fmt, this.rd(), f(), f())), w(R(0x53, 1, 0x70 | fmt, this.rd(), f(), 0))];
      case 7: return [w(R(0x53, rm, 0x20 | fmt, f(), f(), 1 - fmt))]; // fcvt.s.d / fcvt.d.s
      default: { // FP loads and stores
        const imm = r.range(-1024, 1023);
        return [r.int(2) ? w(I(0x07, 2 + fmt, f(), XD, imm)) : w(S(0x27, 2 + fmt, XD, f(), imm))];
      }
    }
  }

  /** n random instructions with forward branches (compressed too) that skip a few of them. */
  block(n: number): Item[] {
    const r = this.r;
    const out: Item[] = [];
    const pending: { label: string; left: number }[] = [];
    for (let i = 0; i < n; i++) {
      if (r.int(8) === 0) {
        const l = this.label();
        pending.push({ label: l, left: r.range(1, 5) });
        const k = r.int(4);
        const f3 = r.pick([0, 1, 4, 5, 6, 7]), a = this.rs(), b = this.rs(), c = this.creg(), bz = r.int(2);
        out.push(k === 0 ? { size: 2, enc: (pc, at) => CB(6 + bz, c, at(l) - pc) }
          : k === 1 && r.int(3) === 0 ? { size: 2, enc: (pc, at) => CJ(at(l) - pc) }
          : { size: 4, enc: (pc, at) => B(f3, a, b, at(l) - pc) });
      } else {
        out.push(...this.insn());
      }
      for (const p of pending) if (--p.left === 0) out.push({ size: 0, label: p.label });
      pending.splice(0, pending.length, ...pending.filter((p) => p.left > 0));
    }
    for (const p of pending) out.push({ size: 0, label: p.label });
    return out;
  }

  /** `n` times `body` with x28 as the counter. */
  loop(n: number, body: Item[]): Item[] {
    const l = this.label();
    return [w(addi(XL, 0, n)), { size: 0, label: l }, ...body, w(addi(XL, XL, -1)), { size: 4, enc: (pc, at) => B(1, XL, 0, at(l) - pc) }];
  }
}

/** A random program: code at RAM offset 0, subroutines after it, then the handler. */
function program(seed: number): { bytes: Uint8Array; handler: number } {
  const r = prng(seed);
  const g = new Gen(r);
  const main: Item[] = [w(csr(1, 0, T26, MTVEC)), w(csr(2, 0, T25, MSTATUS))];
  const subs: Item[] = [];
  const call = (l: string): Item[] => r.int(2)
    ? [{ size: 4, enc: (pc, at) => JAL(RA, at(l) - pc) }]
    : [{ size: 4, enc: (pc, at) => U(0x17, T26, (at(l) - pc + 0x800) >> 12) },
      { size: 4, enc: (pc, at) => I(0x67, 0, RA, T26, at(l) - pc + 4) }]; // auipc + jalr
  const aligned = (l: string): Item[] => [{ size: 0, label: `${l}pad` }, { size: 0, label: l }];
  const nseq = r.range(10, 25);
  for (let s = 0; s < nseq; s++) {
    switch (r.int(5)) {
      case 0: main.push(...g.block(r.range(5, 40))); break;
      case 1: main.push(...g.loop(r.range(1, 40), g.block(r.range(3, 25)))); break;
      case 2: { // a subroutine (far away, maybe on another page) called in a loop
        const l = g.label();
        subs.push(...aligned(l), ...g.block(r.range(3, 20)), w(I(0x67, 0, 0, RA, 0)));
        main.push(...g.loop(r.range(1, 30), [...g.block(r.range(0, 6)), ...call(l)]));
        break;
      }
      case 3: { // self-modifying code: call f, patch its first instruction, FENCE.I, call it again
        const l = g.label(), rd = g.rd();
        subs.push(...aligned(l), w(addi(rd, rd, g.simm(12))), ...g.block(r.range(0, 8)), w(I(0x67, 0, 0, RA, 0)));
        const patch = r.int(2) ? addi(rd, rd, g.simm(12)) : R(0x33, 0, 0, rd, rd, g.rs());
        main.push(...g.loop(r.range(1, 20), call(l)),
          { size: 4, enc: (pc, at) => U(0x17, T26, (at(l) - pc + 0x800) >> 12) },
          { size: 4, enc: (pc, at) => addi(T26, T26, at(l) - pc + 4) },
          w(U(0x37, T25, (patch + 0x800) >>> 12)), w(addi(T25, T25, patch & 0xfff)), w(S(0x23, 2, T26, T25, 0)),
          w(FENCE_I), ...g.loop(r.range(1, 20), call(l)));
        break;
      }
      default: main.push(w(r.int(4) ? ECALL : EBREAK)); break;
    }
    main.push(w(ECALL)); // checkpoint
  }
  main.push(w(WFI));
  // The handler: log the cause, pc, tval, instret and all registers, skip the instruction.
  const handler: Item[] = [{ size: 0, label: 'handlerpad' }, { size: 0, label: 'handler' }];
  [MCAUSE, MEPC, MTVAL, MINSTRET].forEach((c, i) => handler.push(w(csr(2, XH, 0, c)), w(S(0x23, 3, XLOG, XH, 8 * i))));
  for (let i = 1; i <= 29; i++) handler.push(w(S(0x23, 3, XLOG, i, 8 * (3 + i))));
  for (let i = 0; i < 32; i++) handler.push(w(S(0x27, 3, XLOG, i, 8 * (33 + i))));
  handler.push(w(addi(XLOG, XLOG, LOG_ENTRY)), w(csr(2, XH, 0, MEPC)), w(addi(XH, XH, 4)), w(csr(1, 0, XH, MEPC)), w(MRET));
  const items = [...main, ...subs, ...handler];
  // Lay out (labels ending in "pad" get a c.nop when not 4-byte aligned), then encode.
  const addr = new Map<string, number>();
  let pc = 0;
  const sized = items.flatMap((it) => it.label?.endsWith('pad') ? (pc % 4 ? (pc += 2, [h(1)]) : []) : (it.label && addr.set(it.label, pc), pc += it.size, [it]));
  const bytes = new Uint8Array(pc);
  const dv = new DataView(bytes.buffer);
  pc = 0;
  const at = (l: string): number => addr.get(l)!;
  for (const it of sized) {
    if (it.size === 4) dv.setUint32(pc, it.enc!(pc, at), true);
    else if (it.size === 2) dv.setUint16(pc, it.enc!(pc, at), true);
    pc += it.size;
  }
  assert.ok(pc < DATA - 1024, 'the code stays below the data');
  return { bytes, handler: at('handler') };
}

function runProgram(seed: number, jit: boolean) {
  const { bytes, handler } = program(seed);
  const cpus = new RiscvCpus({ ramBase: BASE, ramSize: 64 << 20, romBase: 0x1000, romSize: 0x1000 }, 1, new AddressSpace(), () => 0,
    jit ? { threshold: 1 } : null);
  cpus.ram.set(bytes);
  const r = prng(seed ^ 0x9e3779b9);
  for (let i = 0; i < 0x800; i++) cpus.ram[DATA - 0x400 + i] = r.int(256);
  const hart = cpus.harts[0]!;
  hart.reset(BASE);
  for (let i = 1; i < 32; i++) hart.x[i] = r.u64();
  for (let i = 0; i < 32; i++) hart.f[i] = r.int(3) ? r.u64() : r.int(2) ? 0xffffffff00000000n | BigInt(r.next()) : BigInt(r.next()) << 20n;
  hart.x[T26] = BigInt(BASE + handler);
  hart.x[T25] = 0x6000n; // mstatus.FS
  hart.x[XF] = FAULT_ADDR;
  hart.x[XD] = BigInt(BASE + DATA);
  hart.x[XLOG] = BigInt(BASE + LOG);
  let done = false;
  while (!done && hart.instret < 1_000_000) done = hart.run(jit ? r.range(1, 300) : 100_000) === RunExit.Wfi;
  assert.ok(done, `seed ${seed}: the program reached WFI (jit=${jit})`);
  return { x: [...hart.x], f: [...hart.f], pc: hart.pc, instret: hart.instret, ram: cpus.ram.slice(0, COMPARED),
    log: Number(hart.x[XLOG]! - BigInt(BASE + LOG)) / LOG_ENTRY, stats: cpus.jit?.stats };
}

/** Where two logs first differ: entry and field (cause, epc, tval, instret, x1.., f0..). */
function firstDiff(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (i < LOG) return `RAM offset 0x${i.toString(16)}`;
    const e = Math.floor((i - LOG) / LOG_ENTRY), f = Math.floor(((i - LOG) % LOG_ENTRY) / 8);
    return `log entry ${e}, ${f < 4 ? ['mcause', 'mepc', 'mtval', 'minstret'][f] : f < 33 ? `x${f - 3}` : `f${f - 33}`}`;
  }
  return 'nowhere';
}

test('jit: random programs give the interpreter\'s registers, memory, pc, instret and traps', () => {
  let blocks = 0, entries = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const off = runProgram(seed, false);
    const on = runProgram(seed, true);
    const where = `seed ${seed}: `;
    assert.ok(off.log > 10 && off.log < (COMPARED - LOG) / LOG_ENTRY, `${where}checkpoints logged: ${off.log}`);
    assert.equal(on.log, off.log, `${where}as many checkpoints and traps`);
    assert.ok(Buffer.compare(on.ram, off.ram) === 0, `${where}RAM differs at ${firstDiff(on.ram, off.ram)}`);
    assert.deepEqual(on.x, off.x, `${where}x registers`);
    assert.deepEqual(on.f, off.f, `${where}f registers`);
    assert.equal(on.pc, off.pc, `${where}pc`);
    assert.equal(on.instret, off.instret, `${where}instret`);
    blocks += on.stats!.blocks;
    entries += off.log;
  }
  assert.ok(blocks > 1000, `blocks translated: ${blocks}`);
  assert.ok(entries > 1000, `checkpoints and traps compared: ${entries}`);
});
