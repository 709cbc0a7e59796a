// The core side of the JIT (docs/riscv-core.md, "JIT"): the dispatcher that runs
// translated blocks, the hash table of block entry points, and the helpers that
// translated code imports (slow-path loads and stores, M-extension operations).
// The translator itself runs on the host (src/target/riscv/jit/): it is called
// through jit_translate when a block start has been seen often enough, emits a
// WebAssembly function `() => i64` (returns the next pc) and stores it in this
// instance's function table, at the index it returns.
import * as S from './state';
import * as E from './exec';
import * as M from './jitmap';
import { tlbLookup, loadSlow, storeSlow } from './mmu';

@external("env", "jit_translate") declare function jit_translate(pcLo: i32, pcHi: i32, host: i32): i32;

// Words in the hart block shared with translated code (free space after OFF_SCRATCH).
export const OFF_JIT: u32 = 0x280;
export const JIT_COUNT: u32 = 0;   // u32: instructions executed by the last block (incl. a faulting one)
export const JIT_TRAP: u32 = 4;    // u32: set by a helper when the instruction trapped
export const JIT_TLBR: u32 = 8;    // u32: host address of the read TLB for this block run
export const JIT_TLBW: u32 = 12;   // u32: host address of the write TLB

// Hash table entries (32 bytes): pc u64, host u32 (where the block starts), idx i32
// (table index, or -1: cannot translate), len u32 (most instructions one call runs).
const ENTRY_SHIFT: u32 = 5;
let hashBase: usize = 0;
let hashMask: u32 = 0;

/** Bytes of hart memory the JIT needs for `entries` hash entries (the hotness filter follows the table). */
export function jitHartBytes(entries: u32): u32 {
  return (entries << ENTRY_SHIFT) + M.FILTER_SIZE;
}

/** Enables the JIT for this hart: code map (shared), this hart's hash table and filter, hotness threshold (1..255). */
export function jitInit(codeMap: u32, hash: u32, entries: u32, hot: u32): void {
  M.codeMap = codeMap;
  hashBase = hash;
  hashMask = entries - 1;
  M.filter = hash + (entries << ENTRY_SHIFT);
  M.hot = hot;
  jitFlush();
}

/** Forgets every block of this hart. */
export function jitFlush(): void {
  memory.fill(M.filter, 0, M.FILTER_SIZE);
  const end = hashBase + ((<usize>hashMask + 1) << ENTRY_SHIFT);
  for (let e = hashBase; e < end; e += 1 << ENTRY_SHIFT) {
    store<u64>(e, 1); // odd: never a pc
    store<u32>(e, 0, 8);
    store<i32>(e, 0, 12);
  }
}

/** Forgets the blocks that start in the page at host address `page`. */
export function jitDropPage(page: u32): void {
  const end = hashBase + ((<usize>hashMask + 1) << ENTRY_SHIFT);
  for (let e = hashBase; e < end; e += 1 << ENTRY_SHIFT) {
    if ((load<u32>(e, 8) & ~0xfff) == page) {
      store<u64>(e, 1);
      store<u32>(e, 0, 8);
      store<i32>(e, 0, 12);
    }
  }
}

/** Removes the page at host address `page` from this hart's write TLBs (it now holds code). */
export function jitDropWrite(page: u32): void {
  for (let set: u32 = 0; set < 3; set++) {
    const base = S.hb + S.OFF_TLB + set * S.TLB_SET_SIZE + S.OFF_TLB_W;
    for (let i: u32 = 0; i < S.TLB_SIZE; i++) {
      const e = base + (i << 4);
      const tag = load<u64>(e);
      if (tag != <u64>-1 && <u32>(tag + load<u64>(e, 8)) == page) store<u64>(e, <u64>-1);
    }
  }
}

@inline function slot(pc: u64): usize {
  return hashBase + ((<usize>((<u32>pc >> 1) ^ <u32>(pc >> 13)) & hashMask) << ENTRY_SHIFT);
}

/**
 * run() with translated blocks: executes at most `budget` instructions (a block runs
 * only if it fits) and returns like run(). At each pc it reaches (start, block exit,
 * interpreter stop at a hot jump target) it runs the translated block if there is one,
 * translates the pc once it is hot, and otherwise interprets until the next hot target.
 */
export function runJit(budget: i32): i32 {
  const xb = S.hb;
  const end = S.instret + <u64>budget;
  let exit = E.EXIT_BUDGET;
  E.stopAtJump = true;
  while (S.instret < end) {
    if (!S.irqCheck) {
      const pc = S.pc;
      const host = tlbLookup(S.tlbSet(S.priv) + S.OFF_TLB_X, pc, 2);
      if (host != 0) {
        const e = slot(pc);
        if (load<u64>(e) == pc && load<u32>(e, 8) == <u32>host) {
          const idx = load<i32>(e, 12);
          if (idx > 0) {
            if (end - S.instret >= <u64>load<u32>(e, 20)) {
              const t = S.tlbSet(S.dataPriv());
              store<u32>(xb + OFF_JIT + JIT_TLBR, <u32>(t + S.OFF_TLB_R));
              store<u32>(xb + OFF_JIT + JIT_TLBW, <u32>(t + S.OFF_TLB_W));
              const npc = call_indirect<u64>(<u32>idx);
              S.instret += <u64>load<u32>(xb + OFF_JIT + JIT_COUNT);
              if (load<u32>(xb + OFF_JIT + JIT_TRAP) != 0) {
                store<u32>(xb + OFF_JIT + JIT_TRAP, 0);
                S.trapped = false; // S.pc is the trap vector
              } else {
                S.pc = npc;
              }
              continue;
            }
          } else {
            store<u8>(M.filterSlot(pc), 0); // cannot translate: count again before the next stop here
          }
        } else if (M.hotTarget(pc)) {
          const r = jit_translate(<i32>pc, <i32>(pc >> 32), <i32>host);
          // r = table index << 8 | most instructions per call, 0 (cannot translate) or -1 (queued: ask again later).
          if (r < 0) {
            store<u8>(M.filterSlot(pc), <u8>(M.hot >> 1));
          } else {
            store<u64>(e, pc);
            store<u32>(e, <u32>host, 8);
            store<i32>(e, r > 0 ? r >>> 8 : -1, 12);
            store<u32>(e, <u32>r & 0xff, 20);
            if (r > 0) continue;
            store<u8>(M.filterSlot(pc), 0);
          }
        }
      }
    }
    const r = E.run(<i32>(end - S.instret));
    if (r != E.EXIT_BUDGET) {
      exit = r;
      break;
    }
  }
  E.stopAtJump = false;
  return exit;
}

// Helpers called by translated code. `pc` is the instruction's address (for traps).

/** Load after a TLB miss; f3 is the LOAD funct3 (size and signedness). */
export function jitLd(addr: u64, f3: i32, pc: u64): u64 {
  S.pc = pc;
  let v = loadSlow(addr, 1 << (f3 & 3));
  if (S.trapped) {
    store<u32>(S.hb + OFF_JIT + JIT_TRAP, 1);
    return 0;
  }
  if (f3 < 3) v = S.sext(v, 8 << f3);
  return v;
}

/** Store after a TLB miss (or to a page holding code). */
export function jitSt(addr: u64, v: u64, size: i32, pc: u64): void {
  S.pc = pc;
  storeSlow(addr, size, v);
  if (S.trapped) store<u32>(S.hb + OFF_JIT + JIT_TRAP, 1);
}

/** M-extension operations other than MUL/MULW: op = funct3, plus 8 for the W forms. */
export function jitMd(a: u64, b: u64, op: i32): u64 {
  return op < 8 ? E.mulDiv(a, b, <u32>op) : E.mulDivW(<u32>a, <u32>b, <u32>(op - 8));
}
