/**
 * The RISC-V → WebAssembly block translator. A block is a straight-line run of
 * guest instructions inside one guest page, starting at a hot pc and ending with
 * (and including) the first branch or jump, before the first instruction it does
 * not translate, at the page end, or after MAX_INSNS instructions. The block becomes
 * a function `() => i64` that returns the next pc (see src/target/riscv/core/jit.ts
 * for the calling convention):
 *
 * - the x registers it reads are loaded into i64 locals at entry; the ones it
 *   writes are stored back at every exit;
 * - loads and stores probe the soft TLB inline (entry = tag, host - vaddr); a miss,
 *   a page-crossing access or a write to a page holding code calls the core's
 *   slow-path helper, which may trap: then the block stores back the registers as
 *   they were before the faulting instruction and returns, leaving S.pc at the
 *   trap vector;
 * - the instruction count is stored at each exit, so instret stays exact.
 *
 * Translated: RV64I integer computation, loads and stores, branches, JAL/JALR,
 * FENCE, M (MULH*, DIV*, REM* through a helper), and their compressed forms.
 * Everything else (CSR, AMO, F/D, system, FENCE.I) ends the block: the dispatcher
 * interprets it.
 */
import { Bytes, Op, I32, I64, VOID, F_LD, F_ST, F_MD } from './wasm.js';

export const MAX_INSNS = 64;

// Locals: 0..31 x registers (i64; 0 unused), then scratch.
const L_ADDR = 32;
const L_NPC = 33;
const L_E = 34;
const L_TLBR = 35;
const L_TLBW = 36;
const L_CNT = 37;
const LOCALS: [number, number][] = [[34, I64], [4, I32]];
/** A block that branches back to its start loops inside WebAssembly while it has run fewer instructions than this. */
export const MAX_RUN = 255;

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
  /** Offset of the JIT words in the hart block (count, trap, tlbR, tlbW). */
  offJit: number;
}

export interface Translated {
  locals: [number, number][];
  code: Bytes;
  /** Guest instructions in the block. */
  count: number;
  /** Most instructions one call may execute (more than count if it loops). */
  maxRun: number;
  /** The guest code it was made from, as [page offset, length] pairs. */
  ranges: [number, number][];
}

interface Insn {
  insn: number;
  pc: bigint;
  len: number;
  /** A JAL whose target is the next instruction of the block. */
  follow?: boolean;
}

const M64 = (1n << 64n) - 1n;

/** Decides whether `insn` (32-bit form) is translated, and whether it ends the block. */
function classify(insn: number): 'no' | 'yes' | 'end' {
  const f3 = (insn >>> 12) & 7;
  const f7 = insn >>> 25;
  switch ((insn >>> 2) & 31) {
    case 0x00: return f3 === 7 ? 'no' : 'yes';
    case 0x03: return f3 === 0 ? 'yes' : 'no'; // FENCE is a no-op here; FENCE.I is interpreted
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
    case 0x18: return f3 === 2 || f3 === 3 ? 'no' : 'yes'; // a side exit
    case 0x19: return f3 === 0 ? 'end' : 'no';
    case 0x1b: return 'end';
    default: return 'no';
  }
}

/**
 * Decodes the block at guest `pc` (host address `host`); null if its first instruction
 * is not translated. Conditional branches are side exits: decoding goes on with the
 * fall-through path. A JAL whose target lies in the same page is followed.
 */
function decode(env: TranslateEnv, pc: bigint, host: number): Insn[] | null {
  const out: Insn[] = [];
  const page = host - Number(pc & 0xfffn);
  let off = Number(pc & 0xfffn);
  let p = pc;
  while (out.length < MAX_INSNS && off <= 0xffe) {
    const h = page + off;
    const lo = env.mem16[h >>> 1];
    let insn: number;
    let len: number;
    if ((lo & 3) !== 3) {
      insn = env.mem32[(env.rvcTable + lo * 4) >>> 2];
      if (insn === 0xffffffff) break;
      len = 2;
    } else {
      if (off > 0xffc) break; // crosses the page
      insn = (lo | (env.mem16[(h + 2) >>> 1] << 16)) >>> 0;
      len = 4;
    }
    const c = classify(insn);
    if (c === 'no') break;
    out.push({ insn, pc: p, len });
    if (c === 'end') {
      if (((insn >>> 2) & 31) !== 0x1b) break;
      // JAL: go on at the target if it is in this page.
      const imm = ((insn & 0x80000000) >> 11) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);
      const target = (p + BigInt(imm)) & M64;
      if ((target & ~0xfffn) !== (p & ~0xfffn) || target === pc) break;
      out[out.length - 1]!.follow = true;
      p = target;
      off = Number(target & 0xfffn);
      continue;
    }
    off += len;
    p = (p + BigInt(len)) & M64;
  }
  return out.length > 0 ? out : null;
}

/** Translates the block at guest `pc` (host address `host`), or returns null. */
export function translate(env: TranslateEnv, pc: bigint, host: number): Translated | null {
  const insns = decode(env, pc, host);
  if (!insns) return null;
  // A block cut short after a followed JAL (instruction limit) ends with that jump.
  const lastInsn = insns[insns.length - 1]!;
  if (lastInsn.follow) lastInsn.follow = false;
  const b = new Bytes();
  const { hb, offJit } = env;
  const read = new Set<number>();
  let memOps = false;
  for (const { insn } of insns) {
    const op = (insn >>> 2) & 31;
    const rs1 = (insn >>> 15) & 31;
    const rs2 = (insn >>> 20) & 31;
    if (op !== 0x05 && op !== 0x0d && op !== 0x1b && op !== 0x03) read.add(rs1);
    if (op === 0x08 || op === 0x0c || op === 0x0e || op === 0x18) read.add(rs2);
    if (op === 0x00 || op === 0x08) memOps = true;
  }
  read.delete(0);
  const N = insns.length;
  const branchTarget = (insn: number, ipc: bigint): bigint => {
    const imm = ((insn & 0x80000000) >> 19) | ((insn & 0x80) << 4) | ((insn >>> 20) & 0x7e0) | ((insn >>> 7) & 0x1e);
    return (ipc + BigInt(imm)) & M64;
  };
  const jalTarget = (insn: number, ipc: bigint): bigint => {
    const imm = ((insn & 0x80000000) >> 11) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);
    return (ipc + BigInt(imm)) & M64;
  };
  // Does some branch (or the final JAL) go back to the start? Then the block loops in WebAssembly.
  const loops = N < MAX_RUN / 2 && insns.some(({ insn, pc: ipc }, k) => {
    const op = (insn >>> 2) & 31;
    return (op === 0x18 && branchTarget(insn, ipc) === pc) || (op === 0x1b && k === N - 1 && jalTarget(insn, ipc) === pc);
  });
  const written = new Set<number>();
  if (loops) {
    // Every exit stores back every register the block writes, so they all start loaded.
    for (const { insn } of insns) {
      const op = (insn >>> 2) & 31;
      if (op !== 0x08 && op !== 0x18 && op !== 0x03) written.add((insn >>> 7) & 31);
    }
    written.delete(0);
    for (const r of written) read.add(r);
  }
  // Prologue.
  for (const r of read) b.op(Op.I32Const).i32(hb).mem(Op.I64Load, r * 8).op(Op.LocalSet).u32(r);
  if (memOps) {
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 8).op(Op.LocalSet).u32(L_TLBR);
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 12).op(Op.LocalSet).u32(L_TLBW);
  }
  if (loops) b.op(Op.Loop).byte(VOID);
  const c64 = (v: bigint): void => {
    v &= M64;
    b.op(Op.I64Const).i64(Number(v & 0xffffffffn), Number(v >> 32n) | 0);
  };
  const get = (r: number): void => {
    if (r === 0) b.op(Op.I64Const).i64(0, 0);
    else b.op(Op.LocalGet).u32(r);
  };
  const set = (r: number): void => {
    if (r === 0) {
      b.op(Op.Drop);
    } else {
      b.op(Op.LocalSet).u32(r);
      written.add(r);
    }
  };
  const writeback = (): void => {
    for (const r of written) b.op(Op.I32Const).i32(hb).op(Op.LocalGet).u32(r).mem(Op.I64Store, r * 8);
  };
  const setCount = (n: number): void => {
    b.op(Op.I32Const).i32(hb).op(Op.I32Const).i32(n);
    if (loops) b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Add);
    b.mem(Op.I32Store, offJit);
  };
  /** Taken branch back to the start, k instructions before: loop again unless the run gets too long. */
  const loopBack = (k: number): void => {
    b.op(Op.LocalGet).u32(L_CNT).op(Op.I32Const).i32(k + 1).op(Op.I32Add).op(Op.LocalTee).u32(L_CNT)
      .op(Op.I32Const).i32(MAX_RUN - N).op(Op.I32LeU).op(Op.BrIf).u32(depth);
    writeback();
    setCount(0);
    c64(pc);
    b.op(Op.Return);
  };
  let depth = 0; // of the loop label, from the current position
  /** After a helper call: if it trapped, store back and return (k instructions before this one). */
  const trapCheck = (k: number): void => {
    b.op(Op.I32Const).i32(hb).mem(Op.I32Load, offJit + 4).op(Op.If).byte(VOID);
    writeback();
    setCount(k + 1); // the interpreter counts the faulting instruction too
    b.op(Op.I64Const).i64(0, 0).op(Op.Return).op(Op.End);
  };
  /** ADDR = x[rs1] + imm; E = TLB entry; pushes the hit condition. */
  const tlbProbe = (rs1: number, imm: number, tlb: number, size: number): void => {
    get(rs1);
    b.op(Op.I64Const).i64(imm, imm < 0 ? -1 : 0).op(Op.I64Add).op(Op.LocalSet).u32(L_ADDR);
    b.op(Op.LocalGet).u32(tlb).op(Op.LocalGet).u32(L_ADDR).op(Op.I64Const).i64(12, 0).op(Op.I64ShrU).op(Op.I32WrapI64)
      .op(Op.I32Const).i32(255).op(Op.I32And).op(Op.I32Const).i32(4).op(Op.I32Shl).op(Op.I32Add).op(Op.LocalSet).u32(L_E);
    b.op(Op.LocalGet).u32(L_E).mem(Op.I64Load, 0).op(Op.LocalGet).u32(L_ADDR).op(Op.I64Const).i64(-4096, -1).op(Op.I64And).op(Op.I64Eq);
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.I32WrapI64).op(Op.I32Const).i32(0xfff).op(Op.I32And).op(Op.I32Const).i32(4096 - size)
      .op(Op.I32LeU).op(Op.I32And);
    b.op(Op.If);
  };
  const hostAddr = (): void => {
    b.op(Op.LocalGet).u32(L_ADDR).op(Op.LocalGet).u32(L_E).mem(Op.I64Load, 8).op(Op.I64Add).op(Op.I32WrapI64);
  };
  const LOADS = [Op.I64Load8S, Op.I64Load16S, Op.I64Load32S, Op.I64Load, Op.I64Load8U, Op.I64Load16U, Op.I64Load32U];
  const STORES = [Op.I64Store8, Op.I64Store16, Op.I64Store32, Op.I64Store];
  let npcSet = false;
  insns.forEach(({ insn, pc: ipc, len }, k) => {
    const rd = (insn >>> 7) & 31;
    const rs1 = (insn >>> 15) & 31;
    const rs2 = (insn >>> 20) & 31;
    const f3 = (insn >>> 12) & 7;
    const f7 = insn >>> 25;
    const immI = insn >> 20;
    const next = ipc + BigInt(len);
    switch ((insn >>> 2) & 31) {
      case 0x00: { // LOAD
        tlbProbe(rs1, immI, L_TLBR, 1 << (f3 & 3));
        b.byte(I64);
        hostAddr();
        b.mem(LOADS[f3], 0);
        b.op(Op.Else);
        b.op(Op.LocalGet).u32(L_ADDR).op(Op.I32Const).i32(f3);
        c64(ipc);
        b.op(Op.Call).u32(F_LD);
        trapCheck(k);
        b.op(Op.End);
        set(rd);
        break;
      }
      case 0x03: // FENCE
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
        c64(ipc + BigInt((insn & 0xfffff000) | 0));
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
        b.byte(VOID);
        hostAddr();
        get(rs2);
        b.mem(STORES[f3], 0);
        b.op(Op.Else);
        b.op(Op.LocalGet).u32(L_ADDR);
        get(rs2);
        b.op(Op.I32Const).i32(1 << f3);
        c64(ipc);
        b.op(Op.Call).u32(F_ST);
        trapCheck(k);
        b.op(Op.End);
        break;
      }
      case 0x0c: // OP
        get(rs1);
        get(rs2);
        if (f7 === 1) {
          if (f3 === 0) b.op(Op.I64Mul);
          else b.op(Op.I32Const).i32(f3).op(Op.Call).u32(F_MD);
        } else if (f7 === 0x20) {
          b.op(f3 === 0 ? Op.I64Sub : Op.I64ShrS);
        } else {
          b.op([Op.I64Add, Op.I64Shl, Op.I64LtS, Op.I64LtU, Op.I64Xor, Op.I64ShrU, Op.I64Or, Op.I64And][f3]);
          if (f3 === 2 || f3 === 3) b.op(Op.I64ExtendI32U);
        }
        set(rd);
        break;
      case 0x0e: // OP-32
        if (f7 === 1 && f3 !== 0) {
          get(rs1);
          get(rs2);
          b.op(Op.I32Const).i32(8 + f3).op(Op.Call).u32(F_MD);
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
      case 0x18: { // BRANCH
        const imm = ((insn & 0x80000000) >> 19) | ((insn & 0x80) << 4) | ((insn >>> 20) & 0x7e0) | ((insn >>> 7) & 0x1e);
        get(rs1);
        get(rs2);
        b.op([Op.I64Eq, Op.I64Ne, 0, 0, Op.I64LtS, Op.I64GeS, Op.I64LtU, Op.I64GeU][f3] as Op);
        if (loops && branchTarget(insn, ipc) === pc) {
          b.op(Op.If).byte(VOID);
          depth = 1;
          loopBack(k);
          depth = 0;
          b.op(Op.End);
          if (k === N - 1) {
            c64(next);
            b.op(Op.LocalSet).u32(L_NPC);
            npcSet = true;
          }
        } else if (k === insns.length - 1) {
          // Last instruction: one exit, the next pc chosen by the condition.
          b.op(Op.LocalSet).u32(L_E);
          c64(ipc + BigInt(imm));
          c64(next);
          b.op(Op.LocalGet).u32(L_E).op(Op.Select).op(Op.LocalSet).u32(L_NPC);
          npcSet = true;
        } else {
          b.op(Op.If).byte(VOID);
          writeback();
          setCount(k + 1);
          c64(ipc + BigInt(imm));
          b.op(Op.Return).op(Op.End);
        }
        break;
      }
      case 0x19: // JALR
        get(rs1);
        b.op(Op.I64Const).i64(immI, immI < 0 ? -1 : 0).op(Op.I64Add).op(Op.I64Const).i64(-2, -1).op(Op.I64And).op(Op.LocalSet).u32(L_NPC);
        if (rd !== 0) {
          c64(next);
          set(rd);
        }
        npcSet = true;
        break;
      case 0x1b: { // JAL
        const imm = ((insn & 0x80000000) >> 11) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);
        if (rd !== 0) {
          c64(next);
          set(rd);
        }
        if (k === insns.length - 1) {
          if (loops && jalTarget(insn, ipc) === pc) loopBack(k);
          c64(ipc + BigInt(imm));
          b.op(Op.LocalSet).u32(L_NPC);
          npcSet = true;
        }
        break;
      }
      default:
        throw new Error(`jit: untranslatable instruction ${insn.toString(16)} accepted`);
    }
  });
  if (loops) b.op(Op.End);
  // Epilogue: store back, count, next pc.
  writeback();
  setCount(insns.length);
  if (npcSet) b.op(Op.LocalGet).u32(L_NPC);
  else c64(insns[insns.length - 1].pc + BigInt(insns[insns.length - 1].len));
  return { locals: LOCALS, code: b, count: insns.length, maxRun: loops ? MAX_RUN : insns.length, ranges: insns.map((i) => [Number(i.pc & 0xfffn), i.len]) };
}
