/**
 * The RISC-V → WebAssembly region translator. A region is the code of one guest
 * page reachable from a hot pc through branches, jumps and call return points
 * that stay in the page, cut into basic blocks (at most MAX_INSNS instructions in
 * all). It becomes one function `(entry: i32, budget: i32) => i64` that starts at
 * block `entry`, runs until it leaves the region and returns the next pc (see
 * src/target/riscv/core/jit.ts for the calling convention):
 *
 * - the blocks sit in a `loop` around a `br_table` on the block index, in address
 *   order: a block falls into the next one for free, a forward branch is a `br`
 *   straight to its target, a backward one goes through the `br_table`;
 * - the x registers live in the hart block: each block loads the ones it reads
 *   into locals and stores the ones it wrote wherever it leaves;
 * - each block counts its instructions when it starts and leaves the region
 *   instead if they would exceed `budget`, so instret stays exact and a loop
 *   returns to the dispatcher in bounded time;
 * - loads and stores probe the soft TLB inline (entry = tag, host - vaddr); a miss,
 *   a misaligned access or a write to a page holding code calls the core's
 *   slow-path helper, which may trap (the registers are then those before the
 *   faulting instruction, S.pc the trap vector) or ask to stop (an interrupt may
 *   be pending, code was written): the region then leaves after the instruction.
 *
 * Translated: RV64I integer computation, loads and stores, branches, JAL/JALR,
 * FENCE, M (MULH*, DIV*, REM* through a helper), and their compressed forms. CSR,
 * AMO and F/D instructions run in the interpreter from inside the region (jitExec);
 * the region exits at the other system instructions and FENCE.I.
 */
import { Bytes, Op, I32, I64, VOID, F_LD, F_ST, F_MD, F_EX, F_CHAIN, callHelper } from './wasm.js';

/** Most guest instructions in one region. */
export const MAX_INSNS = 512;

// Locals: 0 entry (param, then the block to go to), 1 budget (param), 2..32 x1..x31, then scratch.
const L_ENTRY = 0;
const L_BUDGET = 1;
const xl = (r: number): number => r + 1;
const L_ADDR = 33;
const L_NPC = 34;
const L_E = 35;
const L_TLBR = 36;
const L_TLBW = 37;
const L_CNT = 38;
const LOCALS: [number, number][] = [[33, I64], [4, I32]];
/** JIT_FLAG value of a helper whose instruction trapped (core/jit.ts). */
const FLAG_TRAP = 1;

/** Where the translator finds things in linear memory. */
export interface TranslateEnv {
  /** 16-bit view of the whole linear memory. */
  mem16: Uint16Array;
  /** 32-bit view of the whole linear memory. */
  mem32: Uint32Array;
  /** Host address of the RVC expansion table. */
  rvcTable: number;
  /** Host address of this hart's block (x registers at offset 0). */
  hb: number;
  /** Offset of the JIT words in the hart block (count, flag, tlbR, tlbW, tlbX). */
  offJit: number;
  /** Host address and index mask of this hart's hash table of region entry points (core/jitmap.ts hashSlot). */
  hashBase: number;
  hashMask: number;
}

export interface Translated {
  locals: [number, number][];
  code: Bytes;
  /** Guest instructions in the region. */
  count: number;
  /** Page offsets of its blocks, by block index: each is an entry point. */
  starts: number[];
  /** The guest code it was made from, as [page offset, length] pairs. */
  ranges: [number, number][];
}

interface Insn {
  insn: number;
  off: number;
  len: number;
}

/**
 * Decides whether `insn` (32-bit form) is translated ('yes'), ends a block ('end'),
 * is run by the interpreter from inside the region ('exec': CSR, AMO, F/D; none of
 * them jumps), or leaves the region ('no').
 */
function classify(insn: number): 'no' | 'yes' | 'end' | 'exec' {
  const f3 = (insn >>> 12) & 7;
  const f7 = insn >>> 25;
  switch ((insn >>> 2) & 31) {
    case 0x01: case 0x09: case 0x0b: case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: return 'exec';
    case 0x1c: return f3 === 0 || f3 === 4 ? 'no' : 'exec';
    case 0x00: return f3 === 7 ? 'no' : 'yes';
    case 0x03: return f3 === 0 ? 'yes' : 'no'; // FENCE.I is interpreted
    case 0x04: {
      const f6 = insn >>> 26;
      return (f3 === 1 && f6 !== 0) || (f3 === 5 && f6 !== 0 && f6 !== 0x10) ? 'no' : 'yes';
    }
    case 0x05: case 0x0d: return 'yes';
    case 0x06:
      return f3 === 0 || (f3 === 1 && f7 === 0) || (f3 === 5 && (f7 === 0 || f7 === 0x20)) ? 'yes' : 'no';
    case 0x08: return f3 > 3 ? 'no' : 'yes';
    case 0x0c: return f7 === 0 || f7 === 1 || (f7 === 0x20 && (f3 === 0 || f3 === 5)) ? 'yes' : 'no';
    case 0x0e:
      if (f7 === 0) return f3 === 0 || f3 === 1 || f3 === 5 ? 'yes' : 'no';
      if (f7 === 0x20) return f3 === 0 || f3 === 5 ? 'yes' : 'no';
      return f7 === 1 && (f3 === 0 || f3 >= 4) ? 'yes' : 'no';
    case 0x18: return f3 === 2 || f3 === 3 ? 'no' : 'end';
    case 0x19: return f3 === 0 ? 'end' : 'no';
    case 0x1b: return 'end';
    default: return 'no';
  }
}

const branchImm = (insn: number): number =>
  ((insn & 0x80000000) >> 19) | ((insn & 0x80) << 4) | ((insn >>> 20) & 0x7e0) | ((insn >>> 7) & 0x1e);
const jalImm = (insn: number): number =>
  ((insn & 0x80000000) >> 11) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);

/** The x registers an 'exec' instruction reads, and whether rd is an x register it writes. */
function execRegs(insn: number): { srcs: number[]; xDest: boolean } {
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const f5 = insn >>> 27;
  switch ((insn >>> 2) & 31) {
    case 0x1c: return { srcs: (insn >>> 12) & 4 ? [] : [rs1], xDest: true };
    case 0x0b: return { srcs: [rs1, rs2], xDest: true };
    case 0x01: case 0x09: return { srcs: [rs1], xDest: false };
    // OP-FP: FCVT from and FMV from an integer read rs1; compares, FCVT to and FMV to an integer write rd.
    case 0x14: return { srcs: f5 === 0x1a || f5 === 0x1e ? [rs1] : [], xDest: f5 === 0x14 || f5 === 0x18 || f5 === 0x1c };
    default: return { srcs: [], xDest: false };
  }
}

/** The x registers `insn` (translated or 'exec') reads, and the one it writes (0: none). */
function regsOf(insn: number): { reads: number[]; write: number } {
  const rd = (insn >>> 7) & 31;
  if (classify(insn) === 'exec') {
    const { srcs, xDest } = execRegs(insn);
    return { reads: srcs, write: xDest ? rd : 0 };
  }
  const op = (insn >>> 2) & 31;
  const reads: number[] = [];
  if (op !== 0x05 && op !== 0x0d && op !== 0x1b && op !== 0x03) reads.push((insn >>> 15) & 31);
  if (op === 0x08 || op === 0x0c || op === 0x0e || op === 0x18) reads.push((insn >>> 20) & 31);
  return { reads, write: op !== 0x08 && op !== 0x18 && op !== 0x03 ? rd : 0 };
}

/**
 * Finds the region of the page at host address `page` reachable from page offset
 * `entry`: the translated instructions by offset and the block starts (sorted).
 * It stops at `taken`, the block starts of the page's other regions (jumps there
 * leave to them), and resumes after an instruction it does not translate (the
 * interpreter runs that one and returns there). Returns null if the instruction
 * at `entry` is not translated.
 */
function explore(env: TranslateEnv, page: number, entry: number, taken: ReadonlySet<number>): { code: Map<number, Insn>; starts: number[] } | null {
  const code = new Map<number, Insn>();
  /** Offsets of the second halves of 32-bit instructions: a jump there is not followed. */
  const halves = new Set<number>();
  /** The translated instruction at `off`; a number: the length of an instruction not translated; null: none. */
  const fetch = (off: number): Insn | number | null => {
    if (off < 0 || off > 0xffe || halves.has(off)) return null;
    const lo = env.mem16[(page + off) >>> 1];
    if ((lo & 3) !== 3) {
      const insn = env.mem32[(env.rvcTable + lo * 4) >>> 2];
      return insn === 0xffffffff || classify(insn) === 'no' ? 2 : { insn, off, len: 2 };
    }
    if (off > 0xffc || code.has(off + 2)) return null; // crosses the page, or overlaps decoded code
    const insn = (lo | (env.mem16[(page + off + 2) >>> 1] << 16)) >>> 0;
    return classify(insn) === 'no' ? 4 : { insn, off, len: 4 };
  };
  const isInsn = (i: Insn | number | null): i is Insn => typeof i === 'object' && i !== null;
  if (!isInsn(fetch(entry))) return null;
  const starts = new Set<number>([entry]);
  const queue = [entry];
  const target = (off: number): void => {
    if (starts.has(off) || taken.has(off)) return;
    if (code.has(off)) starts.add(off); // splits a decoded run
    else if (code.size < MAX_INSNS && isInsn(fetch(off))) {
      starts.add(off);
      queue.push(off);
    }
  };
  for (let q = 0; q < queue.length; q++) {
    for (let off = queue[q]!; code.size < MAX_INSNS;) {
      if (code.has(off)) {
        starts.add(off); // the run falls into decoded code: a block starts there
        break;
      }
      if (off !== queue[q] && taken.has(off)) break;
      const i = fetch(off);
      if (!isInsn(i)) {
        if (i !== null) target(off + i);
        break;
      }
      code.set(off, i);
      if (i.len === 4) halves.add(off + 2);
      const op = (i.insn >>> 2) & 31;
      if (op === 0x18) {
        target(off + branchImm(i.insn));
        target(off + i.len);
        break;
      }
      if (op === 0x1b) {
        target(off + jalImm(i.insn));
        if (((i.insn >>> 7) & 31) !== 0) target(off + i.len); // where the call returns
        break;
      }
      if (op === 0x19) break;
      off += i.len;
    }
  }
  return { code, starts: [...starts].filter((s) => code.has(s)).sort((a, b) => a - b) };
}

/**
 * Chaining, at the end of the exit path: tail-calls the region block entered at the next
 * pc (L_NPC) with the rest of the budget, as the dispatcher would (core/jit.ts runJit),
 * unless a helper raised a flag (a trap, or something the dispatcher must look at), the
 * region ran nothing (its first block did not fit in the budget), the budget is spent,
 * or the block is not in the hash table for the page the fetch TLB now maps the pc to.
 * Falls through to return the pc otherwise. Uses L_E (TLB entry, then
 * hash entry), L_TLBR (host address) and L_TLBW (table index) as scratch.
 */
function chain(b: Bytes, env: TranslateEnv): void {
  const { hb, offJit } = env;
  b.op(Op.Block).byte(VOID);
  b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 4).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Eqz).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_BUDGET).op(Op.LocalGet).u32(L_CNT).op(Op.I32Sub).op(Op.LocalTee).u32(L_BUDGET)
    .op(Op.I32Eqz).op(Op.BrIf).u32(0);
  // The fetch TLB entry of the pc (set of the current privilege, passed by the dispatcher).
  b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 16)
    .op(Op.LocalGet).u32(L_NPC).op(Op.I64Const).i64(12, 0).op(Op.I64ShrU).op(Op.I32WrapI64)
    .op(Op.I32Const).i32(255).op(Op.I32And).op(Op.I32Const).i32(4).op(Op.I32Shl).op(Op.I32Add).op(Op.LocalTee).u32(L_E)
    .mem(Op.I64Load, 0).op(Op.LocalGet).u32(L_NPC).op(Op.I64Const).i64(-4096, -1).op(Op.I64And).op(Op.I64Ne).op(Op.BrIf).u32(0);
  // A 32-bit instruction in the last halfword of a page is fetched by the interpreter.
  b.op(Op.LocalGet).u32(L_NPC).op(Op.I32WrapI64).op(Op.I32Const).i32(0xfff).op(Op.I32And).op(Op.I32Const).i32(0xffe)
    .op(Op.I32GtU).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_NPC).op(Op.LocalGet).u32(L_E).mem(Op.I64Load, 8).op(Op.I64Add).op(Op.I32WrapI64).op(Op.LocalSet).u32(L_TLBR);
  // Its hash entry: pc, host address where the block starts, table index (> 0), block index.
  b.op(Op.LocalGet).u32(L_NPC).op(Op.I32WrapI64).op(Op.I32Const).i32(1).op(Op.I32ShrU)
    .op(Op.LocalGet).u32(L_NPC).op(Op.I64Const).i64(13, 0).op(Op.I64ShrU).op(Op.I32WrapI64).op(Op.I32Xor)
    .op(Op.I32Const).i32(env.hashMask).op(Op.I32And).op(Op.I32Const).i32(5).op(Op.I32Shl)
    .op(Op.I32Const).i32(env.hashBase).op(Op.I32Add).op(Op.LocalTee).u32(L_E)
    .mem(Op.I64Load, 0).op(Op.LocalGet).u32(L_NPC).op(Op.I64Ne).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_E).mem(Op.I32Load, 8).op(Op.LocalGet).u32(L_TLBR).op(Op.I32Ne).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_E).mem(Op.I32Load, 12).op(Op.LocalTee).u32(L_TLBW).op(Op.I32Const).i32(0).op(Op.I32LeS).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_E).mem(Op.I32Load, 16).op(Op.LocalGet).u32(L_BUDGET).op(Op.LocalGet).u32(L_TLBW);
  callHelper(b, F_CHAIN, true);
  b.op(Op.End);
}

/**
 * Translates the region of the guest page at (pageLo, pageHi), host address `page`,
 * that starts at page offset `entry` (`taken`: block starts of the page's other
 * regions), or returns null if its first instruction is not translated.
 */
export function translate(env: TranslateEnv, pageLo: number, pageHi: number, page: number, entry: number,
  taken: ReadonlySet<number>): Translated | null {
  const found = explore(env, page, entry, taken);
  if (!found) return null;
  const { code, starts } = found;
  const index = new Map<number, number>();
  starts.forEach((s, i) => index.set(s, i));
  // The blocks: from each start to its terminator or the next start.
  const blocks: Insn[][] = starts.map((s) => {
    const insns: Insn[] = [];
    for (let off = s; ;) {
      const i = code.get(off)!;
      insns.push(i);
      const op = (i.insn >>> 2) & 31;
      off += i.len;
      if (op === 0x18 || op === 0x19 || op === 0x1b || !code.has(off) || index.has(off)) break;
    }
    return insns;
  });
  const { hb, offJit } = env;
  const b = new Bytes();
  let memOps = false;
  for (const i of code.values()) {
    const op = (i.insn >>> 2) & 31;
    if (op === 0x00 || op === 0x08) memOps = true;
  }
  if (memOps) {
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 8).op(Op.LocalSet).u32(L_TLBR);
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 12).op(Op.LocalSet).u32(L_TLBW);
  }
  const N = blocks.length;
  // block $exit; loop $top; block $b(N-1) ... block $b0; br_table; end $b0; <block 0>; end $b1; <block 1> ...
  b.op(Op.Block).byte(VOID).op(Op.Loop).byte(VOID);
  for (let i = 0; i < N; i++) b.op(Op.Block).byte(VOID);
  b.op(Op.LocalGet).u32(L_ENTRY).op(Op.BrTable).u32(N);
  for (let i = 0; i < N; i++) b.u32(i);
  b.u32(N + 1); // out of range: leave (never happens)
  /** Labels opened inside the current block's code (ifs). */
  let nest = 0;
  let cur = 0;
  const toTop = (): number => N - 1 - cur + nest;
  const toExit = (): number => N - cur + nest;
  /** The 64-bit constant page base + `off` (off may lie outside the page). */
  const pcConst = (off: number): void => {
    const lo = pageLo + off;
    const carry = Math.floor(lo / 0x100000000);
    b.op(Op.I64Const).i64(lo >>> 0, (pageHi + carry) | 0);
  };
  const get = (r: number): void => {
    if (r === 0) b.op(Op.I64Const).i64(0, 0);
    else b.op(Op.LocalGet).u32(xl(r));
  };
  /**
   * Guest registers live in the hart block between blocks: a block loads the ones it
   * reads into locals when it starts and stores the ones it wrote (`dirty`) wherever it
   * leaves, so no local is live across blocks. Entering a region then costs nothing per
   * register, and V8 no longer juggles up to 31 live locals across a large region.
   */
  const dirty = new Set<number>();
  const set = (r: number): void => {
    if (r === 0) {
      b.op(Op.Drop);
    } else {
      b.op(Op.LocalSet).u32(xl(r));
      dirty.add(r);
    }
  };
  /** Stores x[r]'s local into the hart block. */
  const store = (r: number): void => {
    b.op(Op.I32Const).i32(hb).op(Op.LocalGet).u32(xl(r)).mem(Op.I64Store, r * 8);
  };
  /** Stores the block's written registers; `clear` on the block's own path (not on a side exit). */
  const flush = (clear: boolean): void => {
    for (const r of dirty) store(r);
    if (clear) dirty.clear();
  };
  /** Leaves the region with next pc page base + `off`. */
  const exitTo = (off: number): void => {
    pcConst(off);
    b.op(Op.LocalSet).u32(L_NPC).op(Op.Br).u32(toExit());
  };
  /** Goes to the block at `off` if the region has it, else leaves. */
  const jump = (off: number): void => {
    const j = index.get(off);
    if (j === undefined) return exitTo(off);
    if (j === cur + 1 && nest === 0) return; // the next block: fall into it
    // A later block starts at the end of its label (inside this one): branch straight there.
    if (j > cur) {
      b.op(Op.Br).u32(j - cur - 1 + nest);
      return;
    }
    b.op(Op.I32Const).i32(j).op(Op.LocalSet).u32(L_ENTRY).op(Op.Br).u32(toTop());
  };
  /** Gives back the count of the instructions after the k-th of a block of n. */
  const uncount = (k: number, n: number): void => {
    if (n - k - 1 > 0) b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Const).i32(n - k - 1).op(Op.I32Sub).op(Op.LocalSet).u32(L_CNT);
  };
  /**
   * After a helper call: if it trapped or asked to stop, leave after this instruction
   * (the k-th of n); `done` completes the instruction when it only asked to stop.
   */
  const flagCheck = (k: number, n: number, next: number, done?: () => void): void => {
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 4).op(Op.If).byte(VOID);
    nest++;
    // What the block wrote before this instruction (after a trap, the destination's local
    // may never have been loaded: it must not be stored).
    const before = new Set(dirty);
    if (done) {
      b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 4).op(Op.I32Const).i32(FLAG_TRAP).op(Op.I32Ne).op(Op.If).byte(VOID);
      done();
      for (const r of dirty) if (!before.has(r)) store(r);
      b.op(Op.End);
      dirty.clear();
      for (const r of before) dirty.add(r);
    }
    flush(false);
    uncount(k, n); // a faulting instruction counts, as in the interpreter
    exitTo(next);
    nest--;
    b.op(Op.End);
  };
  /** ADDR = x[rs1] + imm; E = TLB entry; pushes the hit condition (tag matches, aligned). */
  const tlbProbe = (rs1: number, imm: number, tlb: number, size: number): void => {
    get(rs1);
    if (imm !== 0) b.op(Op.I64Const).i64(imm, imm < 0 ? -1 : 0).op(Op.I64Add);
    b.op(Op.LocalTee).u32(L_ADDR);
    b.op(Op.I64Const).i64(8, 0).op(Op.I64ShrU).op(Op.I32WrapI64).op(Op.I32Const).i32(0xff0).op(Op.I32And)
      .op(Op.LocalGet).u32(tlb).op(Op.I32Add).op(Op.LocalTee).u32(L_E).mem(Op.I64Load, 0);
    // A misaligned address keeps low bits and misses: the slow path handles it (and page crossings).
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.I64Const).i64(-4096 | (size - 1), -1).op(Op.I64And).op(Op.I64Eq);
  };
  const hostAddr = (): void => {
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.LocalGet).u32(L_E).mem(Op.I64Load, 8).op(Op.I64Add).op(Op.I32WrapI64);
  };
  const LOADS = [Op.I64Load8S, Op.I64Load16S, Op.I64Load32S, Op.I64Load, Op.I64Load8U, Op.I64Load16U, Op.I64Load32U];
  const STORES = [Op.I64Store8, Op.I64Store16, Op.I64Store32, Op.I64Store];
  for (cur = 0; cur < N; cur++) {
    const insns = blocks[cur]!;
    const n = insns.length;
    b.op(Op.End); // of $b<cur>
    // Count the block; leave before it if it does not fit in the budget.
    b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Const).i32(n).op(Op.I32Add).op(Op.LocalTee).u32(L_CNT)
      .op(Op.LocalGet).u32(L_BUDGET).op(Op.I32GtU).op(Op.If).byte(VOID);
    nest++;
    uncount(-1, n);
    exitTo(starts[cur]!);
    nest--;
    b.op(Op.End);
    // Load what the block reads before writing it.
    const loaded = new Set<number>([0]);
    const written = new Set<number>();
    for (const { insn } of insns) {
      const { reads, write } = regsOf(insn);
      for (const r of reads) if (!written.has(r)) loaded.add(r);
      written.add(write);
    }
    dirty.clear();
    for (const r of loaded) if (r !== 0) b.op(Op.I32Const).i32(hb).mem(Op.I64Load, r * 8).op(Op.LocalSet).u32(xl(r));
    insns.forEach(({ insn, off, len }, k) => {
      const rd = (insn >>> 7) & 31;
      const rs1 = (insn >>> 15) & 31;
      const rs2 = (insn >>> 20) & 31;
      const f3 = (insn >>> 12) & 7;
      const f7 = insn >>> 25;
      const immI = insn >> 20;
      const next = off + len;
      const last = k === n - 1;
      switch ((insn >>> 2) & 31) {
        case 0x00: { // LOAD
          tlbProbe(rs1, immI, L_TLBR, 1 << (f3 & 3));
          b.op(Op.If).byte(I64);
          hostAddr();
          b.mem(LOADS[f3]!, 0);
          b.op(Op.Else);
          nest++;
          b.op(Op.LocalGet).u32(L_ADDR).op(Op.I32Const).i32(f3);
          pcConst(off);
          callHelper(b, F_LD);
          b.op(Op.LocalSet).u32(L_NPC);
          flagCheck(k, n, next, () => {
            b.op(Op.LocalGet).u32(L_NPC);
            set(rd);
          });
          b.op(Op.LocalGet).u32(L_NPC);
          nest--;
          b.op(Op.End);
          set(rd);
          break;
        }
        case 0x03: // FENCE
          // Ordering W before R needs a host fence when harts run on several threads, as in
          // the interpreter (exec.ts): an atomic read-modify-write of a private word (+0 to the count).
          if ((insn & 0xf1200000) === 0x01200000) {
            b.op(Op.I32Const).i32(hb + offJit).op(Op.I32Const).i32(0);
            b.byte(0xfe).byte(0x1e).byte(2).u32(0); // i32.atomic.rmw.add align=4 offset=0
            b.op(Op.Drop);
          }
          break;
        case 0x04: { // OP-IMM
          const f6 = insn >>> 26;
          get(rs1);
          if (f3 === 1 || f3 === 5) b.op(Op.I64Const).i64(immI & 63, 0);
          else b.op(Op.I64Const).i64(immI, immI < 0 ? -1 : 0);
          switch (f3) {
            case 0: b.op(Op.I64Add); break;
            case 1: b.op(Op.I64Shl); break;
            case 2: b.op(Op.I64LtS).op(Op.I64ExtendI32U); break;
            case 3: b.op(Op.I64LtU).op(Op.I64ExtendI32U); break;
            case 4: b.op(Op.I64Xor); break;
            case 5: b.op(f6 === 0 ? Op.I64ShrU : Op.I64ShrS); break;
            case 6: b.op(Op.I64Or); break;
            default: b.op(Op.I64And);
          }
          set(rd);
          break;
        }
        case 0x05: // AUIPC
          pcConst(off + ((insn & 0xfffff000) | 0));
          set(rd);
          break;
        case 0x0d: { // LUI
          const v = (insn & 0xfffff000) | 0;
          b.op(Op.I64Const).i64(v, v < 0 ? -1 : 0);
          set(rd);
          break;
        }
        case 0x06: // OP-IMM-32
          get(rs1);
          b.op(Op.I32WrapI64);
          if (f3 === 0) b.op(Op.I32Const).i32(immI).op(Op.I32Add);
          else b.op(Op.I32Const).i32(rs2).op(f3 === 1 ? Op.I32Shl : f7 === 0 ? Op.I32ShrU : Op.I32ShrS);
          b.op(Op.I64ExtendI32S);
          set(rd);
          break;
        case 0x08: { // STORE
          const imm = ((insn >> 20) & ~0x1f) | ((insn >>> 7) & 0x1f);
          tlbProbe(rs1, imm, L_TLBW, 1 << f3);
          b.op(Op.If).byte(VOID);
          hostAddr();
          get(rs2);
          b.mem(STORES[f3]!, 0);
          b.op(Op.Else);
          nest++;
          b.op(Op.LocalGet).u32(L_ADDR);
          get(rs2);
          b.op(Op.I32Const).i32(1 << f3);
          pcConst(off);
          callHelper(b, F_ST);
          flagCheck(k, n, next);
          nest--;
          b.op(Op.End);
          break;
        }
        case 0x0c: // OP
          get(rs1);
          get(rs2);
          if (f7 === 1) {
            if (f3 === 0) b.op(Op.I64Mul);
            else {
              b.op(Op.I32Const).i32(f3);
              callHelper(b, F_MD);
            }
          } else if (f7 === 0x20) {
            b.op(f3 === 0 ? Op.I64Sub : Op.I64ShrS);
          } else {
            b.op([Op.I64Add, Op.I64Shl, Op.I64LtS, Op.I64LtU, Op.I64Xor, Op.I64ShrU, Op.I64Or, Op.I64And][f3]!);
            if (f3 === 2 || f3 === 3) b.op(Op.I64ExtendI32U);
          }
          set(rd);
          break;
        case 0x0e: // OP-32
          if (f7 === 1 && f3 !== 0) {
            get(rs1);
            get(rs2);
            b.op(Op.I32Const).i32(8 + f3);
            callHelper(b, F_MD);
          } else {
            get(rs1);
            b.op(Op.I32WrapI64);
            get(rs2);
            b.op(Op.I32WrapI64);
            if (f7 === 1) b.op(Op.I32Mul);
            else if (f7 === 0x20) b.op(f3 === 0 ? Op.I32Sub : Op.I32ShrS);
            else b.op(f3 === 0 ? Op.I32Add : f3 === 1 ? Op.I32Shl : Op.I32ShrU);
            b.op(Op.I64ExtendI32S);
          }
          set(rd);
          break;
        case 0x18: // BRANCH: ends the block
          flush(true);
          get(rs1);
          get(rs2);
          b.op([Op.I64Eq, Op.I64Ne, 0, 0, Op.I64LtS, Op.I64GeS, Op.I64LtU, Op.I64GeU][f3] as Op);
          b.op(Op.If).byte(VOID);
          nest++;
          jump(off + branchImm(insn));
          nest--;
          b.op(Op.End);
          jump(next);
          break;
        case 0x19: // JALR: leaves the region
          get(rs1);
          if (immI !== 0) b.op(Op.I64Const).i64(immI, immI < 0 ? -1 : 0).op(Op.I64Add);
          b.op(Op.I64Const).i64(-2, -1).op(Op.I64And).op(Op.LocalSet).u32(L_NPC);
          if (rd !== 0) {
            pcConst(next);
            set(rd);
          }
          flush(true);
          b.op(Op.Br).u32(toExit());
          break;
        case 0x1b: // JAL
          if (rd !== 0) {
            pcConst(next);
            set(rd);
          }
          flush(true);
          jump(off + jalImm(insn));
          break;
        default: {
          if (classify(insn) !== 'exec') throw new Error(`jit: untranslatable instruction ${insn.toString(16)} accepted`);
          // The interpreter reads and writes x in the hart block: store what the block wrote.
          const { xDest } = execRegs(insn);
          flush(true);
          pcConst(off);
          pcConst(next);
          b.op(Op.LocalGet).u32(L_CNT);
          if (n - k - 1 > 0) b.op(Op.I32Const).i32(n - k - 1).op(Op.I32Sub);
          callHelper(b, F_EX);
          if (xDest && rd !== 0) b.op(Op.I32Const).i32(hb).mem(Op.I64Load, rd * 8).op(Op.LocalSet).u32(xl(rd));
          flagCheck(k, n, next);
        }
      }
      if (last && (insn >>> 2 & 31) !== 0x18 && (insn >>> 2 & 31) !== 0x19 && (insn >>> 2 & 31) !== 0x1b) {
        flush(true);
        jump(next);
      }
    });
  }
  b.op(Op.End).op(Op.End); // $top, $exit
  // The exit path (registers are in the hart block): add the count to the dispatcher's, then go on to the next pc.
  b.op(Op.I32Const).i32(hb).op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit).op(Op.LocalGet).u32(L_CNT).op(Op.I32Add)
    .mem(Op.I32Store, offJit);
  chain(b, env);
  b.op(Op.LocalGet).u32(L_NPC);
  const ranges: [number, number][] = [...code.values()].map((i) => [i.off, i.len]);
  return { locals: LOCALS, code: b, count: code.size, starts, ranges };
}
