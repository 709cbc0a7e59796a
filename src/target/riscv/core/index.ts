// Entry points of the RV64GC core module, called by src/target/riscv/cpu.ts.
// One instance of this module is one hart; see state.ts for the memory layout.
import * as S from './state';
import { tlbFlush } from './mmu';
import { expandCompressed } from './rvc';
import * as C from './csr';

export { run, EXIT_BUDGET, EXIT_WFI, EXIT_REQUEST } from './exec';
export { OFF_X, OFF_F, OFF_MIP, OFF_EXIT, OFF_SCRATCH, HART_BLOCK_SIZE } from './state';

/** Size of the compressed-instruction expansion table. */
export const RVC_TABLE_SIZE: u32 = 65536 * 4;

/**
 * Binds this instance to its hart block and the machine's memory map. Addresses
 * are passed as f64 (exact below 2^53) so that the host never needs BigInt.
 * `fillRvcTable` is true for the first hart only: the table is shared.
 */
export function init(hartBase: u32, hartId: u32, rvcTable: u32, fillRvcTable: bool,
  ramBase: f64, ramSize: f64, ramHost: f64, romBase: f64, romSize: f64, romHost: f64): void {
  S.hb = hartBase;
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
  reset(0);
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
/**
 * Reads a CSR for the host (monitor, debugger) as M-mode would, without side effects on
 * the hart; -1 (all ones) when the CSR does not exist.
 */
export function debugCsr(csr: u32): u64 {
  const priv = S.priv;
  S.priv = 3;
  C.csrIllegal = false;
  let v = C.csrRead(csr);
  if (C.csrIllegal) v = <u64>-1;
  C.csrIllegal = false;
  S.priv = priv;
  return v;
}
/** Asks run() to re-check interrupts and the exit request before the next instruction. */
export function kick(): void { S.irqCheck = true; }

export { runJit, jitHartBytes, jitInit, jitFlush, jitDropPage, jitDropWrite, jitLd, jitSt, jitMd, OFF_JIT } from './jit';
