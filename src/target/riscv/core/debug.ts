// Debugger support for the gdbstub (src/gdbstub): breakpoints on virtual pcs, watchpoints
// on virtual data addresses, and a translation without side effects. The host writes the
// tables in the hart block (OFF_BP, OFF_WP) and the counts through index.ts.
//
// Nothing here is on the fast paths: breakpoints are checked only where the execute loop
// enters a new code page (a page holding one is never cached, so each of its instructions
// is checked), and watched pages are kept out of the data TLBs, so that their accesses take
// the slow paths (loadSlow, storeSlow, amoHost), which check the watchpoints.
import * as S from './state';

/** What stopped run() for the debugger (S.dbgHit): a breakpoint, or a watchpoint of gdb's type 2-4. */
export const DBG_BREAK: u32 = 1;
export const DBG_WATCH_WRITE: u32 = 2;
export const DBG_WATCH_READ: u32 = 3;
export const DBG_WATCH_ACCESS: u32 = 4;

/** Access kinds for watchpoints (a bit each; AMOs are both). */
export const WATCH_R: u32 = 1;
export const WATCH_W: u32 = 2;

const PAGE_MASK: u64 = ~(<u64>0xfff);
const WP_ENTRY: u32 = 24;

/** 2 when a breakpoint is at `pc`, 1 when one is elsewhere in its page, else 0. */
export function bpLookup(pc: u64): u32 {
  const page = pc & PAGE_MASK;
  let r: u32 = 0;
  for (let i: u32 = 0; i < S.bpCount; i++) {
    const a = load<u64>(S.hb + S.OFF_BP + (i << 3));
    if (a == pc) return 2;
    if ((a & PAGE_MASK) == page) r = 1;
  }
  return r;
}

/** True when a watchpoint covers part of the page of `vaddr` (whose accesses then bypass the TLBs). */
export function watchedPage(vaddr: u64): bool {
  const first = vaddr & PAGE_MASK;
  const last = first | 0xfff;
  for (let i: u32 = 0; i < S.wpCount; i++) {
    const e = S.hb + S.OFF_WP + i * WP_ENTRY;
    if (load<u64>(e) <= last && load<u64>(e, 8) >= first) return true;
  }
  return false;
}

/**
 * Checks an access of `size` bytes at `vaddr` (`acc`: WATCH_R and/or WATCH_W) against the
 * watchpoints. On a hit the instruction is aborted before its access, as a trap would be
 * but with S.pc left at it (QEMU stops before the access on RISC-V, and gdb expects it:
 * its RISC-V watchpoints are "non-steppable"), and run() returns for the debugger.
 */
export function watchHit(vaddr: u64, size: u32, acc: u32): bool {
  const last = vaddr + size - 1;
  for (let i: u32 = 0; i < S.wpCount; i++) {
    const e = S.hb + S.OFF_WP + i * WP_ENTRY;
    const first = load<u64>(e);
    if (vaddr > load<u64>(e, 8) || last < first) continue;
    const type = load<u32>(e, 16);
    const wants = type == DBG_WATCH_WRITE ? WATCH_W : type == DBG_WATCH_READ ? WATCH_R : WATCH_R | WATCH_W;
    if ((wants & acc) == 0) continue;
    S.dbgHit = type;
    S.dbgAddr = vaddr > first ? vaddr : first;
    S.trapped = true;
    S.irqCheck = true;
    return true;
  }
  return false;
}
