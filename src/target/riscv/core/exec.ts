// The execute loop of the RV64GC interpreter: fetch through a cached code page,
// decode, execute (RV64I, M, A, Zicsr, Zifencei, privileged instructions; F/D
// in fpu.ts), and take traps and interrupts (Unprivileged ISA ch. 2, 5, 7, 8,
// 9; Privileged Architecture ch. 3.3).
//
// Everything on the common path stays in locals of run(): pc, the current code
// page, the instruction counter. Any helper that may trap is called with S.pc
// holding the instruction's address; it sets S.trapped after redirecting S.pc to
// the trap vector, and the loop then continues from there.
import * as S from './state';
import * as C from './csr';
import { tlbLookup, loadSlow, storeSlow, fetchPage, amoHost, tlbFlush, tlbFlushPage } from './mmu';
import { raiseException, checkInterrupts, mret, sret } from './trap';
import { fpOp, fpLoadAllowed } from './fpu';
import { hotJump, isEntry } from './jitmap';
import { bpLookup, DBG_BREAK } from './debug';

/** Why run() returned. */
export const EXIT_BUDGET: i32 = 0;
export const EXIT_WFI: i32 = 1;
export const EXIT_REQUEST: i32 = 2;
/** A breakpoint or watchpoint stopped the hart before its instruction (S.dbgHit says which). */
export const EXIT_DEBUG: i32 = 3;

const PAGE_MASK: u64 = ~(<u64>0xfff);

/** Set by the JIT dispatcher (jit.ts): run() returns at a jump to a hot target, or after a synchronising instruction to a region block. */
export let stopAtJump: bool = false;

@inline function mulhu(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff, aHi = a >> 32, bLo = b & 0xffffffff, bHi = b >> 32;
  const p0 = aLo * bLo, p1 = aLo * bHi, p2 = aHi * bLo, p3 = aHi * bHi;
  const mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
  return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

@inline function sext32(v: u64): u64 { return <u64><i64><i32>v; }
@inline function X(xb: usize, r: u32): u64 { return load<u64>(xb + (r << 3)); }
@inline function setX(xb: usize, r: u32, v: u64): void { if (r != 0) store<u64>(xb + (r << 3), v); }

function div64(a: u64, b: u64): u64 {
  if (b == 0) return <u64>-1;
  if (a == <u64>0x8000000000000000 && b == <u64>-1) return a;
  return <u64>(<i64>a / <i64>b);
}
function rem64(a: u64, b: u64): u64 {
  if (b == 0) return a;
  if (a == <u64>0x8000000000000000 && b == <u64>-1) return 0;
  return <u64>(<i64>a % <i64>b);
}
function div32(a: u32, b: u32): u64 {
  if (b == 0) return <u64>-1;
  if (a == 0x80000000 && b == 0xffffffff) return sext32(a);
  return sext32(<u32>(<i32>a / <i32>b));
}
function rem32(a: u32, b: u32): u64 {
  if (b == 0) return sext32(a);
  if (a == 0x80000000 && b == 0xffffffff) return 0;
  return sext32(<u32>(<i32>a % <i32>b));
}

/** The M-extension OP instruction with funct3 `f3` (MUL..REMU) on 64-bit operands. */
@inline export function mulDiv(a: u64, b: u64, f3: u32): u64 {
  switch (f3) {
    case 0: return a * b;
    case 1: return mulhu(a, b) - (<i64>a < 0 ? b : 0) - (<i64>b < 0 ? a : 0);
    case 2: return mulhu(a, b) - (<i64>a < 0 ? b : 0);
    case 3: return mulhu(a, b);
    case 4: return div64(a, b);
    case 5: return b == 0 ? <u64>-1 : a / b;
    case 6: return rem64(a, b);
    default: return b == 0 ? a : a % b;
  }
}

/** The M-extension OP-32 instruction with funct3 `f3` (MULW, DIVW..REMUW; 1-3 do not exist). */
@inline export function mulDivW(a: u32, b: u32, f3: u32): u64 {
  switch (f3) {
    case 0: return sext32(a * b);
    case 4: return div32(a, b);
    case 5: return b == 0 ? <u64>-1 : sext32(a / b);
    case 6: return rem32(a, b);
    default: return b == 0 ? sext32(a) : sext32(a % b);
  }
}

/** The S-type immediate (the offset of a store), sign-extended. */
@inline function storeImm(insn: u32): u64 {
  return <u64>(((<i32>insn >> 20) & ~0x1f) | ((insn >> 7) & 0x1f));
}

/** The target of the branch `insn` at `pc`. */
@inline function branchTarget(pc: u64, insn: u32): u64 {
  return pc + <u64><i64>((<i32>(insn & 0x80000000) >> 19) | ((insn & 0x80) << 4) | ((insn >> 20) & 0x7e0) | ((insn >> 7) & 0x1e));
}

/**
 * A load (funct3 `f3`) that missed the TLB: the slow path, which may trap (S.trapped);
 * otherwise x[rd] gets the value.
 */
function loadMiss(pc: u64, addr: u64, f3: u32, rd: u32): void {
  S.pc = pc;
  let v = loadSlow(addr, 1 << (f3 & 3));
  if (S.trapped) return;
  if (f3 < 3) v = S.sext(v, 8 << f3);
  S.setX(rd, v);
}

/** A store of `size` bytes that missed the TLB: the slow path, which may trap (S.trapped). */
function storeMiss(pc: u64, addr: u64, size: u32, v: u64): void {
  S.pc = pc;
  storeSlow(addr, size, v);
}

/** Raises an illegal-instruction exception for the instruction at `pc`. */
function illegal(pc: u64, bits: u32): void {
  S.pc = pc;
  raiseException(S.CAUSE_ILLEGAL, bits);
}

/** Executes an AMO or LR/SC (opcode 0x2f). Returns false if the encoding is illegal. */
function execAmo(insn: u32, pc: u64): bool {
  const f3 = (insn >> 12) & 7;
  if (f3 != 2 && f3 != 3) return false;
  const rd = (insn >> 7) & 31;
  const addr = S.getX((insn >> 15) & 31);
  const src = S.getX((insn >> 20) & 31);
  const op = insn >> 27;
  const size: u32 = f3 == 2 ? 4 : 8;
  S.pc = pc;
  if (op == 2) { // LR
    if (((insn >> 20) & 31) != 0) return false;
    const h = amoHost(addr, size, true);
    if (h == 0) return true;
    const v: u64 = size == 4 ? sext32(atomic.load<u32>(h)) : atomic.load<u64>(h);
    S.resAddr = <u64>h;
    S.resValue = v;
    S.setX(rd, v);
    return true;
  }
  const h = amoHost(addr, size, false);
  if (h == 0) return true;
  if (op == 3) { // SC: succeeds if the reserved location still holds the value LR saw
    let ok = false;
    if (S.resAddr == <u64>h) {
      ok = size == 4
        ? atomic.cmpxchg<u32>(h, <u32>S.resValue, <u32>src) == <u32>S.resValue
        : atomic.cmpxchg<u64>(h, S.resValue, src) == S.resValue;
    }
    S.resAddr = <u64>-1;
    S.setX(rd, ok ? 0 : 1);
    return true;
  }
  let old: u64;
  if (size == 4) {
    const s = <u32>src;
    let o: u32;
    switch (op) {
      case 0x01: o = atomic.xchg<u32>(h, s); break;
      case 0x00: o = atomic.add<u32>(h, s); break;
      case 0x04: o = atomic.xor<u32>(h, s); break;
      case 0x0c: o = atomic.and<u32>(h, s); break;
      case 0x08: o = atomic.or<u32>(h, s); break;
      case 0x10: case 0x14: case 0x18: case 0x1c: {
        do {
          o = atomic.load<u32>(h);
          let pick: bool;
          if (op == 0x10) pick = <i32>s < <i32>o;
          else if (op == 0x14) pick = <i32>s > <i32>o;
          else if (op == 0x18) pick = s < o;
          else pick = s > o;
          if (atomic.cmpxchg<u32>(h, o, pick ? s : o) == o) break;
        } while (true);
        break;
      }
      default: return false;
    }
    old = sext32(o);
  } else {
    switch (op) {
      case 0x01: old = atomic.xchg<u64>(h, src); break;
      case 0x00: old = atomic.add<u64>(h, src); break;
      case 0x04: old = atomic.xor<u64>(h, src); break;
      case 0x0c: old = atomic.and<u64>(h, src); break;
      case 0x08: old = atomic.or<u64>(h, src); break;
      case 0x10: case 0x14: case 0x18: case 0x1c: {
        do {
          old = atomic.load<u64>(h);
          let pick: bool;
          if (op == 0x10) pick = <i64>src < <i64>old;
          else if (op == 0x14) pick = <i64>src > <i64>old;
          else if (op == 0x18) pick = src < old;
          else pick = src > old;
          if (atomic.cmpxchg<u64>(h, old, pick ? src : old) == old) break;
        } while (true);
        break;
      }
      default: return false;
    }
  }
  S.setX(rd, old);
  return true;
}

/**
 * Executes up to `budget` instructions. Returns EXIT_BUDGET when they are used up,
 * EXIT_WFI when the hart waits for an interrupt, EXIT_REQUEST when the host asked it to stop,
 * EXIT_DEBUG at a debugger's breakpoint or watchpoint (S.pc is the instruction, not executed).
 */
export function run(budget: i32): i32 {
  let n = budget;
  let pc = S.pc;
  let pageVaddr: u64 = <u64>-1;
  let pageHost: usize = 0;
  let exit = EXIT_BUDGET;
  let sync = false;
  /** Set at a jump to a hot target (stopAtJump): return to the JIT dispatcher. */
  let hot = false;
  const xb = S.hb;
  // The data TLBs of the current privilege from the start: run() is entered without
  // irqCheck after each JIT region, and a null TLB made every access a page walk.
  let tlbR: usize = S.dataTlbSet() + S.OFF_TLB_R;
  let tlbW: usize = tlbR - S.OFF_TLB_R + S.OFF_TLB_W;
  const instretStart = S.instret;
  /** With the JIT: the last jump target reached, and the budget left then (see hotJump). */
  let from = pc;
  let fromN = n;
  S.dbgHit = 0;
  while (n > 0) {
    if (S.irqCheck) {
      // Something may have changed interrupts, the TLBs or the host's exit request.
      S.irqCheck = false;
      pageVaddr = <u64>-1;
      tlbR = S.dataTlbSet() + S.OFF_TLB_R;
      tlbW = tlbR - S.OFF_TLB_R + S.OFF_TLB_W;
      if (atomic.load<u32>(xb + S.OFF_EXIT) != 0) {
        exit = EXIT_REQUEST;
        break;
      }
      if (S.dbgHit != 0) break; // a watchpoint aborted the last instruction
      S.pc = pc;
      if (!S.noIrq && checkInterrupts()) {
        S.irqCheck = false;
        pc = S.pc;
        tlbR = S.dataTlbSet() + S.OFF_TLB_R;
        tlbW = tlbR - S.OFF_TLB_R + S.OFF_TLB_W;
      }
    }
    // The inner loop runs until an instruction needs the checks above.
    while (n > 0) {
      // Fetch.
      if ((pc & PAGE_MASK) != pageVaddr) {
        // Running on into the next page counts as a jump there: a region cannot hold an
        // instruction that straddles pages, so code reached only past one (a long unrolled
        // function) would otherwise never get hot. After a fetch in this run(): progress was made.
        if (stopAtJump && (pc & PAGE_MASK) == pageVaddr + 0x1000) {
          if (hotJump(from, fromN - n, pc)) {
            hot = true;
            break;
          }
          from = pc;
          fromN = n;
        }
        // A page holding a breakpoint is never cached, so that each of its instructions is checked here.
        let bpPage = false;
        if (S.bpCount != 0) {
          const b = bpLookup(pc);
          if (b == 2) {
            S.dbgHit = DBG_BREAK;
            S.dbgAddr = pc;
            exit = EXIT_DEBUG;
            break;
          }
          bpPage = b != 0;
        }
        S.pc = pc;
        const h = fetchPage(pc);
        if (h == 0) { // fetch fault: it counts against the budget, so a trap loop still returns
          S.trapped = false;
          pc = S.pc;
          n--;
          break;
        }
        pageVaddr = bpPage ? <u64>-1 : pc & PAGE_MASK;
        pageHost = h;
      }
      const off = <u32>pc & 0xfff;
      let insn: u32;
      if (off <= 0xffc) {
        insn = load<u32>(pageHost + off);
      } else {
        insn = load<u16>(pageHost + off);
        if ((insn & 3) == 3) { // a 32-bit instruction crossing into the next page
          S.pc = pc;
          const h2 = fetchPage(pc + 2);
          if (h2 == 0) {
            S.trapped = false;
            pc = S.pc;
            n--;
            break;
          }
          insn |= <u32>load<u16>(h2) << 16;
        }
      }
      n--;
      let npc: u64;
      let bits = insn;
      if ((insn & 3) != 3) {
        bits = insn & 0xffff;
        npc = pc + 2;
        // The compressed integer instructions (c.addi, c.ld, c.sd, c.mv and c.add alone are a
        // third of a Linux boot's) run here without the expansion table, whose random reads
        // missed the host's L1 cache (a tenth of the interpreter's time). The FP loads and
        // stores, c.ebreak, reserved encodings and TLB misses take the table and the general cases below.
        const rdc = ((bits >> 2) & 7) + 8; // rd'/rs2'
        const rsc = ((bits >> 7) & 7) + 8; // rs1'/rd'
        const rd5 = (bits >> 7) & 31;
        const rs5 = (bits >> 2) & 31;
        const imm6 = <u64><i64>((<i32>(((bits >> 7) & 0x20) | rs5) << 26) >> 26);
        switch (((bits & 3) << 3) | (bits >> 13)) {
          case 0x00: { // c.addi4spn
            const imm = ((bits >> 7) & 0x30) | ((bits >> 1) & 0x3c0) | ((bits >> 4) & 4) | ((bits >> 2) & 8);
            if (imm == 0) break;
            setX(xb, rdc, X(xb, 2) + <u64>imm);
            pc = npc;
            continue;
          }
          case 0x02: { // c.lw
            const h = tlbLookup(tlbR, X(xb, rsc) + <u64>(((bits >> 7) & 0x38) | ((bits >> 4) & 4) | ((bits << 1) & 0x40)), 4);
            if (h == 0) break;
            setX(xb, rdc, <u64><i64>load<i32>(h));
            pc = npc;
            continue;
          }
          case 0x03: { // c.ld
            const h = tlbLookup(tlbR, X(xb, rsc) + <u64>(((bits >> 7) & 0x38) | ((bits << 1) & 0xc0)), 8);
            if (h == 0) break;
            setX(xb, rdc, load<u64>(h));
            pc = npc;
            continue;
          }
          case 0x06: { // c.sw
            const h = tlbLookup(tlbW, X(xb, rsc) + <u64>(((bits >> 7) & 0x38) | ((bits >> 4) & 4) | ((bits << 1) & 0x40)), 4);
            if (h == 0) break;
            store<u32>(h, <u32>X(xb, rdc));
            pc = npc;
            continue;
          }
          case 0x07: { // c.sd
            const h = tlbLookup(tlbW, X(xb, rsc) + <u64>(((bits >> 7) & 0x38) | ((bits << 1) & 0xc0)), 8);
            if (h == 0) break;
            store<u64>(h, X(xb, rdc));
            pc = npc;
            continue;
          }
          case 0x08: // c.addi (c.nop and hints with rd = 0)
            setX(xb, rd5, X(xb, rd5) + imm6);
            pc = npc;
            continue;
          case 0x09: // c.addiw
            if (rd5 == 0) break;
            setX(xb, rd5, sext32(<u32>X(xb, rd5) + <u32>imm6));
            pc = npc;
            continue;
          case 0x0a: // c.li
            setX(xb, rd5, imm6);
            pc = npc;
            continue;
          case 0x0b: { // c.lui, c.addi16sp
            if (imm6 == 0) break;
            if (rd5 != 2) {
              setX(xb, rd5, imm6 << 12);
            } else {
              const imm = ((bits >> 3) & 0x200) | ((bits >> 2) & 0x10) | ((bits << 1) & 0x40) | ((bits << 4) & 0x180) | ((bits << 3) & 0x20);
              setX(xb, 2, X(xb, 2) + <u64><i64>((<i32>imm << 22) >> 22));
            }
            pc = npc;
            continue;
          }
          // With the JIT, jumps and taken branches go the general way, which counts them for
          // hotness and may stop there for the dispatcher.
          case 0x0d: { // c.j
            if (stopAtJump) break;
            const off = ((bits >> 1) & 0xb40) | ((bits >> 7) & 0x10) | ((bits << 2) & 0x400) | ((bits << 1) & 0x80) |
              ((bits >> 2) & 0xe) | ((bits << 3) & 0x20);
            pc = pc + <u64><i64>((<i32>off << 20) >> 20);
            continue;
          }
          case 0x0e: case 0x0f: { // c.beqz, c.bnez
            if ((X(xb, rsc) == 0) == ((bits & 0x2000) == 0)) {
              if (stopAtJump) break;
              const off = ((bits >> 4) & 0x100) | ((bits >> 7) & 0x18) | ((bits << 1) & 0xc0) | ((bits >> 2) & 6) | ((bits << 3) & 0x20);
              pc = pc + <u64><i64>((<i32>off << 23) >> 23);
            } else {
              pc = npc;
            }
            continue;
          }
          case 0x0c: { // c.srli, c.srai, c.andi, c.sub, c.xor, c.or, c.and, c.subw, c.addw
            const f2 = (bits >> 10) & 3;
            const f = ((bits >> 10) & 4) | ((bits >> 5) & 3);
            if (f2 == 3 && f >= 6) break; // reserved
            const a = X(xb, rsc);
            const b = X(xb, rdc);
            const sh = <u64>(((bits >> 7) & 0x20) | rs5);
            let v: u64;
            if (f2 == 0) v = a >> sh;
            else if (f2 == 1) v = <u64>(<i64>a >> <i64>sh);
            else if (f2 == 2) v = a & imm6;
            else {
              switch (f) {
                case 0: v = a - b; break;
                case 1: v = a ^ b; break;
                case 2: v = a | b; break;
                case 3: v = a & b; break;
                case 4: v = sext32(<u32>a - <u32>b); break;
                default: v = sext32(<u32>a + <u32>b);
              }
            }
            store<u64>(xb + (rsc << 3), v);
            pc = npc;
            continue;
          }
          case 0x10: // c.slli
            setX(xb, rd5, X(xb, rd5) << <u64>(((bits >> 7) & 0x20) | rs5));
            pc = npc;
            continue;
          case 0x12: { // c.lwsp
            if (rd5 == 0) break;
            const h = tlbLookup(tlbR, X(xb, 2) + <u64>(((bits >> 7) & 0x20) | ((bits >> 2) & 0x1c) | ((bits << 4) & 0xc0)), 4);
            if (h == 0) break;
            setX(xb, rd5, <u64><i64>load<i32>(h));
            pc = npc;
            continue;
          }
          case 0x13: { // c.ldsp
            if (rd5 == 0) break;
            const h = tlbLookup(tlbR, X(xb, 2) + <u64>(((bits >> 7) & 0x20) | ((bits >> 2) & 0x18) | ((bits << 4) & 0x1c0)), 8);
            if (h == 0) break;
            setX(xb, rd5, load<u64>(h));
            pc = npc;
            continue;
          }
          case 0x14: { // c.mv, c.add, c.jr, c.jalr (c.ebreak below)
            if (rs5 != 0) {
              setX(xb, rd5, (bits & 0x1000) != 0 ? X(xb, rd5) + X(xb, rs5) : X(xb, rs5));
              pc = npc;
              continue;
            }
            if (rd5 == 0) break;
            if (stopAtJump) break;
            const target = X(xb, rd5) & ~<u64>1;
            if ((bits & 0x1000) != 0) store<u64>(xb + 8, npc); // c.jalr links in ra
            pc = target;
            continue;
          }
          case 0x16: { // c.swsp
            const h = tlbLookup(tlbW, X(xb, 2) + <u64>(((bits >> 7) & 0x3c) | ((bits >> 1) & 0xc0)), 4);
            if (h == 0) break;
            store<u32>(h, <u32>X(xb, rs5));
            pc = npc;
            continue;
          }
          case 0x17: { // c.sdsp
            const h = tlbLookup(tlbW, X(xb, 2) + <u64>(((bits >> 7) & 0x38) | ((bits >> 1) & 0x1c0)), 8);
            if (h == 0) break;
            store<u64>(h, X(xb, rs5));
            pc = npc;
            continue;
          }
        }
        insn = load<u32>(S.rvcTable + (bits << 2));
      } else {
        npc = pc + 4;
      }
      const rd = (insn >> 7) & 31;
      const rs1 = (insn >> 15) & 31;
      const rs2 = (insn >> 20) & 31;
      const f3 = (insn >> 12) & 7;
      const immI = <u64>(<i32>insn >> 20);
      // One dispatch on the major opcode and funct3 together: loads, stores, OP-IMM, OP and
      // branches need no second one on funct3 (the rarer opcodes take a second, below).
      // Each load width is spelled out: one inlined helper for the seven ran bench/guest/calls.elf ~9% slower.
      switch ((insn & 0x7c) << 1 | f3) {
        case 0: { // lb
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 1);
          if (h != 0) setX(xb, rd, <u64><i64>load<i8>(h));
          else { loadMiss(pc, addr, 0, rd); sync = true; }
          break;
        }
        case 1: { // lh
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 2);
          if (h != 0) setX(xb, rd, <u64><i64>load<i16>(h));
          else { loadMiss(pc, addr, 1, rd); sync = true; }
          break;
        }
        case 2: { // lw
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 4);
          if (h != 0) setX(xb, rd, <u64><i64>load<i32>(h));
          else { loadMiss(pc, addr, 2, rd); sync = true; }
          break;
        }
        case 3: { // ld
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 8);
          if (h != 0) setX(xb, rd, load<u64>(h));
          else { loadMiss(pc, addr, 3, rd); sync = true; }
          break;
        }
        case 4: { // lbu
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 1);
          if (h != 0) setX(xb, rd, <u64>load<u8>(h));
          else { loadMiss(pc, addr, 4, rd); sync = true; }
          break;
        }
        case 5: { // lhu
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 2);
          if (h != 0) setX(xb, rd, <u64>load<u16>(h));
          else { loadMiss(pc, addr, 5, rd); sync = true; }
          break;
        }
        case 6: { // lwu
          const addr = X(xb, rs1) + immI;
          const h = tlbLookup(tlbR, addr, 4);
          if (h != 0) setX(xb, rd, <u64>load<u32>(h));
          else { loadMiss(pc, addr, 6, rd); sync = true; }
          break;
        }
        case 7: // LOAD with funct3 7: illegal
          illegal(pc, bits); sync = true;
          break;
        case 0x20: setX(xb, rd, X(xb, rs1) + immI); break; // addi
        case 0x21: // slli
          if ((insn >> 26) != 0) { illegal(pc, bits); sync = true; break; }
          setX(xb, rd, X(xb, rs1) << <u64>((insn >> 20) & 63));
          break;
        case 0x22: setX(xb, rd, <i64>X(xb, rs1) < <i64>immI ? 1 : 0); break; // slti
        case 0x23: setX(xb, rd, X(xb, rs1) < immI ? 1 : 0); break; // sltiu
        case 0x24: setX(xb, rd, X(xb, rs1) ^ immI); break; // xori
        case 0x25: { // srli, srai
          const f6 = insn >> 26;
          const sh = <u64>((insn >> 20) & 63);
          if (f6 == 0) setX(xb, rd, X(xb, rs1) >> sh);
          else if (f6 == 0x10) setX(xb, rd, <u64>(<i64>X(xb, rs1) >> <i64>sh));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x26: setX(xb, rd, X(xb, rs1) | immI); break; // ori
        case 0x27: setX(xb, rd, X(xb, rs1) & immI); break; // andi
        case 0x28: case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e: case 0x2f: // AUIPC
          setX(xb, rd, pc + <u64><i64><i32>(insn & 0xfffff000));
          break;
        case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: case 0x36: case 0x37: { // OP-IMM-32
          const a = <u32>X(xb, rs1);
          const f7 = insn >> 25;
          const sh = rs2;
          let v: u32 = 0;
          if (f3 == 0) v = a + <u32>(<i32>insn >> 20);
          else if (f3 == 1 && f7 == 0) v = a << sh;
          else if (f3 == 5 && f7 == 0) v = a >> sh;
          else if (f3 == 5 && f7 == 0x20) v = <u32>(<i32>a >> sh);
          else { illegal(pc, bits); sync = true; break; }
          setX(xb, rd, sext32(v));
          break;
        }
        case 0x40: { // sb
          const addr = X(xb, rs1) + storeImm(insn);
          const h = tlbLookup(tlbW, addr, 1);
          if (h != 0) store<u8>(h, <u8>X(xb, rs2));
          else { storeMiss(pc, addr, 1, X(xb, rs2)); sync = true; }
          break;
        }
        case 0x41: { // sh
          const addr = X(xb, rs1) + storeImm(insn);
          const h = tlbLookup(tlbW, addr, 2);
          if (h != 0) store<u16>(h, <u16>X(xb, rs2));
          else { storeMiss(pc, addr, 2, X(xb, rs2)); sync = true; }
          break;
        }
        case 0x42: { // sw
          const addr = X(xb, rs1) + storeImm(insn);
          const h = tlbLookup(tlbW, addr, 4);
          if (h != 0) store<u32>(h, <u32>X(xb, rs2));
          else { storeMiss(pc, addr, 4, X(xb, rs2)); sync = true; }
          break;
        }
        case 0x43: { // sd
          const addr = X(xb, rs1) + storeImm(insn);
          const h = tlbLookup(tlbW, addr, 8);
          if (h != 0) store<u64>(h, X(xb, rs2));
          else { storeMiss(pc, addr, 8, X(xb, rs2)); sync = true; }
          break;
        }
        case 0x44: case 0x45: case 0x46: case 0x47: // STORE with funct3 4-7: illegal
          illegal(pc, bits); sync = true;
          break;
        case 0x60: { // add, sub, mul
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a + b);
          else if (f7 == 0x20) setX(xb, rd, a - b);
          else if (f7 == 1) setX(xb, rd, a * b);
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x61: { // sll, mulh
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a << (b & 63));
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 1));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x62: { // slt, mulhsu
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, <i64>a < <i64>b ? 1 : 0);
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 2));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x63: { // sltu, mulhu
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a < b ? 1 : 0);
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 3));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x64: { // xor, div
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a ^ b);
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 4));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x65: { // srl, sra, divu
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a >> (b & 63));
          else if (f7 == 0x20) setX(xb, rd, <u64>(<i64>a >> <i64>(b & 63)));
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 5));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x66: { // or, rem
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a | b);
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 6));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x67: { // and, remu
          const a = X(xb, rs1);
          const b = X(xb, rs2);
          const f7 = insn >> 25;
          if (f7 == 0) setX(xb, rd, a & b);
          else if (f7 == 1) setX(xb, rd, mulDiv(a, b, 7));
          else { illegal(pc, bits); sync = true; }
          break;
        }
        case 0x68: case 0x69: case 0x6a: case 0x6b: case 0x6c: case 0x6d: case 0x6e: case 0x6f: // LUI
          setX(xb, rd, <u64><i64><i32>(insn & 0xfffff000));
          break;
        case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77: { // OP-32
          const a = <u32>X(xb, rs1);
          const b = <u32>X(xb, rs2);
          const f7 = insn >> 25;
          let v: u64 = 0;
          if (f7 == 0) {
            if (f3 == 0) v = sext32(a + b);
            else if (f3 == 1) v = sext32(a << (b & 31));
            else if (f3 == 5) v = sext32(a >> (b & 31));
            else { illegal(pc, bits); sync = true; break; }
          } else if (f7 == 0x20) {
            if (f3 == 0) v = sext32(a - b);
            else if (f3 == 5) v = sext32(<u32>(<i32>a >> (b & 31)));
            else { illegal(pc, bits); sync = true; break; }
          } else if (f7 == 1 && (f3 == 0 || f3 >= 4)) {
            v = mulDivW(a, b, f3);
          } else { illegal(pc, bits); sync = true; break; }
          setX(xb, rd, v);
          break;
        }
        case 0xc0: // beq
          if (X(xb, rs1) == X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc1: // bne
          if (X(xb, rs1) != X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc4: // blt
          if (<i64>X(xb, rs1) < <i64>X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc5: // bge
          if (<i64>X(xb, rs1) >= <i64>X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc6: // bltu
          if (X(xb, rs1) < X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc7: // bgeu
          if (X(xb, rs1) >= X(xb, rs2)) { npc = branchTarget(pc, insn); sync = stopAtJump; }
          break;
        case 0xc2: case 0xc3: // BRANCH with funct3 2, 3: illegal
          illegal(pc, bits); sync = true;
          break;
        case 0xc8: { // JALR
          const target = (X(xb, rs1) + immI) & ~<u64>1;
          setX(xb, rd, npc);
          npc = target;
          sync = stopAtJump;
          break;
        }
        case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf: // JALR with funct3 1-7: illegal
          illegal(pc, bits); sync = true;
          break;
        case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf: // JAL
          setX(xb, rd, npc);
          npc = pc + <u64><i64>((<i32>(insn & 0x80000000) >> 11) | (insn & 0xff000) | ((insn >> 9) & 0x800) |
            ((insn >> 20) & 0x7fe));
          sync = stopAtJump;
          break;
        default:
          // The rarer major opcodes (FP, AMO, SYSTEM, FENCE) and illegal encodings.
          switch ((insn >> 2) & 31) {
            case 0x01: { // LOAD-FP
              if ((f3 != 2 && f3 != 3) || !fpLoadAllowed()) { illegal(pc, bits); sync = true; break; }
              const addr = X(xb, rs1) + immI;
              const size: u32 = 1 << f3;
              const h = tlbLookup(tlbR, addr, size);
              let v: u64;
              if (h != 0) {
                v = f3 == 2 ? <u64>load<u32>(h) : load<u64>(h);
              } else {
                S.pc = pc;
                v = loadSlow(addr, size);
                sync = true;
                if (S.trapped) break;
              }
              S.setF(rd, f3 == 2 ? v | <u64>0xffffffff00000000 : v);
              S.mstatus |= S.MSTATUS_FS;
              break;
            }
            case 0x03: // MISC-MEM: FENCE and FENCE.I (memory is coherent and nothing is cached)
              if (f3 > 1) illegal(pc, bits);
              // Harts may run on several host threads (MTTCG), whose plain stores can be seen
              // after later loads (x86 TSO): a FENCE ordering W before R needs a host fence.
              // FENCE.TSO (fm = 8) and the other kinds are already ordered by the host.
              // (A read-modify-write of a private word: Binaryen rejects atomic.fence, and on the
              // host a locked RMW is a full barrier.)
              else if (f3 == 0 && (insn & 0xf1200000) == 0x01200000) atomic.add<u32>(xb + S.OFF_FENCE, 0);
              sync = true;
              break;
            case 0x09: { // STORE-FP
              if ((f3 != 2 && f3 != 3) || !fpLoadAllowed()) { illegal(pc, bits); sync = true; break; }
              const addr = X(xb, rs1) + storeImm(insn);
              const v = S.getF(rs2);
              const size: u32 = 1 << f3;
              const h = tlbLookup(tlbW, addr, size);
              if (h != 0) {
                if (f3 == 2) store<u32>(h, <u32>v);
                else store<u64>(h, v);
              } else {
                storeMiss(pc, addr, size, v);
                sync = true;
              }
              break;
            }
            case 0x0b: // AMO
              if (!execAmo(insn, pc)) illegal(pc, bits);
              sync = true;
              break;
            case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: // FMADD, FMSUB, FNMSUB, FNMADD, OP-FP
              if (!fpOp(insn)) illegal(pc, bits);
              sync = true;
              break;
            case 0x1c: { // SYSTEM
              sync = true;
              if (f3 == 0) {
                if (insn == 0x00000073) { // ECALL
                  S.pc = pc;
                  raiseException(S.CAUSE_ECALL_U + S.priv, 0);
                } else if (insn == 0x00100073) { // EBREAK
                  S.pc = pc;
                  raiseException(S.CAUSE_BREAKPOINT, pc);
                } else if (insn == 0x30200073) { // MRET
                  if (S.priv < 3) { illegal(pc, bits); sync = true; break; }
                  mret();
                  npc = S.pc;
                } else if (insn == 0x10200073) { // SRET
                  if (S.priv < 1 || (S.priv == 1 && (S.mstatus & S.MSTATUS_TSR) != 0)) { illegal(pc, bits); sync = true; break; }
                  sret();
                  npc = S.pc;
                } else if (insn == 0x10500073) { // WFI
                  if (S.priv == 0 || (S.priv < 3 && (S.mstatus & S.MSTATUS_TW) != 0)) { illegal(pc, bits); sync = true; break; }
                  if ((S.getMip() & S.mie) == 0) exit = EXIT_WFI;
                } else if ((insn >> 25) == 0x09 && rd == 0) { // SFENCE.VMA
                  if (S.priv == 0 || (S.priv == 1 && (S.mstatus & S.MSTATUS_TVM) != 0)) { illegal(pc, bits); sync = true; break; }
                  if (rs1 == 0) tlbFlush();
                else tlbFlushPage(X(xb, rs1));
                } else {
                  illegal(pc, bits); sync = true;
                }
                break;
              }
              if (f3 == 4) { illegal(pc, bits); sync = true; break; }
              // Zicsr. Counters read S.instret, so bring it up to date first.
              S.instret = instretStart + <u64>(budget - n);
              const csr = insn >> 20;
              const src: u64 = (f3 & 4) != 0 ? <u64>rs1 : X(xb, rs1);
              C.csrIllegal = false;
              let old: u64 = 0;
              if ((f3 & 3) == 1) { // CSRRW: no read side effects when rd is x0
                if (rd != 0) old = C.csrRead(csr);
                if (!C.csrIllegal) C.csrWrite(csr, src);
              } else {
                old = C.csrRead(csr);
                if (!C.csrIllegal && rs1 != 0) {
                  // Only the bits in src change: mip must not write back device bits read before
                  // another thread changed them (see updateMip).
                  C.setCsrWriteBits(src);
                  C.csrWrite(csr, (f3 & 3) == 2 ? old | src : old & ~src);
                  C.setCsrWriteBits(<u64>-1);
                }
              }
              if (C.csrIllegal) { illegal(pc, bits); sync = true; break; }
              setX(xb, rd, old);
              S.irqCheck = true;
              break;
            }
            default:
              illegal(pc, bits); sync = true;
          }
      }
      if (!sync) {
        pc = npc;
        continue;
      }
      sync = false;
      if (S.trapped) {
        S.trapped = false;
        pc = S.pc;
      } else {
        // With the JIT, jumps and taken branches come here: they count for hotness, and
        // run() returns to the dispatcher at a region entry or a hot target.
        if (stopAtJump && npc != pc + ((bits & 3) == 3 ? 4 : 2)) {
          hot = hotJump(from, fromN - n, npc);
          from = npc;
          fromN = n;
        }
        pc = npc;
      }
      break;
    }
    if (exit != EXIT_BUDGET || hot || (stopAtJump && isEntry(pc))) break;
  }
  S.pc = pc;
  if (S.dbgHit > DBG_BREAK) {
    // A watchpoint aborted its instruction before the access: it did not retire.
    n++;
    exit = EXIT_DEBUG;
  }
  S.instret = instretStart + <u64>(budget - n);
  return exit;
}
