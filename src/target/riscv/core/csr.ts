// Control and status registers (Privileged Architecture v1.12, ch. 2, 3.1, 4.1;
// Unprivileged ISA ch. 9 Zicsr, 10 Zicntr, 13.2 fcsr). Unknown CSRs, writes to
// read-only ones and accesses from too low a privilege set csrIllegal, which the
// execute loop turns into an illegal-instruction exception.
import * as S from './state';
import { tlbFlush } from './mmu';

@external("env", "host_mtime") declare function host_mtime(): f64;

/** Set by csrRead/csrWrite when the access must raise an illegal-instruction exception. */
export let csrIllegal: bool = false;
/** The bits a CSR write means to change (csrrs/csrrc: the source operand; otherwise all). */
let csrWriteBits: u64 = <u64>-1;
export function setCsrWriteBits(v: u64): void { csrWriteBits = v; }

const MISA: u64 = (<u64>2 << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);
const MSTATUS_WRITABLE: u64 = S.MSTATUS_SIE | S.MSTATUS_MIE | S.MSTATUS_SPIE | S.MSTATUS_MPIE | S.MSTATUS_SPP |
  S.MSTATUS_MPP | S.MSTATUS_FS | S.MSTATUS_MPRV | S.MSTATUS_SUM | S.MSTATUS_MXR | S.MSTATUS_TVM | S.MSTATUS_TW | S.MSTATUS_TSR;
const SSTATUS_MASK: u64 = S.MSTATUS_SIE | S.MSTATUS_SPIE | S.MSTATUS_SPP | S.MSTATUS_FS | S.MSTATUS_SUM |
  S.MSTATUS_MXR | (<u64>3 << 32) | S.MSTATUS_SD;
// Bits that change the permission checks cached in the TLBs (MPRV, MPP and SUM only select a TLB set).
const MSTATUS_MMU_BITS: u64 = S.MSTATUS_MXR;
const MIE_WRITABLE: u64 = 0xaaa;
const MIP_WRITABLE: u32 = <u32>(S.IRQ_SSIP | S.IRQ_STIP | S.IRQ_SEIP);
// Exceptions that may be delegated: all but ecall from M-mode (11) and reserved codes.
const MEDELEG_WRITABLE: u64 = 0xb3ff;
const PMP_ENTRIES: u32 = 16;

// PMP registers are stored in the hart block (OpenSBI probes and programs them) but not enforced.
@inline function pmpcfgPtr(i: u32): usize { return S.hb + S.OFF_PMPCFG + (i << 3); }
@inline function pmpaddrPtr(i: u32): usize { return S.hb + S.OFF_PMPADDR + (i << 3); }

/** mstatus as read: SD summarises FS, UXL/SXL are fixed at 64 bits. */
export function readMstatus(): u64 {
  let v = S.mstatus | S.MSTATUS_UXL_SXL;
  if ((v & S.MSTATUS_FS) == S.MSTATUS_FS) v |= S.MSTATUS_SD;
  return v;
}

function writeMstatus(v: u64, mask: u64): void {
  let nv = (S.mstatus & ~mask) | (v & mask);
  // MPP is WARL: 2 is reserved, keep the field legal.
  if (((nv >> S.MSTATUS_MPP_SHIFT) & 3) == 2) nv &= ~S.MSTATUS_MPP;
  if ((nv ^ S.mstatus) & MSTATUS_MMU_BITS) tlbFlush();
  S.mstatus = nv;
  S.irqCheck = true;
}

function counterAllowed(index: u32): bool {
  if (S.priv < 3 && ((S.mcounteren >> index) & 1) == 0) return false;
  if (S.priv == 0 && ((S.scounteren >> index) & 1) == 0) return false;
  return true;
}

function fpAllowed(): bool {
  return (S.mstatus & S.MSTATUS_FS) != 0;
}

/** Reads a CSR; sets csrIllegal (and returns 0) when the access is not allowed. */
export function csrRead(csr: u32): u64 {
  if (S.priv < ((csr >> 8) & 3)) {
    csrIllegal = true;
    return 0;
  }
  switch (csr) {
    case 0x001: if (!fpAllowed()) break; return S.fcsr & 0x1f;
    case 0x002: if (!fpAllowed()) break; return (S.fcsr >> 5) & 7;
    case 0x003: if (!fpAllowed()) break; return S.fcsr & 0xff;
    case 0xc00: if (!counterAllowed(0)) break; return S.instret + S.cycleOffset;
    case 0xc01: if (!counterAllowed(1)) break; return <u64>host_mtime();
    case 0xc02: if (!counterAllowed(2)) break; return S.instret + S.instretOffset;
    case 0x100: return readMstatus() & SSTATUS_MASK;
    case 0x104: return S.mie & S.mideleg;
    case 0x105: return S.stvec;
    case 0x106: return S.scounteren;
    case 0x10a: return S.senvcfg;
    case 0x140: return S.sscratch;
    case 0x141: return S.sepc;
    case 0x142: return S.scause;
    case 0x143: return S.stval;
    case 0x144: return S.getMip() & S.mideleg;
    case 0x180:
      if (S.priv == 1 && (S.mstatus & S.MSTATUS_TVM) != 0) break;
      return S.satp;
    case 0xf11: case 0xf12: case 0xf13: case 0xf15: return 0;
    case 0xf14: return S.hartId;
    case 0x300: return readMstatus();
    case 0x301: return MISA;
    case 0x302: return S.medeleg;
    case 0x303: return S.mideleg;
    case 0x304: return S.mie;
    case 0x305: return S.mtvec;
    case 0x306: return S.mcounteren;
    case 0x30a: return S.menvcfg;
    case 0x320: return S.mcountinhibit;
    case 0x340: return S.mscratch;
    case 0x341: return S.mepc;
    case 0x342: return S.mcause;
    case 0x343: return S.mtval;
    case 0x344: return S.getMip();
    case 0xb00: return S.instret + S.cycleOffset;
    case 0xb02: return S.instret + S.instretOffset;
    default:
      // hpmcounter3..31: implemented as constant zero counters.
      if (csr >= 0xc03 && csr <= 0xc1f) {
        if (!counterAllowed(csr - 0xc00)) break;
        return 0;
      }
      if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) return 0;
      if (csr >= 0x3a0 && csr <= 0x3af) {
        if (csr & 1) break; // odd pmpcfg registers do not exist on RV64
        const i = (csr - 0x3a0) >> 1;
        return i < 2 ? load<u64>(pmpcfgPtr(i)) : 0;
      }
      if (csr >= 0x3b0 && csr <= 0x3ef) {
        const i = csr - 0x3b0;
        return i < PMP_ENTRIES ? load<u64>(pmpaddrPtr(i)) : 0;
      }
  }
  csrIllegal = true;
  return 0;
}

/** Writes a CSR (the caller has checked that it is not a read-only one). */
export function csrWrite(csr: u32, v: u64): void {
  if (S.priv < ((csr >> 8) & 3) || (csr >> 10) == 3) {
    csrIllegal = true;
    return;
  }
  switch (csr) {
    case 0x001:
      if (!fpAllowed()) break;
      S.fcsr = (S.fcsr & ~0x1f) | (<u32>v & 0x1f);
      S.mstatus |= S.MSTATUS_FS;
      return;
    case 0x002:
      if (!fpAllowed()) break;
      S.fcsr = (S.fcsr & 0x1f) | ((<u32>v & 7) << 5);
      S.mstatus |= S.MSTATUS_FS;
      return;
    case 0x003:
      if (!fpAllowed()) break;
      S.fcsr = <u32>v & 0xff;
      S.mstatus |= S.MSTATUS_FS;
      return;
    case 0x100: writeMstatus(v, SSTATUS_MASK & MSTATUS_WRITABLE); return;
    case 0x104:
      S.mie = (S.mie & ~S.mideleg) | (v & S.mideleg & MIE_WRITABLE);
      S.irqCheck = true;
      return;
    case 0x105: S.stvec = (v & 3) >= 2 ? v & ~<u64>3 : v; return;
    case 0x106: S.scounteren = <u32>v; return;
    case 0x10a: S.senvcfg = v & 1; return;
    case 0x140: S.sscratch = v; return;
    case 0x141: S.sepc = v & ~<u64>1; return;
    case 0x142: S.scause = v; return;
    case 0x143: S.stval = v; return;
    case 0x144:
      if (S.mideleg & S.IRQ_SSIP) updateMip(<u32>S.IRQ_SSIP, <u32>v);
      return;
    case 0x180: {
      if (S.priv == 1 && (S.mstatus & S.MSTATUS_TVM) != 0) break;
      const mode = v >> 60;
      // WARL: an unsupported mode leaves satp unchanged. ASIDs are not implemented (ASIDLEN = 0).
      if (mode != 0 && mode != 8 && mode != 9) return;
      S.satp = v & ((<u64>0xf << 60) | 0xfffffffffff);
      tlbFlush();
      return;
    }
    case 0x300: writeMstatus(v, MSTATUS_WRITABLE); return;
    case 0x301: return; // misa is read-only in Vireo
    case 0x302: S.medeleg = v & MEDELEG_WRITABLE; return;
    case 0x303: S.mideleg = v & S.IRQ_S_MASK; S.irqCheck = true; return;
    case 0x304: S.mie = v & MIE_WRITABLE; S.irqCheck = true; return;
    case 0x305: S.mtvec = (v & 3) >= 2 ? v & ~<u64>3 : v; return;
    case 0x306: S.mcounteren = <u32>v; return;
    case 0x30a: S.menvcfg = v & 1; return;
    case 0x320: S.mcountinhibit = <u32>v & ~<u32>2; return;
    case 0x340: S.mscratch = v; return;
    case 0x341: S.mepc = v & ~<u64>1; return;
    case 0x342: S.mcause = v; return;
    case 0x343: S.mtval = v; return;
    case 0x344: updateMip(MIP_WRITABLE, <u32>v); return;
    case 0xb00: S.cycleOffset = v - S.instret; return;
    case 0xb02: S.instretOffset = v - S.instret; return;
    default:
      if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) return;
      if (csr >= 0x3a0 && csr <= 0x3af) {
        if (csr & 1) break;
        const i = (csr - 0x3a0) >> 1;
        if (i < 2) store<u64>(pmpcfgPtr(i), v);
        return;
      }
      if (csr >= 0x3b0 && csr <= 0x3ef) {
        const i = csr - 0x3b0;
        if (i < PMP_ENTRIES) store<u64>(pmpaddrPtr(i), v & 0x3fffffffffffff);
        return;
      }
  }
  csrIllegal = true;
}

/**
 * Replaces the bits of mip selected by `mask` (atomically: devices set other bits concurrently).
 * Only the bits the instruction sets or clears are written: SEIP is both writable and driven by
 * the PLIC, which on another thread (-accel tcg,thread=multi) may raise it between the csrrs/csrrc's
 * read and write; writing back the stale 0 would lose that interrupt for good.
 */
function updateMip(mask: u32, v: u32): void {
  mask &= <u32>csrWriteBits;
  const p = S.hb + S.OFF_MIP;
  atomic.and<u32>(p, ~mask | v);
  atomic.or<u32>(p, mask & v);
  S.irqCheck = true;
}
