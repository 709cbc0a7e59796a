// Traps and interrupts (Privileged Architecture v1.12, sections 3.1.6-3.1.9,
// 3.3.2 and 4.1): exception entry with delegation to S-mode, interrupt
// priority and enabling, MRET/SRET, and privilege changes.
import * as S from './state';

/** Changes privilege (each privilege has its own TLBs; the execute loop picks them up at its next check). */
export function setPriv(p: u32): void {
  S.priv = p;
  S.irqCheck = true;
}

/**
 * Takes a trap at the current S.pc (the faulting instruction's address).
 * `cause` has bit 63 set for interrupts.
 */
export function takeTrap(cause: u64, tval: u64): void {
  const isIrq = (cause & S.CAUSE_INTERRUPT) != 0;
  const code = cause & 63;
  const deleg = isIrq ? S.mideleg : S.medeleg;
  if (S.priv <= 1 && ((deleg >> code) & 1) != 0) {
    S.scause = cause;
    S.sepc = S.pc;
    S.stval = tval;
    let st = S.mstatus;
    st = (st & ~S.MSTATUS_SPIE) | ((st & S.MSTATUS_SIE) << 4);
    st = (st & ~S.MSTATUS_SPP) | (<u64>S.priv << 8);
    st &= ~S.MSTATUS_SIE;
    S.mstatus = st;
    setPriv(1);
    S.pc = (S.stvec & 1) != 0 && isIrq ? (S.stvec & ~<u64>3) + 4 * code : S.stvec & ~<u64>3;
  } else {
    S.mcause = cause;
    S.mepc = S.pc;
    S.mtval = tval;
    let st = S.mstatus;
    st = (st & ~S.MSTATUS_MPIE) | ((st & S.MSTATUS_MIE) << 4);
    st = (st & ~S.MSTATUS_MPP) | (<u64>S.priv << S.MSTATUS_MPP_SHIFT);
    st &= ~S.MSTATUS_MIE;
    S.mstatus = st;
    setPriv(3);
    S.pc = (S.mtvec & 1) != 0 && isIrq ? (S.mtvec & ~<u64>3) + 4 * code : S.mtvec & ~<u64>3;
  }
  S.irqCheck = true;
}

/** Raises a synchronous exception for the instruction at S.pc and marks the instruction as aborted. */
export function raiseException(cause: u64, tval: u64): void {
  takeTrap(cause, tval);
  S.trapped = true;
}

/** The pending and enabled interrupts that may be taken at the current privilege. */
export function deliverableIrqs(): u64 {
  const pending = S.getMip() & S.mie;
  if (pending == 0) return 0;
  let mEnabled: u64 = 0;
  if (S.priv < 3 || (S.mstatus & S.MSTATUS_MIE) != 0) mEnabled = pending & ~S.mideleg;
  let sEnabled: u64 = 0;
  if (S.priv < 1 || (S.priv == 1 && (S.mstatus & S.MSTATUS_SIE) != 0)) sEnabled = pending & S.mideleg;
  return mEnabled != 0 ? mEnabled : sEnabled;
}

/** Takes the highest-priority deliverable interrupt, if any (MEI, MSI, MTI, SEI, SSI, STI). */
export function checkInterrupts(): bool {
  const irqs = deliverableIrqs();
  if (irqs == 0) return false;
  let code: u64;
  if (irqs & S.IRQ_MEIP) code = 11;
  else if (irqs & S.IRQ_MSIP) code = 3;
  else if (irqs & S.IRQ_MTIP) code = 7;
  else if (irqs & S.IRQ_SEIP) code = 9;
  else if (irqs & S.IRQ_SSIP) code = 1;
  else if (irqs & S.IRQ_STIP) code = 5;
  else code = <u64>ctz(irqs);
  takeTrap(S.CAUSE_INTERRUPT | code, 0);
  return true;
}

/** MRET: returns to the privilege in MPP. */
export function mret(): void {
  let st = S.mstatus;
  const mpp = <u32>((st >> S.MSTATUS_MPP_SHIFT) & 3);
  st = (st & ~S.MSTATUS_MIE) | ((st & S.MSTATUS_MPIE) >> 4);
  st |= S.MSTATUS_MPIE;
  st &= ~S.MSTATUS_MPP;
  if (mpp != 3) st &= ~S.MSTATUS_MPRV;
  S.mstatus = st;
  setPriv(mpp);
  S.pc = S.mepc;
  S.irqCheck = true;
}

/** SRET: returns to the privilege in SPP. */
export function sret(): void {
  let st = S.mstatus;
  const spp = <u32>((st >> 8) & 1);
  st = (st & ~S.MSTATUS_SIE) | ((st & S.MSTATUS_SPIE) >> 4);
  st |= S.MSTATUS_SPIE;
  st &= ~S.MSTATUS_SPP;
  st &= ~S.MSTATUS_MPRV;
  S.mstatus = st;
  setPriv(spp);
  S.pc = S.sepc;
  S.irqCheck = true;
}
