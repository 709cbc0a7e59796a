/**
 * The RISC-V → WebAssembly region translator. A region is the code of one guest
 * page reachable from a hot pc through branches, jumps and call return points
 * that stay in the page, cut into basic blocks (at most MAX_INSNS instructions in
 * all). It becomes one function `(entry: i32, budget: i32) => i64` that starts at
 * block `entry`, runs until it leaves the region and returns the next pc (see
 * src/target/riscv/core/jit.ts for the calling convention):
 *
 * - the blocks follow a `br_table` on the block index, in address
 *   order: a block falls into the next one for free, a forward branch is a `br`
 *   straight to its target, a backward one tail-calls the region itself (no `loop`:
 *   TurboFan compiles acyclic functions faster);
 * - the x registers live in the hart block: each block loads the ones it reads
 *   into locals and stores the ones it wrote wherever it leaves (a block that calls
 *   helpers loads those it first writes between them too, and leaves on their flags
 *   through one side exit);
 * - each block counts its instructions when it starts, so instret stays exact; the
 *   budget is checked on entry and at jumps back only (see emit), so the region never
 *   runs past `budget` and a loop returns to the dispatcher in bounded time;
 * - loads and stores probe the soft TLB inline (entry = tag, host - vaddr); a miss,
 *   a misaligned access or a write to a page holding code calls the core's
 *   slow-path helper, which may trap (the registers are then those before the
 *   faulting instruction, S.pc the trap vector) or ask to stop (an interrupt may
 *   be pending, code was written): the region then leaves after the instruction;
 * - branch hints mark the probes' hits likely, and the helpers' flags and the budget
 *   checks unlikely: V8 then moves those slow paths out of line (blockModule), and a
 *   load or store that hits the TLB is ~40 bytes of x86 in a row instead of ~170.
 *
 * Translated: RV64I integer computation, loads and stores, branches, JAL/JALR,
 * FENCE, M (MULH*, DIV*, REM* through a helper), AMOADD/SWAP/XOR/OR/AND, and their
 * compressed forms. CSR, LR/SC, AMOMIN/MAX and F/D instructions run in the interpreter
 * from inside the region (jitExec);
 * the region exits at the other system instructions and FENCE.I.
 */
import { Bytes, Op, I32, I64, VOID, F_LD, F_ST, F_MD, F_EX, F_CHAIN, SELF_PLACEHOLDER, callHelper, localDecls } from './wasm.js';

/**
 * The AMOs translated inline, by funct5: the i32 form of the WebAssembly atomic
 * read-modify-write (after the 0xfe prefix; the i64 form is the next opcode). The others
 * (LR/SC, AMOMIN/MAX) run in the interpreter through jitExec.
 */
const AMO_OPS: Record<number, number> = { 0x00: 0x1e, 0x01: 0x41, 0x04: 0x3a, 0x08: 0x33, 0x0c: 0x2c };

/** The JIT words' offsets from OFF_JIT in the hart block (core/jit.ts JIT_*). */
const J_COUNT = 0;
const J_FLAG = 4;
const J_TLBR = 8;
const J_TLBW = 12;
const J_TLBX = 16;
const J_NPC = 24;

/** Bit of a load or store helper's size argument for a 32-bit instruction (core/jit.ts LONG). */
const LONG = 16;

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
/** The instructions of the block after the one whose helper raised a flag (see beforeHelper). */
const L_AFTER = 39;
const LOCALS = localDecls([[33, I64], [5, I32]]);

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
  /** Host address of this hart's hotness filter (64 Ki u16 counters, core/jitmap.ts filterSlot). */
  filter: number;
}

export interface Translated {
  /** The function's local declarations, encoded (the same for every region). */
  locals: Uint8Array;
  code: Uint8Array;
  /** Guest instructions in the region. */
  count: number;
  /** Page offsets of its blocks, by block index: each is an entry point. */
  starts: number[];
  /** The guest code it was made from, as [page offset, length] pairs. */
  ranges: [number, number][];
  /** Offsets in `code` of the function index (SELF_PLACEHOLDER, patched by blockModule) of its tail calls to itself. */
  selfCalls: number[];
  /** Branch hints: pairs of an offset in `code` of an `if` or `br_if` and 1 if it is likely taken, 0 if not. */
  hints: number[];
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
    case 0x01: case 0x09: case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: return 'exec';
    case 0x0b: return (f3 === 2 || f3 === 3) && AMO_OPS[insn >>> 27] !== undefined ? 'yes' : 'exec';
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

// How an instruction uses the x registers (regUse()): reads rs1, reads rs2, and the register it writes (0: none) from bit 2.
const USE_RS1 = 1;
const USE_RS2 = 2;

/** The x registers `insn` (translated or 'exec') reads and writes, packed as USE_* | written << 2. */
function regUse(insn: number): number {
  const rd = (insn >>> 7) & 31;
  const op = (insn >>> 2) & 31;
  if (classify(insn) === 'exec') {
    const f5 = insn >>> 27;
    switch (op) {
      case 0x1c: return ((insn >>> 12) & 4 ? 0 : USE_RS1) | (rd << 2);
      case 0x0b: return USE_RS1 | USE_RS2 | (rd << 2);
      case 0x01: case 0x09: return USE_RS1;
      // OP-FP: FCVT from and FMV from an integer read rs1; compares, FCVT to and FMV to an integer write rd.
      case 0x14: return (f5 === 0x1a || f5 === 0x1e ? USE_RS1 : 0) | (f5 === 0x14 || f5 === 0x18 || f5 === 0x1c ? rd << 2 : 0);
      default: return 0;
    }
  }
  return (op !== 0x05 && op !== 0x0d && op !== 0x1b && op !== 0x03 ? USE_RS1 : 0) |
    (op === 0x08 || op === 0x0b || op === 0x0c || op === 0x0e || op === 0x18 ? USE_RS2 : 0) |
    (op !== 0x08 && op !== 0x18 && op !== 0x03 ? rd << 2 : 0);
}

// Scratch of explore() and translate(), indexed by page offset / 2 and cleared after each
// region (reset()): typed arrays instead of maps, sets and an object per instruction, as
// translating is on the guest's critical path. One slot more than a page has: the end of
// the page (offset 0x1000) is never decoded.
const SLOTS = 2049;
/** Per x register, the index in its block of the first instruction writing it, or -1 (emit()). */
const firstWrite = new Int16Array(32);
/** The decoded instruction (32-bit form) at an offset. */
const insnAt = new Int32Array(SLOTS);
/** Its length (2 or 4), 0 where nothing is decoded. */
const lenAt = new Uint8Array(SLOTS);
const F_HALF = 1; // the second half of a decoded 32-bit instruction
const F_START = 2; // a block starts here
const flagsAt = new Uint8Array(SLOTS);
/** The block index of a block start, -1 elsewhere. */
const blockAt = new Int32Array(SLOTS).fill(-1);

/** Clears the scratch entries of the decoded offsets `order` and the starts `starts`. */
function reset(order: number[], starts: number[]): void {
  for (const off of order) {
    if (lenAt[off >> 1] === 4) flagsAt[(off >> 1) + 1] = 0; // its F_HALF
    lenAt[off >> 1] = 0;
  }
  for (const off of starts) {
    flagsAt[off >> 1] = 0;
    blockAt[off >> 1] = -1;
  }
}

/**
 * Finds the region of the page at host address `page` reachable from page offset
 * `entry`: the instructions it translates, decoded into insnAt/lenAt, in `order`, and
 * its block starts, flagged in flagsAt, in `starts`; returns the starts that were
 * decoded, sorted (empty if the instruction at `entry` is not translated). It stops at
 * `taken`, the block starts of the page's other regions (jumps there leave to them), and
 * resumes after an instruction it does not translate (the interpreter runs that one and
 * returns there). A branch's target joins the region only if the interpreter has run code
 * from there (its hotness counter is not 0): GCC moves unlikely code (error paths,
 * WARN_ON) out of line behind taken branches, and such code, a good part of a kernel
 * page, would otherwise be compiled with every region that can reach it. A branch to
 * code left out leaves the region, and that code gets a region of its own if it turns hot.
 */
function explore(env: TranslateEnv, pageLo: number, pageHi: number, page: number, entry: number,
  taken: ReadonlySet<number>, order: number[], starts: number[]): number[] {
  /** The instruction at `off` (fetchInsn, fetchLen) if translated: 1; if not, the length to skip it; -1: none. */
  let fetchInsn = 0;
  let fetchLen = 0;
  const fetch = (off: number): number => {
    if (off < 0 || off > 0xffe || (flagsAt[off >> 1]! & F_HALF) !== 0) return -1;
    const lo = env.mem16[(page + off) >>> 1]!;
    if ((lo & 3) !== 3) {
      const insn = env.mem32[(env.rvcTable + lo * 4) >>> 2]!;
      if (insn === 0xffffffff || classify(insn) === 'no') return 2;
      fetchInsn = insn;
      fetchLen = 2;
      return 1;
    }
    if (off > 0xffc || lenAt[(off + 2) >> 1] !== 0) return -1; // crosses the page, or overlaps decoded code
    const insn = (lo | (env.mem16[(page + off + 2) >>> 1]! << 16)) >>> 0;
    if (classify(insn) === 'no') return 4;
    fetchInsn = insn;
    fetchLen = 4;
    return 1;
  };
  const addStart = (off: number): void => {
    if ((flagsAt[off >> 1]! & F_START) === 0) {
      flagsAt[off >> 1] |= F_START;
      starts.push(off);
    }
  };
  if (fetch(entry) !== 1) return [];
  addStart(entry);
  const queue = [entry];
  /** True if the interpreter has counted instructions run from page offset `off` (core/jitmap.ts filterSlot). */
  const ran = (off: number): boolean => {
    const lo = (pageLo + off) >>> 0;
    const slot = ((lo >>> 1) ^ (lo >>> 17) ^ ((pageHi & 1) << 15)) & 0xffff;
    return env.mem16[(env.filter >>> 1) + slot] !== 0;
  };
  const target = (off: number, branch = false): void => {
    if ((off >= 0 && off <= 0xffe && (flagsAt[off >> 1]! & F_START) !== 0) || taken.has(off)) return;
    if (off >= 0 && off <= 0xffe && lenAt[off >> 1] !== 0) addStart(off); // splits a decoded run
    else if (order.length < MAX_INSNS && (!branch || ran(off)) && fetch(off) === 1) {
      addStart(off);
      queue.push(off);
    }
  };
  for (let q = 0; q < queue.length; q++) {
    for (let off = queue[q]!; order.length < MAX_INSNS;) {
      if (lenAt[off >> 1] !== 0) {
        addStart(off); // the run falls into decoded code: a block starts there
        break;
      }
      if (off !== queue[q] && taken.has(off)) break;
      const f = fetch(off);
      if (f !== 1) {
        if (f > 0) target(off + f);
        break;
      }
      const insn = fetchInsn;
      const len = fetchLen;
      insnAt[off >> 1] = insn;
      lenAt[off >> 1] = len;
      order.push(off);
      if (len === 4) flagsAt[(off >> 1) + 1] |= F_HALF;
      const op = (insn >>> 2) & 31;
      if (op === 0x18) {
        target(off + branchImm(insn), true);
        target(off + len);
        break;
      }
      if (op === 0x1b) {
        target(off + jalImm(insn));
        if (((insn >>> 7) & 31) !== 0) target(off + len); // where the call returns
        break;
      }
      if (op === 0x19) break;
      off += len;
    }
  }
  return starts.filter((s) => lenAt[s >> 1] !== 0).sort((a, b) => a - b);
}

/** Adds the instructions counted in L_CNT to the dispatcher's JIT_COUNT (before leaving or calling on). */
function addCount(b: Bytes, env: TranslateEnv): void {
  const at = env.offJit + J_COUNT;
  b.op(Op.I32Const).i32(env.hb).op(Op.I32Const).i32(env.hb).mem(Op.I32Load, at).op(Op.LocalGet).u32(L_CNT).op(Op.I32Add)
    .mem(Op.I32Store, at);
}

/**
 * Chaining, at the end of the exit path: tail-calls the region block entered at the next
 * pc (L_NPC) with the rest of the budget, as the dispatcher would (core/jit.ts runJit),
 * unless a helper raised a flag (a trap, or something the dispatcher must look at), the
 * region ran nothing (the budget was smaller than the region), the budget is spent,
 * or the block is not in the hash table for the page the fetch TLB now maps the pc to.
 * Falls through to return the pc otherwise. Uses L_E (TLB entry, then
 * hash entry), L_TLBR (host address) and L_TLBW (table index) as scratch.
 */
function chain(b: Bytes, env: TranslateEnv): void {
  const { hb, offJit } = env;
  b.op(Op.Block).byte(VOID);
  b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + J_FLAG).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Eqz).op(Op.BrIf).u32(0);
  b.op(Op.LocalGet).u32(L_BUDGET).op(Op.LocalGet).u32(L_CNT).op(Op.I32Sub).op(Op.LocalTee).u32(L_BUDGET)
    .op(Op.I32Eqz).op(Op.BrIf).u32(0);
  // The fetch TLB entry of the pc (set of the current privilege, passed by the dispatcher).
  b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + J_TLBX)
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
  b.op(Op.I32Const).i32(hb).op(Op.LocalGet).u32(L_NPC).mem(Op.I64Store, offJit + J_NPC);
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
  const order: number[] = [];
  const allStarts: number[] = [];
  try {
    const starts = explore(env, pageLo, pageHi, page, entry, taken, order, allStarts);
    return starts.length === 0 ? null : emit(env, pageLo, pageHi, order, starts);
  } finally {
    reset(order, allStarts);
  }
}

/** The region's code is built here, then copied out (most regions take a few KiB). */
const out = new Bytes();
const LOADS = [Op.I64Load8S, Op.I64Load16S, Op.I64Load32S, Op.I64Load, Op.I64Load8U, Op.I64Load16U, Op.I64Load32U];
const STORES = [Op.I64Store8, Op.I64Store16, Op.I64Store32, Op.I64Store];
const OPS = [Op.I64Add, Op.I64Shl, Op.I64LtS, Op.I64LtU, Op.I64Xor, Op.I64ShrU, Op.I64Or, Op.I64And];
const BRANCHES = [Op.I64Eq, Op.I64Ne, 0, 0, Op.I64LtS, Op.I64GeS, Op.I64LtU, Op.I64GeU] as Op[];

/** The block index of the block starting at page offset `off`, or -1. */
const blockIndex = (off: number): number => (off >= 0 && off <= 0xffe ? blockAt[off >> 1]! : -1);

/** Emits the region explore() found: the instructions `order`, the block starts `starts` (sorted). */
function emit(env: TranslateEnv, pageLo: number, pageHi: number, order: number[], starts: number[]): Translated {
  starts.forEach((s, i) => { blockAt[s >> 1] = i; });
  // The blocks: from each start to its terminator or the next start; their instruction counts.
  const counts = starts.map((s) => {
    let n = 0;
    for (let off = s; ;) {
      const op = (insnAt[off >> 1]! >>> 2) & 31;
      n++;
      off += lenAt[off >> 1]!;
      if (op === 0x18 || op === 0x19 || op === 0x1b || off > 0xffe || lenAt[off >> 1] === 0 || blockAt[off >> 1]! >= 0) break;
    }
    return n;
  });
  const { hb, offJit } = env;
  const b = out;
  b.len = 0;
  // Loads, stores and the inline AMOs probe the data TLBs.
  let memOps = false;
  for (const off of order) {
    const op = (insnAt[off >> 1]! >>> 2) & 31;
    if (op === 0x00 || op === 0x08 || op === 0x0b) memOps = true;
  }
  if (memOps) {
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + J_TLBR).op(Op.LocalSet).u32(L_TLBR);
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + J_TLBW).op(Op.LocalSet).u32(L_TLBW);
  }
  const N = starts.length;
  /** Offsets in the code of the function index of each tail call of the region itself. */
  const selfCalls: number[] = [];
  /** Branch hints (see blockModule): the next instruction, an `if` or `br_if`, is likely taken or not. */
  const hints: number[] = [];
  const hint = (likely: boolean): void => {
    hints.push(b.len, likely ? 1 : 0);
  };
  // Forward from any block the region runs at most all its instructions before it jumps
  // back or leaves: entered with a budget that covers them (and checked again at each jump
  // back), it never runs past the budget, so blocks need no check of their own. With less,
  // it runs nothing and gives back the pc it was entered at (the dispatcher or the region
  // chaining to it left that in JIT_NPC), which the interpreter then takes on from.
  const total = order.length;
  b.op(Op.LocalGet).u32(L_BUDGET).op(Op.I32Const).i32(total).op(Op.I32LtU);
  hint(false);
  b.op(Op.If).byte(VOID).op(Op.I32Const).i32(hb).mem(Op.I64Load, offJit + J_NPC).op(Op.Return).op(Op.End);
  // block $exit; block $b(N-1) ... block $b0; br_table; end $b0; <block 0>; end $b1; <block 1> ...
  b.op(Op.Block).byte(VOID);
  for (let i = 0; i < N; i++) b.op(Op.Block).byte(VOID);
  b.op(Op.LocalGet).u32(L_ENTRY).op(Op.BrTable).u32(N);
  for (let i = 0; i < N; i++) b.u32(i);
  b.u32(N); // out of range: leave (never happens)
  /** Labels opened inside the current block's code (ifs). */
  let nest = 0;
  let cur = 0;
  const toExit = (): number => N - 1 - cur + nest;
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
  const dirty: number[] = [];
  let dirtyMask = 0;
  const set = (r: number): void => {
    if (r === 0) {
      b.op(Op.Drop);
    } else {
      b.op(Op.LocalSet).u32(xl(r));
      if ((dirtyMask & (1 << r)) === 0) {
        dirtyMask |= 1 << r;
        dirty.push(r);
      }
    }
  };
  /** Stores x[r]'s local into the hart block. */
  const store = (r: number): void => {
    b.op(Op.I32Const).i32(hb).op(Op.LocalGet).u32(xl(r)).mem(Op.I64Store, r * 8);
  };
  /** Stores the block's written registers; `clear` on the block's own path (not on a side exit). */
  const flush = (clear: boolean): void => {
    for (const r of dirty) store(r);
    if (clear) {
      dirty.length = 0;
      dirtyMask = 0;
    }
  };
  /** Leaves the region with next pc page base + `off`. */
  const exitTo = (off: number): void => {
    pcConst(off);
    b.op(Op.LocalSet).u32(L_NPC).op(Op.Br).u32(toExit());
  };
  /**
   * Goes to the block at `off` if the region has it, else leaves. Going back (a tail call
   * of the region itself) leaves instead if the budget might not cover the way on to the
   * next backward jump (at most the region's `total` instructions): see the entry check.
   */
  const jump = (off: number): void => {
    const j = blockIndex(off);
    if (j < 0) return exitTo(off);
    if (j === cur + 1 && nest === 0) return; // the next block: fall into it
    // A later block starts at the end of its label (inside this one): branch straight there.
    if (j > cur) {
      b.op(Op.Br).u32(j - cur - 1 + nest);
      return;
    }
    b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Const).i32(total).op(Op.I32Add).op(Op.LocalGet).u32(L_BUDGET)
      .op(Op.I32GtU);
    hint(false);
    b.op(Op.If).byte(VOID);
    nest++;
    exitTo(off);
    nest--;
    b.op(Op.End);
    // Back through a tail call of the region itself with the budget left (no `loop`: see emit).
    addCount(b, env);
    b.op(Op.I32Const).i32(j).op(Op.LocalGet).u32(L_BUDGET).op(Op.LocalGet).u32(L_CNT).op(Op.I32Sub).op(Op.ReturnCall);
    selfCalls.push(b.len);
    b.bytes(SELF_PLACEHOLDER);
  };
  /**
   * Before a helper call for the k-th instruction of n: the count of the instructions after
   * it, which the block's side exit gives back if the helper raises a flag (a faulting
   * instruction counts, as in the interpreter).
   */
  const beforeHelper = (k: number, n: number): void => {
    b.op(Op.I32Const).i32(n - k - 1).op(Op.LocalSet).u32(L_AFTER);
  };
  /**
   * After the call, with the helper's flag (non-zero: it trapped or asked to stop) on the
   * stack: leave through the block's side exit, emitted after the block's code, which
   * stores every register the block has written, takes the next pc from JIT_NPC and leaves.
   * One exit per block instead of one per helper call keeps the region code small: the
   * exits were 40% of it and over half of TurboFan's time compiling it.
   */
  const sideExit = (): void => {
    hint(false);
    b.op(Op.BrIf).u32(nest - 1); // the side exit's label is the block code's outermost
  };
  /**
   * Has the interpreter run the k-th instruction (of n) at page offset `off` (jitExec): it
   * reads and writes x in the hart block, so the block's written registers are stored
   * first (`clear`: on the block's own path, not inside a branch of it) and `xDest` is
   * reloaded after.
   */
  const exec = (k: number, n: number, off: number, next: number, xDest: number, clear: boolean): void => {
    flush(clear);
    beforeHelper(k, n);
    pcConst(off);
    pcConst(next);
    b.op(Op.LocalGet).u32(L_CNT).op(Op.LocalGet).u32(L_AFTER).op(Op.I32Sub);
    callHelper(b, F_EX);
    if (xDest !== 0) b.op(Op.I32Const).i32(hb).mem(Op.I64Load, xDest * 8).op(Op.LocalSet).u32(xl(xDest));
    sideExit();
  };
  /** ADDR = x[rs1] + imm; E = TLB entry; opens an `if` (hinted likely) on a hit (tag matches, aligned). */
  const ifTlbHit = (rs1: number, imm: number, tlb: number, size: number): void => {
    get(rs1);
    if (imm !== 0) b.op(Op.I64Const).i64(imm, imm < 0 ? -1 : 0).op(Op.I64Add);
    b.op(Op.LocalTee).u32(L_ADDR);
    b.op(Op.I64Const).i64(8, 0).op(Op.I64ShrU).op(Op.I32WrapI64).op(Op.I32Const).i32(0xff0).op(Op.I32And)
      .op(Op.LocalGet).u32(tlb).op(Op.I32Add).op(Op.LocalTee).u32(L_E).mem(Op.I64Load, 0);
    // A misaligned address keeps low bits and misses: the slow path handles it (and page crossings).
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.I64Const).i64(-4096 | (size - 1), -1).op(Op.I64And).op(Op.I64Eq);
    hint(true);
    b.op(Op.If).byte(VOID);
  };
  const hostAddr = (): void => {
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.LocalGet).u32(L_E).mem(Op.I64Load, 8).op(Op.I64Add).op(Op.I32WrapI64);
  };
  /** Registers the current block loads when it starts, and those it wrote so far in that scan. */
  let loaded = 0;
  let written = 0;
  const loadFirst = (r: number): void => {
    if (((loaded | written) & (1 << r)) !== 0) return;
    loaded |= 1 << r;
    b.op(Op.I32Const).i32(hb).mem(Op.I64Load, r * 8).op(Op.LocalSet).u32(xl(r));
  };
  for (cur = 0; cur < N; cur++) {
    const n = counts[cur]!;
    b.op(Op.End); // of $b<cur>
    b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Const).i32(n).op(Op.I32Add).op(Op.LocalSet).u32(L_CNT);
    // Load what the block reads before writing it (x0 never).
    loaded = 1;
    written = 0;
    firstWrite.fill(-1);
    /** The first and last instruction of the block that calls a helper, or -1. */
    let firstHelper = -1;
    let lastHelper = -1;
    for (let k = 0, off = starts[cur]!; k < n; k++, off += lenAt[off >> 1]!) {
      const insn = insnAt[off >> 1]!;
      const use = regUse(insn);
      if ((use & USE_RS1) !== 0) loadFirst((insn >>> 15) & 31);
      if ((use & USE_RS2) !== 0) loadFirst((insn >>> 20) & 31);
      written |= 1 << (use >>> 2);
      if (firstWrite[use >>> 2]! < 0) firstWrite[use >>> 2] = k;
      const op = (insn >>> 2) & 31;
      if (op === 0x00 || op === 0x08 || op === 0x0b || classify(insn) === 'exec') {
        if (firstHelper < 0) firstHelper = k;
        lastHelper = k;
      }
    }
    // A block whose helpers may leave it in the middle has a side exit that stores every
    // register written up to its last helper call (a helper's instruction writes its
    // destination before the flag check); those first written from its first one on are
    // loaded first, so that their locals hold their values at any of the calls (a load's
    // helper gives back its destination's old value, from the local, when it traps).
    let stores = 0;
    if (firstHelper >= 0) {
      for (let r = 1; r < 32; r++) {
        const w = firstWrite[r]!;
        if (w < 0 || w > lastHelper) continue;
        stores |= 1 << r;
        if (w < firstHelper || (loaded & (1 << r)) !== 0) continue;
        loaded |= 1 << r;
        b.op(Op.I32Const).i32(hb).mem(Op.I64Load, r * 8).op(Op.LocalSet).u32(xl(r));
      }
      b.op(Op.Block).byte(VOID);
      nest++;
    }
    dirty.length = 0;
    dirtyMask = 0;
    for (let k = 0, off = starts[cur]!; k < n; k++) {
      const insn = insnAt[off >> 1]! >>> 0;
      const len = lenAt[off >> 1]!;
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
          ifTlbHit(rs1, immI, L_TLBR, 1 << (f3 & 3));
          hostAddr();
          b.mem(LOADS[f3]!, 0);
          set(rd);
          b.op(Op.Else);
          nest++;
          // The helper gives back the destination's old value when the load traps.
          beforeHelper(k, n);
          b.op(Op.LocalGet).u32(L_ADDR).op(Op.I32Const).i32(f3 | (len === 4 ? LONG : 0));
          pcConst(off);
          get(rd);
          callHelper(b, F_LD);
          set(rd);
          b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + J_FLAG);
          sideExit();
          nest--;
          b.op(Op.End);
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
          ifTlbHit(rs1, imm, L_TLBW, 1 << f3);
          hostAddr();
          get(rs2);
          b.mem(STORES[f3]!, 0);
          b.op(Op.Else);
          nest++;
          beforeHelper(k, n);
          b.op(Op.LocalGet).u32(L_ADDR);
          get(rs2);
          b.op(Op.I32Const).i32((1 << f3) | (len === 4 ? LONG : 0));
          pcConst(off);
          callHelper(b, F_ST);
          sideExit();
          nest--;
          b.op(Op.End);
          break;
        }
        case 0x0b: { // AMOADD, AMOSWAP, AMOXOR, AMOOR, AMOAND (.W, .D): an atomic RMW where the write TLB hits
          if (classify(insn) === 'exec') {
            exec(k, n, off, next, regUse(insn) >>> 2, true);
            break;
          }
          const size = f3 === 2 ? 4 : 8;
          ifTlbHit(rs1, 0, L_TLBW, size);
          hostAddr();
          get(rs2);
          if (size === 4) b.op(Op.I32WrapI64);
          b.byte(0xfe).byte(AMO_OPS[insn >>> 27]! + (size === 4 ? 0 : 1)).u32(size === 4 ? 2 : 3).u32(0);
          if (size === 4) b.op(Op.I64ExtendI32S);
          set(rd);
          b.op(Op.Else);
          nest++;
          // Otherwise the interpreter runs it (page walk, fault, misaligned address).
          exec(k, n, off, next, rd, false);
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
            b.op(OPS[f3]!);
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
          b.op(BRANCHES[f3]!);
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
        default:
          if (classify(insn) !== 'exec') throw new Error(`jit: untranslatable instruction ${insn.toString(16)} accepted`);
          exec(k, n, off, next, regUse(insn) >>> 2, true);
      }
      if (last && (insn >>> 2 & 31) !== 0x18 && (insn >>> 2 & 31) !== 0x19 && (insn >>> 2 & 31) !== 0x1b) {
        flush(true);
        jump(next);
      }
      off = next;
    }
    if (firstHelper >= 0) {
      nest--;
      b.op(Op.End);
      // The side exit.
      for (let r = 1; r < 32; r++) if ((stores & (1 << r)) !== 0) store(r);
      b.op(Op.I32Const).i32(hb).mem(Op.I64Load, offJit + J_NPC).op(Op.LocalSet).u32(L_NPC);
      b.op(Op.LocalGet).u32(L_CNT).op(Op.LocalGet).u32(L_AFTER).op(Op.I32Sub).op(Op.LocalSet).u32(L_CNT);
      b.op(Op.Br).u32(toExit());
    }
  }
  b.op(Op.End); // $exit
  // The exit path (registers are in the hart block): add the count to the dispatcher's, then go on to the next pc.
  addCount(b, env);
  chain(b, env);
  b.op(Op.LocalGet).u32(L_NPC);
  const ranges: [number, number][] = order.map((off) => [off, lenAt[off >> 1]!]);
  return { locals: LOCALS, code: b.buf.slice(0, b.len), count: order.length, starts, ranges, selfCalls, hints };
}
