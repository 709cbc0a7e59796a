// Entry points of the RV64GC core module, called by src/target/riscv/cpu.ts.
// One instance of this module is one hart; see state.ts for the memory layout.
import * as S from './state';
import { tlbFlush, tlbFlushWrite } from './mmu';
import { run } from './exec';
import { setPriv } from './trap';
import { expandCompressed } from './rvc';
import * as C from './csr';

export { run, EXIT_BUDGET, EXIT_WFI, EXIT_REQUEST, EXIT_DEBUG } from './exec';
export { OFF_X, OFF_F, OFF_MIP, OFF_EXIT, OFF_SCRATCH, OFF_PMPCFG, OFF_SAVED, SAVED_SLOTS, OFF_BP, BP_MAX, OFF_WP, WP_MAX, HART_BLOCK_SIZE } from './state';
export { debugTranslate } from './mmu';

/** Size of the compressed-instruction expansion table. */
export const RVC_TABLE_SIZE: u32 = 65536 * 4;

/**
 * Binds this instance to its hart block and the machine's memory map. Addresses
 * are passed as f64 (exact below 2^53) so that the host never needs BigInt.
 * `fillRvcTable` is true for the first hart only: the table is shared. Without
 * `resetHart`, the instance takes over the hart state saved in the block (see saveState()).
 */
export function init(hartBase: u32, hartId: u32, rvcTable: u32, fillRvcTable: bool, resetHart: bool,
  ramBase: f64, ramSize: f64, ramHost: f64, romBase: f64, romSize: f64, romHost: f64, dirtyMap: u32): void {
  S.hb = hartBase;
  S.dirtyMap = dirtyMap;
  S.hartId = hartId;
  S.rvcTable = rvcTable;
  S.ramBase = <u64>ramBase;
  S.ramSize = <u64>ramSize;
  S.ramHost = <u64>ramHost;
  S.romBase = <u64>romBase;
  S.romSize = <u64>romSize;
  S.romHost = <u64>romHost;
  if (fillRvcTable) {
    // Reserved encodings become 0xffffffff, whose major opcode (0x7f) the execute loop treats as illegal.
    for (let c: u32 = 0; c < 65536; c++) {
      const e = (c & 3) == 3 ? 0 : expandCompressed(c);
      store<u32>(rvcTable + (c << 2), e != 0 ? e : 0xffffffff);
    }
  }
  if (resetHart) reset(0);
  else loadState();
}

/** Resets the hart: M-mode, everything cleared, execution at `pc`. */
export function reset(pc: f64): void {
  for (let i: u32 = 0; i < S.OFF_TLB; i += 8) {
    if (i != S.OFF_MIP) store<u64>(S.hb + i, 0);
  }
  atomic.store<u32>(S.hb + S.OFF_MIP, 0);
  S.pc = <u64>pc;
  S.priv = 3;
  S.mstatus = 0;
  S.medeleg = 0;
  S.mideleg = 0;
  S.mie = 0;
  S.mtvec = 0;
  S.mcounteren = 0;
  S.mcountinhibit = 0;
  S.menvcfg = 0;
  S.mscratch = 0;
  S.mepc = 0;
  S.mcause = 0;
  S.mtval = 0;
  S.stvec = 0;
  S.scounteren = 0;
  S.senvcfg = 0;
  S.sscratch = 0;
  S.sepc = 0;
  S.scause = 0;
  S.stval = 0;
  S.satp = 0;
  S.fcsr = 0;
  S.instret = 0;
  S.cycleOffset = 0;
  S.instretOffset = 0;
  S.resAddr = <u64>-1;
  S.trapped = false;
  S.irqCheck = true;
  S.bpCount = 0;
  S.wpCount = 0;
  S.noIrq = false;
  S.dbgHit = 0;
  tlbFlush();
}

// Slot i of the state saveState() writes at OFF_SAVED.
@inline function saveSlot(i: u32): usize { return S.hb + S.OFF_SAVED + (i << 3); }

/**
 * Writes the hart state held in this instance's globals (pc, privilege, CSRs, counters)
 * into the hart block, so that another instance on the same block (another thread), a
 * monitor or a snapshot can take it over with loadState(). Registers, PMP and mip are
 * in the block already.
 */
export function saveState(): void {
  store<u64>(saveSlot(0), S.pc);
  store<u64>(saveSlot(1), <u64>S.priv);
  store<u64>(saveSlot(2), S.mstatus);
  store<u64>(saveSlot(3), S.medeleg);
  store<u64>(saveSlot(4), S.mideleg);
  store<u64>(saveSlot(5), S.mie);
  store<u64>(saveSlot(6), S.mtvec);
  store<u64>(saveSlot(7), <u64>S.mcounteren);
  store<u64>(saveSlot(8), <u64>S.mcountinhibit);
  store<u64>(saveSlot(9), S.menvcfg);
  store<u64>(saveSlot(10), S.mscratch);
  store<u64>(saveSlot(11), S.mepc);
  store<u64>(saveSlot(12), S.mcause);
  store<u64>(saveSlot(13), S.mtval);
  store<u64>(saveSlot(14), S.stvec);
  store<u64>(saveSlot(15), <u64>S.scounteren);
  store<u64>(saveSlot(16), S.senvcfg);
  store<u64>(saveSlot(17), S.sscratch);
  store<u64>(saveSlot(18), S.sepc);
  store<u64>(saveSlot(19), S.scause);
  store<u64>(saveSlot(20), S.stval);
  store<u64>(saveSlot(21), S.satp);
  store<u64>(saveSlot(22), <u64>S.fcsr);
  store<u64>(saveSlot(23), S.instret);
  store<u64>(saveSlot(24), S.cycleOffset);
  store<u64>(saveSlot(25), S.instretOffset);
}

/** Takes over the state saveState() wrote (by this or another instance); reservations and TLBs start empty. */
export function loadState(): void {
  S.pc = load<u64>(saveSlot(0));
  S.priv = <u32>load<u64>(saveSlot(1));
  S.mstatus = load<u64>(saveSlot(2));
  S.medeleg = load<u64>(saveSlot(3));
  S.mideleg = load<u64>(saveSlot(4));
  S.mie = load<u64>(saveSlot(5));
  S.mtvec = load<u64>(saveSlot(6));
  S.mcounteren = <u32>load<u64>(saveSlot(7));
  S.mcountinhibit = <u32>load<u64>(saveSlot(8));
  S.menvcfg = load<u64>(saveSlot(9));
  S.mscratch = load<u64>(saveSlot(10));
  S.mepc = load<u64>(saveSlot(11));
  S.mcause = load<u64>(saveSlot(12));
  S.mtval = load<u64>(saveSlot(13));
  S.stvec = load<u64>(saveSlot(14));
  S.scounteren = <u32>load<u64>(saveSlot(15));
  S.senvcfg = load<u64>(saveSlot(16));
  S.sscratch = load<u64>(saveSlot(17));
  S.sepc = load<u64>(saveSlot(18));
  S.scause = load<u64>(saveSlot(19));
  S.stval = load<u64>(saveSlot(20));
  S.satp = load<u64>(saveSlot(21));
  S.fcsr = <u32>load<u64>(saveSlot(22));
  S.instret = load<u64>(saveSlot(23));
  S.cycleOffset = load<u64>(saveSlot(24));
  S.instretOffset = load<u64>(saveSlot(25));
  S.resAddr = <u64>-1;
  S.trapped = false;
  S.irqCheck = true;
  tlbFlush();
}

/** Program counter (for the host: debugging, boot, tests). */
export function getPc(): u64 { return S.pc; }
export function setPc(v: u64): void { S.pc = v; }
/** Current privilege level (0 = U, 1 = S, 3 = M). */
export function getPriv(): u32 { return S.priv; }
/** Instructions retired since reset. */
export function getInstret(): f64 { return <f64>S.instret; }
/** True if an interrupt is pending and enabled in mie (what wakes a hart from WFI). */
export function wfiWake(): bool { return (S.getMip() & S.mie) != 0; }
// A debugger's CSR access runs as M-mode would, with the FP CSRs reachable even when
// mstatus.FS is off (as QEMU's debugger accesses); these save and restore what it changes.
let debugPriv: u32 = 0;
let debugFsForced = false;

function enterDebugAccess(csr: u32): void {
  debugPriv = S.priv;
  debugFsForced = csr >= 1 && csr <= 3 && (S.mstatus & S.MSTATUS_FS) == 0;
  S.priv = 3;
  if (debugFsForced) S.mstatus |= S.MSTATUS_FS;
  C.csrIllegal = false;
}

/** Ends the access; false when the CSR does not exist (or, for a write, is read-only). */
function leaveDebugAccess(): bool {
  const ok = !C.csrIllegal;
  C.csrIllegal = false;
  if (debugFsForced) S.mstatus &= ~S.MSTATUS_FS;
  S.priv = debugPriv;
  return ok;
}

/** Reads a CSR for the host (monitor, debugger) without side effects on the hart; -1 (all ones) when it does not exist. */
export function debugCsr(csr: u32): u64 {
  enterDebugAccess(csr);
  const v = C.csrRead(csr);
  return leaveDebugAccess() ? v : <u64>-1;
}

/** Writes a CSR for a debugger; false when it does not exist or is read-only. */
export function debugSetCsr(csr: u32, v: u64): bool {
  enterDebugAccess(csr);
  C.csrWrite(csr, v);
  const ok = leaveDebugAccess();
  S.irqCheck = true;
  return ok;
}

/** Sets the privilege level (the debugger's `priv` register); false for the reserved level 2. */
export function debugSetPriv(p: u32): bool {
  if (p == 2 || p > 3) return false;
  setPriv(p);
  return true;
}

/**
 * The debugger changed the tables at OFF_BP and OFF_WP: `bps` breakpoints and `wps`
 * watchpoints are now in use. The TLBs are flushed so that watched pages leave them.
 */
export function debugSet(bps: u32, wps: u32): void {
  S.bpCount = bps < S.BP_MAX ? bps : S.BP_MAX;
  S.wpCount = wps < S.WP_MAX ? wps : S.WP_MAX;
  tlbFlush();
}

/**
 * Executes one instruction for a debugger's single-step: with interrupts masked (QEMU's
 * default SSTEP_NOIRQ) and breakpoints ignored (the stepped instruction always runs);
 * with `watch` false the watchpoints are ignored too (stepping over the access that hit one).
 * Returns like run().
 */
export function debugStep(watch: bool): i32 {
  const bps = S.bpCount;
  const wps = S.wpCount;
  S.bpCount = 0;
  if (!watch) S.wpCount = 0;
  S.noIrq = true;
  S.irqCheck = true;
  const r = run(1);
  S.noIrq = false;
  S.bpCount = bps;
  S.wpCount = wps;
  // Without watchpoints the step may have put a watched page in a TLB.
  if (!watch && wps != 0) tlbFlush();
  S.irqCheck = true;
  return r;
}

/** Why run() last stopped for the debugger (1: breakpoint, 2-4: watchpoint of gdb's type), or 0. */
export function debugHit(): u32 { return S.dbgHit; }
/** The breakpoint's pc, or the data address that hit the watchpoint. */
export function debugHitAddr(): u64 { return S.dbgAddr; }
/** Asks run() to re-check interrupts and the exit request before the next instruction. */
export function kick(): void { S.irqCheck = true; }

/** Drops the write TLB entries, so that the next store to each page marks the dirty map again. */
export function flushWriteTlb(): void { tlbFlushWrite(); }

export { runJit, jitHartBytes, jitInit, jitShare, jitFlush, jitDropPage, jitDropWrite, jitEnter, jitCounter, jitLd, jitSt, jitMd, jitExec, OFF_JIT } from './jit';
