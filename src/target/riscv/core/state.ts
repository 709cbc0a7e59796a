// Hart state of the RV64GC core: memory layout shared with the host side, the
// privileged registers (RISC-V Privileged Architecture v1.12, ch. 3 and 4) and
// small helpers used by every other part of the core. Other modules import it
// as a namespace (`import * as S`), which lets them assign its globals.
//
// One WebAssembly instance runs one hart. All instances share one memory: guest
// RAM, the boot ROM and each hart's register file and TLBs live in it, at host
// addresses chosen by the TypeScript side (see src/target/riscv/cpu.ts) and
// passed to init(). Privileged state lives in globals, which are per instance.

// Offsets inside a hart's block (HART_BLOCK_SIZE bytes at hb).
export const OFF_X: u32 = 0x000;        // x0..x31, u64 each
export const OFF_F: u32 = 0x100;        // f0..f31, u64 each (singles NaN-boxed)
export const OFF_MIP: u32 = 0x200;      // u32 mip, device bits written by the host
export const OFF_EXIT: u32 = 0x204;     // u32 exit request from the host (non-zero: return from run)
export const OFF_SCRATCH: u32 = 0x208;  // u64 MMIO data exchanged with the host
export const OFF_FENCE: u32 = 0x210;    // u32 target of the atomic RMW that implements FENCE W,R
export const OFF_PMPCFG: u32 = 0x300;   // pmpcfg0, pmpcfg2
export const OFF_PMPADDR: u32 = 0x310;  // pmpaddr0..15
export const OFF_SAVED: u32 = 0x400;    // pc, privilege and CSRs as saveState() writes them (u64 each)
export const SAVED_SLOTS: u32 = 26;
export const OFF_BP: u32 = 0x800;       // debugger breakpoints: BP_MAX virtual pcs, u64 each (debug.ts)
export const BP_MAX: u32 = 64;
export const OFF_WP: u32 = 0xa00;       // debugger watchpoints: WP_MAX x {first u64, last u64, type u64}
export const WP_MAX: u32 = 16;
// TLBs: one set per privilege (U, S, M) and one for S-mode data accesses with mstatus.SUM
// set, each with a read, a write and a fetch TLB of TLB_SIZE entries {tag u64, addend u64},
// each entry backed by a second way TLB_WAY bytes on, which holds the entry it last replaced
// (mmu.ts). The hit paths probe only the first way; a miss looks at the second before
// walking the page table, so two hot pages that share an index cost a swap, not a walk
// per access (Linux's kernel stack and per-CPU data did so, ~150 walks per 4 KiB disk read).
// Separate sets make privilege changes free, and SUM changes too: Linux sets and clears SUM
// around every access to user memory, which flushed the TLBs ~7500 times a boot (QEMU gives
// SUM an MMU index for the same reason). The SUM set's fetch TLB is unused.
export const OFF_TLB: u32 = 0x1000;
export const TLB_SIZE: u32 = 256;
export const TLB_WAY: u32 = TLB_SIZE * 16;
export const OFF_TLB_R: u32 = 0;   // offsets inside a set
export const OFF_TLB_W: u32 = 2 * TLB_WAY;
export const OFF_TLB_X: u32 = 4 * TLB_WAY;
export const TLB_SET_SIZE: u32 = 6 * TLB_WAY;
export const TLB_SETS: u32 = 4;
export const HART_BLOCK_SIZE: u32 = OFF_TLB + TLB_SETS * TLB_SET_SIZE;

/** The TLB set used for accesses at privilege p. */
@inline export function tlbSet(p: u32): usize {
  return hb + OFF_TLB + (p == 3 ? 2 : p) * TLB_SET_SIZE;
}

/** The TLB set of loads and stores: that of dataPriv(), or the SUM set for S-mode with mstatus.SUM. */
@inline export function dataTlbSet(): usize {
  const p = dataPriv();
  return p == 1 && (mstatus & MSTATUS_SUM) != 0 ? hb + OFF_TLB + (TLB_SETS - 1) * TLB_SET_SIZE : tlbSet(p);
}

/** Privilege used for loads and stores (mstatus.MPRV makes M-mode use MPP). */
@inline export function dataPriv(): u32 {
  if (priv == 3 && (mstatus & MSTATUS_MPRV) != 0) return <u32>((mstatus >> MSTATUS_MPP_SHIFT) & 3);
  return priv;
}

/** Base of this hart's block in linear memory. */
export let hb: usize = 0;
/** Table of 32-bit expansions of every 16-bit compressed instruction (65536 x u32). */
export let rvcTable: usize = 0;

export let hartId: u64 = 0;
export let pc: u64 = 0;
/** Current privilege: 0 = U, 1 = S, 3 = M. */
export let priv: u32 = 3;

// Physical memory regions the core accesses directly (everything else is MMIO).
export let ramBase: u64 = 0;
export let ramSize: u64 = 0;
export let ramHost: u64 = 0;
export let romBase: u64 = 0;
export let romSize: u64 = 0;
export let romHost: u64 = 0;
/**
 * Dirty map for live migration: one byte per 4 KiB page of RAM, set to 1 by every write
 * the core makes to the page outside the write TLB's fast path (a slow-path store, which
 * every fill of the write TLB is part of, an AMO or SC, an A/D update); the host reads and
 * clears it, and flushes the write TLBs so that the next store to each page marks it again.
 */
export let dirtyMap: usize = 0;

// Machine-level CSRs.
export let mstatus: u64 = 0;
export let medeleg: u64 = 0;
export let mideleg: u64 = 0;
export let mie: u64 = 0;
export let mtvec: u64 = 0;
export let mcounteren: u32 = 0;
export let mcountinhibit: u32 = 0;
export let menvcfg: u64 = 0;
export let mscratch: u64 = 0;
export let mepc: u64 = 0;
export let mcause: u64 = 0;
export let mtval: u64 = 0;
// Supervisor-level CSRs.
export let stvec: u64 = 0;
export let scounteren: u32 = 0;
export let senvcfg: u64 = 0;
export let sscratch: u64 = 0;
export let sepc: u64 = 0;
export let scause: u64 = 0;
export let stval: u64 = 0;
export let satp: u64 = 0;
// Floating-point control: fflags in bits 4:0, frm in bits 7:5.
export let fcsr: u32 = 0;

/** Instructions retired; mcycle and minstret read this plus their own offset. */
export let instret: u64 = 0;
export let cycleOffset: u64 = 0;
export let instretOffset: u64 = 0;

/** LR/SC reservation: address and value observed by LR, or -1 when none. */
export let resAddr: u64 = -1;
export let resValue: u64 = 0;

/** Set when an exception has been taken by the current instruction. */
export let trapped: bool = false;
/** Set by anything that may change which interrupt is pending or enabled. */
export let irqCheck: bool = true;

// Debugger state (debug.ts). Zero counts keep every check off the fast paths.
/** Breakpoints and watchpoints in use in the tables at OFF_BP and OFF_WP. */
export let bpCount: u32 = 0;
export let wpCount: u32 = 0;
/** Interrupts are not taken while set (a debugger's single-step). */
export let noIrq: bool = false;
/** Why run() last stopped for the debugger (DBG_*), or 0; dbgAddr is the pc or data address. */
export let dbgHit: u32 = 0;
export let dbgAddr: u64 = 0;

// mstatus fields.
export const MSTATUS_SIE: u64 = 1 << 1;
export const MSTATUS_MIE: u64 = 1 << 3;
export const MSTATUS_SPIE: u64 = 1 << 5;
export const MSTATUS_MPIE: u64 = 1 << 7;
export const MSTATUS_SPP: u64 = 1 << 8;
export const MSTATUS_MPP_SHIFT: u64 = 11;
export const MSTATUS_MPP: u64 = 3 << 11;
export const MSTATUS_FS: u64 = 3 << 13;
export const MSTATUS_MPRV: u64 = 1 << 17;
export const MSTATUS_SUM: u64 = 1 << 18;
export const MSTATUS_MXR: u64 = 1 << 19;
export const MSTATUS_TVM: u64 = 1 << 20;
export const MSTATUS_TW: u64 = 1 << 21;
export const MSTATUS_TSR: u64 = 1 << 22;
export const MSTATUS_UXL_SXL: u64 = (<u64>2 << 32) | (<u64>2 << 34);
export const MSTATUS_SD: u64 = <u64>1 << 63;

// Exception causes.
export const CAUSE_MISALIGNED_FETCH: u64 = 0;
export const CAUSE_FETCH_ACCESS: u64 = 1;
export const CAUSE_ILLEGAL: u64 = 2;
export const CAUSE_BREAKPOINT: u64 = 3;
export const CAUSE_MISALIGNED_LOAD: u64 = 4;
export const CAUSE_LOAD_ACCESS: u64 = 5;
export const CAUSE_MISALIGNED_STORE: u64 = 6;
export const CAUSE_STORE_ACCESS: u64 = 7;
export const CAUSE_ECALL_U: u64 = 8;
export const CAUSE_FETCH_PAGE: u64 = 12;
export const CAUSE_LOAD_PAGE: u64 = 13;
export const CAUSE_STORE_PAGE: u64 = 15;
export const CAUSE_INTERRUPT: u64 = <u64>1 << 63;

// Interrupt bits in mip/mie.
export const IRQ_SSIP: u64 = 1 << 1;
export const IRQ_MSIP: u64 = 1 << 3;
export const IRQ_STIP: u64 = 1 << 5;
export const IRQ_MTIP: u64 = 1 << 7;
export const IRQ_SEIP: u64 = 1 << 9;
export const IRQ_MEIP: u64 = 1 << 11;
export const IRQ_S_MASK: u64 = IRQ_SSIP | IRQ_STIP | IRQ_SEIP;

/** Access kinds for translation and faults. */
export const ACC_FETCH: u32 = 0;
export const ACC_LOAD: u32 = 1;
export const ACC_STORE: u32 = 2;

@inline export function getX(r: u32): u64 { return load<u64>(hb + (r << 3)); }
@inline export function setX(r: u32, v: u64): void { if (r != 0) store<u64>(hb + (r << 3), v); }
@inline export function getF(r: u32): u64 { return load<u64>(hb + OFF_F + (r << 3)); }
@inline export function setF(r: u32, v: u64): void { store<u64>(hb + OFF_F + (r << 3), v); }
@inline export function getMip(): u64 { return <u64>atomic.load<u32>(hb + OFF_MIP); }

/** Sign-extends the low `bits` bits of v. */
@inline export function sext(v: u64, bits: u32): u64 {
  const s = 64 - bits;
  return <u64>((<i64>(v << s)) >> s);
}
