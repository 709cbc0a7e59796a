// Memory access for the RV64 core: soft TLBs, Sv39/Sv48 page-table walks with
// hardware A/D updates (Privileged Architecture v1.12, sections 4.3-4.5) and
// the slow paths for TLB misses, MMIO and page-crossing accesses.
//
// The execute loop inlines the TLB hit path: each entry maps a guest virtual
// page to `host - vaddr`, so a hit costs one compare and one add; a miss there
// tries the entry's second way (tlbVictim) before a walk. Entries are
// filled only after the permission check for the current effective privilege
// passed (and, for the write TLB, after D was set). Each privilege has its own set
// of TLBs (S-mode with mstatus.SUM another, state.ts), so privilege and SUM changes need
// no flush; satp writes, SFENCE.VMA and changes of mstatus.MXR flush them all.
import * as S from './state';
import { raiseException } from './trap';
import { isCode, codeWrite } from './jitmap';
import { watchedPage, watchHit, WATCH_R, WATCH_W } from './debug';

@external("env", "mmio_read") declare function mmio_read(addr: f64, size: i32): i32;
@external("env", "mmio_write") declare function mmio_write(addr: f64, size: i32, lo: i32, hi: i32): i32;

const PAGE_MASK: u64 = ~(<u64>0xfff);
const INVALID_TAG: u64 = <u64>-1;

const PTE_V: u64 = 1;
const PTE_R: u64 = 2;
const PTE_W: u64 = 4;
const PTE_X: u64 = 8;
const PTE_U: u64 = 16;
const PTE_A: u64 = 64;
const PTE_D: u64 = 128;
// Bits 63:54 are reserved, PBMT or Svnapot: none is implemented, so they must be zero.
const PTE_RESERVED: u64 = <u64>0x3ff << 54;

// Bounds of the virtual addresses whose TLB entries came from superpages: SFENCE.VMA
// of one address inside them must drop the other 4 KiB pieces of the superpage too.
let superLo: u64 = <u64>-1;
let superLast: u64 = 0;

/** Invalidates every TLB entry and (through irqCheck) the execute loop's code page. */
export function tlbFlush(): void {
  S.irqCheck = true;
  superLo = <u64>-1;
  superLast = 0;
  let p = S.hb + S.OFF_TLB;
  const end = p + S.TLB_SETS * S.TLB_SET_SIZE;
  while (p < end) {
    store<u64>(p, INVALID_TAG);
    p += 16;
  }
}

/** Invalidates the write TLB of every privilege (see S.dirtyMap). */
export function tlbFlushWrite(): void {
  for (let set: u32 = 0; set < S.TLB_SETS; set++) {
    let p = S.hb + S.OFF_TLB + set * S.TLB_SET_SIZE + S.OFF_TLB_W;
    const end = p + 2 * S.TLB_WAY;
    while (p < end) {
      store<u64>(p, INVALID_TAG);
      p += 16;
    }
  }
}

/** Records in the dirty map that the RAM page at host address `host` is written. */
@inline function markDirty(host: usize): void {
  store<u8>(S.dirtyMap + ((host - <usize>S.ramHost) >> 12), 1);
}

/** SFENCE.VMA of one virtual address: drops its entries from every TLB (all of them if it may lie in a cached superpage). */
export function tlbFlushPage(vaddr: u64): void {
  if (vaddr >= superLo && vaddr <= superLast) {
    tlbFlush();
    return;
  }
  S.irqCheck = true;
  const slot = (<u32>(vaddr >> 12) & (S.TLB_SIZE - 1)) << 4;
  const tag = vaddr & PAGE_MASK;
  for (let set: u32 = 0; set < S.TLB_SETS; set++) {
    const base = S.hb + S.OFF_TLB + set * S.TLB_SET_SIZE + slot;
    for (let off: u32 = 0; off < S.TLB_SET_SIZE; off += S.TLB_WAY) {
      if (load<u64>(base + off) == tag) store<u64>(base + off, INVALID_TAG);
    }
  }
}

/** Host address of `size` bytes at guest physical `pa` in RAM (or ROM unless writing), else 0. */
export function physHost(pa: u64, size: u32, write: bool): usize {
  if (pa - S.ramBase < S.ramSize && pa - S.ramBase + size <= S.ramSize) return <usize>(pa - S.ramBase + S.ramHost);
  if (!write && pa - S.romBase < S.romSize && pa - S.romBase + size <= S.romSize) return <usize>(pa - S.romBase + S.romHost);
  return 0;
}

function pageFault(acc: u32, vaddr: u64): void {
  raiseException(acc == S.ACC_FETCH ? S.CAUSE_FETCH_PAGE : acc == S.ACC_LOAD ? S.CAUSE_LOAD_PAGE : S.CAUSE_STORE_PAGE, vaddr);
}

function accessFault(acc: u32, vaddr: u64): void {
  raiseException(acc == S.ACC_FETCH ? S.CAUSE_FETCH_ACCESS : acc == S.ACC_LOAD ? S.CAUSE_LOAD_ACCESS : S.CAUSE_STORE_ACCESS, vaddr);
}

/**
 * Translates a virtual address for an access of kind `acc`. Returns the physical
 * address, or raises the page/access fault and returns -1.
 */
export function translate(vaddr: u64, acc: u32): u64 {
  const p = acc == S.ACC_FETCH ? S.priv : S.dataPriv();
  const mode = S.satp >> 60;
  if (p == 3 || mode == 0) return vaddr;
  const levels: u32 = mode == 8 ? 3 : 4;
  const vaBits: u32 = 12 + 9 * levels;
  // The upper bits must be a sign extension of the top valid bit.
  if (S.sext(vaddr, vaBits) != vaddr) {
    pageFault(acc, vaddr);
    return -1;
  }
  let table: u64 = (S.satp & 0xfffffffffff) << 12;
  for (let level = <i32>levels - 1; level >= 0; level--) {
    const vpn = (vaddr >> (12 + 9 * <u64>level)) & 0x1ff;
    const pteAddr = table + (vpn << 3);
    const host = physHost(pteAddr, 8, false);
    if (host == 0) {
      accessFault(acc, vaddr);
      return -1;
    }
    const pte = atomic.load<u64>(host);
    if ((pte & PTE_V) == 0 || ((pte & PTE_R) == 0 && (pte & PTE_W) != 0) || (pte & PTE_RESERVED) != 0) break;
    const ppn = (pte >> 10) & 0xfffffffffff;
    if ((pte & (PTE_R | PTE_X)) == 0) {
      table = ppn << 12;
      continue;
    }
    // Leaf: check permissions.
    if (p == 0) {
      if ((pte & PTE_U) == 0) break;
    } else if ((pte & PTE_U) != 0) {
      if (acc == S.ACC_FETCH || (S.mstatus & S.MSTATUS_SUM) == 0) break;
    }
    if (acc == S.ACC_FETCH) {
      if ((pte & PTE_X) == 0) break;
    } else if (acc == S.ACC_LOAD) {
      if ((pte & PTE_R) == 0 && ((S.mstatus & S.MSTATUS_MXR) == 0 || (pte & PTE_X) == 0)) break;
    } else if ((pte & PTE_W) == 0) break;
    // A superpage's low PPN bits must be zero.
    const lowMask: u64 = (<u64>1 << (9 * <u64>level)) - 1;
    if ((ppn & lowMask) != 0) break;
    const want = PTE_A | (acc == S.ACC_STORE ? PTE_D : 0);
    if ((pte & want) != want) {
      // Hardware A/D update (Svadu behaviour); the PTE may have changed under us.
      // Another hart may have changed the PTE meanwhile: walk again.
      if (atomic.cmpxchg<u64>(host, pte, pte | want) != pte) return translate(vaddr, acc);
      if (<u64>host - S.ramHost < S.ramSize) markDirty(host);
    }
    const pageOff = vaddr & ((lowMask << 12) | 0xfff);
    if (level > 0) {
      const lo = vaddr - pageOff;
      const last = lo + ((lowMask << 12) | 0xfff); // inclusive: the top superpage ends at 2^64
      if (lo < superLo) superLo = lo;
      if (last > superLast) superLast = last;
    }
    return ((ppn & ~lowMask) << 12) | pageOff;
  }
  pageFault(acc, vaddr);
  return -1;
}

/** Fills the TLB of kind `acc` for the page of `vaddr`, which maps to RAM at `pa`; the entry replaced goes to the second way. */
function tlbFill(acc: u32, vaddr: u64, pa: u64): void {
  const host = physHost(pa & PAGE_MASK, 4096, acc == S.ACC_STORE);
  if (host == 0) return;
  if (acc == S.ACC_STORE && isCode(host)) return; // stores to translated code take the slow path
  if (acc != S.ACC_FETCH && S.wpCount != 0 && watchedPage(vaddr)) return; // watched: every access checks
  const set = acc == S.ACC_FETCH ? S.tlbSet(S.priv) : S.dataTlbSet();
  const off = acc == S.ACC_FETCH ? S.OFF_TLB_X : acc == S.ACC_LOAD ? S.OFF_TLB_R : S.OFF_TLB_W;
  const e = set + off + ((<u32>(vaddr >> 12) & (S.TLB_SIZE - 1)) << 4);
  store<u64>(e + S.TLB_WAY, load<u64>(e));
  store<u64>(e + S.TLB_WAY, load<u64>(e, 8), 8);
  store<u64>(e, vaddr & PAGE_MASK);
  store<u64>(e, <u64>host - (vaddr & PAGE_MASK), 8);
}

/**
 * After a miss in the TLB at `tlb`: the host address for `size` bytes at `vaddr` if the
 * second way holds the page (the two ways then swap, so the next access hits), else 0.
 */
export function tlbVictim(tlb: usize, vaddr: u64, size: u32): usize {
  const e = tlb + ((<u32>(vaddr >> 12) & (S.TLB_SIZE - 1)) << 4);
  const v = e + S.TLB_WAY;
  const tag = vaddr & PAGE_MASK;
  if (load<u64>(v) != tag || (<u32>vaddr & 0xfff) > 4096 - size) return 0;
  const addend = load<u64>(v, 8);
  store<u64>(v, load<u64>(e));
  store<u64>(v, load<u64>(e, 8), 8);
  store<u64>(e, tag);
  store<u64>(e, addend, 8);
  return <usize>(vaddr + addend);
}

/** TLB lookup in the TLB at `tlb`: host address for `size` bytes at `vaddr`, or 0 on a miss or page crossing. */
@inline export function tlbLookup(tlb: usize, vaddr: u64, size: u32): usize {
  const e = tlb + ((<u32>(vaddr >> 12) & (S.TLB_SIZE - 1)) << 4);
  if (load<u64>(e) == (vaddr & PAGE_MASK) && (<u32>vaddr & 0xfff) <= 4096 - size) return <usize>(vaddr + load<u64>(e, 8));
  return 0;
}

/** Loads `size` bytes at host address `host`, zero-extended. */
@inline function loadHost(host: usize, size: u32): u64 {
  if (size == 1) return load<u8>(host);
  if (size == 2) return load<u16>(host);
  if (size == 4) return load<u32>(host);
  return load<u64>(host);
}

/** Stores the low `size` bytes of `v` at host address `host`. */
@inline function storeHost(host: usize, size: u32, v: u64): void {
  if (size == 1) store<u8>(host, <u8>v);
  else if (size == 2) store<u16>(host, <u16>v);
  else if (size == 4) store<u32>(host, <u32>v);
  else store<u64>(host, v);
}

function readPhys(pa: u64, size: u32, vaddr: u64): u64 {
  const host = physHost(pa, size, false);
  if (host != 0) return loadHost(host, size);
  S.irqCheck = true;
  if (mmio_read(<f64>pa, size) != 0) {
    accessFault(S.ACC_LOAD, vaddr);
    return 0;
  }
  return load<u64>(S.hb + S.OFF_SCRATCH);
}

function writePhys(pa: u64, size: u32, v: u64, vaddr: u64): void {
  const host = physHost(pa, size, true);
  if (host != 0) {
    codeWrite(host, size);
    markDirty(host);
    storeHost(host, size, v);
    return;
  }
  S.irqCheck = true;
  if (mmio_write(<f64>pa, size, <i32>v, <i32>(v >> 32)) != 0) accessFault(S.ACC_STORE, vaddr);
}

/** Load after a TLB miss: translates, fills the TLB, handles MMIO and page-crossing accesses. */
export function loadSlow(vaddr: u64, size: u32): u64 {
  if (S.wpCount != 0 && watchHit(vaddr, size, WATCH_R)) return 0;
  if ((<u32>vaddr & 0xfff) + size > 4096) {
    // Crosses a page: assemble from bytes (each may fault on its own page).
    let v: u64 = 0;
    for (let i: u32 = 0; i < size; i++) {
      const b = loadSlow(vaddr + i, 1);
      if (S.trapped) return 0;
      v |= b << (8 * <u64>i);
    }
    return v;
  }
  const hit = tlbVictim(S.dataTlbSet() + S.OFF_TLB_R, vaddr, size);
  if (hit != 0) return loadHost(hit, size);
  const pa = translate(vaddr, S.ACC_LOAD);
  if (S.trapped) return 0;
  tlbFill(S.ACC_LOAD, vaddr, pa);
  if ((pa & (size - 1)) != 0 && physHost(pa, size, false) == 0) {
    // Misaligned device access.
    accessFault(S.ACC_LOAD, vaddr);
    return 0;
  }
  return readPhys(pa, size, vaddr);
}

/** Store after a TLB miss. */
export function storeSlow(vaddr: u64, size: u32, v: u64): void {
  if (S.wpCount != 0 && watchHit(vaddr, size, WATCH_W)) return;
  if ((<u32>vaddr & 0xfff) + size > 4096) {
    // Translate both pages first so that a fault leaves memory untouched.
    const second = (vaddr + size - 1) & PAGE_MASK;
    translate(vaddr, S.ACC_STORE);
    if (S.trapped) return;
    translate(second, S.ACC_STORE);
    if (S.trapped) return;
    for (let i: u32 = 0; i < size; i++) {
      storeSlow(vaddr + i, 1, v >> (8 * <u64>i));
      if (S.trapped) return;
    }
    return;
  }
  const hit = tlbVictim(S.dataTlbSet() + S.OFF_TLB_W, vaddr, size);
  if (hit != 0) {
    storeHost(hit, size, v);
    return;
  }
  const pa = translate(vaddr, S.ACC_STORE);
  if (S.trapped) return;
  tlbFill(S.ACC_STORE, vaddr, pa);
  if ((pa & (size - 1)) != 0 && physHost(pa, size, true) == 0) {
    accessFault(S.ACC_STORE, vaddr);
    return;
  }
  writePhys(pa, size, v, vaddr);
}

/**
 * Host address of the page holding `vaddr` for instruction fetch, or 0 after
 * raising a fault (fetch from MMIO is an access fault).
 */
export function fetchPage(vaddr: u64): usize {
  const tlb = S.tlbSet(S.priv) + S.OFF_TLB_X;
  const hit = tlbLookup(tlb, vaddr & PAGE_MASK, 1);
  if (hit != 0) return hit;
  const second = tlbVictim(tlb, vaddr & PAGE_MASK, 1);
  if (second != 0) return second;
  const pa = translate(vaddr, S.ACC_FETCH);
  if (S.trapped) return 0;
  const host = physHost(pa & PAGE_MASK, 4096, false);
  if (host == 0) {
    accessFault(S.ACC_FETCH, vaddr);
    return 0;
  }
  tlbFill(S.ACC_FETCH, vaddr, pa);
  return host;
}

/**
 * Host address for an atomic access of `size` bytes (naturally aligned, RAM only,
 * with store permission). Raises the fault and returns 0 otherwise.
 */
export function amoHost(vaddr: u64, size: u32, isLoadReserved: bool): usize {
  if ((vaddr & (size - 1)) != 0) {
    raiseException(isLoadReserved ? S.CAUSE_MISALIGNED_LOAD : S.CAUSE_MISALIGNED_STORE, vaddr);
    return 0;
  }
  const acc = isLoadReserved ? S.ACC_LOAD : S.ACC_STORE;
  const tlb = S.dataTlbSet() + (isLoadReserved ? S.OFF_TLB_R : S.OFF_TLB_W);
  const hit = tlbLookup(tlb, vaddr, size);
  if (hit != 0) return hit;
  const second = tlbVictim(tlb, vaddr, size);
  if (second != 0) return second;
  // Watched pages never hit the TLB. LR reads; SC and the AMOs count as a read and a write.
  if (S.wpCount != 0 && watchHit(vaddr, size, isLoadReserved ? WATCH_R : WATCH_R | WATCH_W)) return 0;
  const pa = translate(vaddr, acc);
  if (S.trapped) return 0;
  const host = physHost(pa, size, true);
  if (host == 0) {
    accessFault(acc, vaddr);
    return 0;
  }
  if (!isLoadReserved) {
    codeWrite(host, size);
    markDirty(host);
  }
  tlbFill(acc, vaddr, pa);
  return host;
}

/**
 * The debugger's view of a data address: the physical address `vaddr` maps to for the
 * hart's current data privilege and satp, or -1 when it is not mapped. Unlike translate()
 * it has no side effects (no A/D updates, TLB fills or faults) and ignores the R/W/X/U
 * permissions, so that a debugger can read and patch any mapped page.
 */
export function debugTranslate(vaddr: u64): u64 {
  const mode = S.satp >> 60;
  if (S.dataPriv() == 3 || mode == 0) return vaddr;
  const levels: u32 = mode == 8 ? 3 : 4;
  if (S.sext(vaddr, 12 + 9 * levels) != vaddr) return -1;
  let table: u64 = (S.satp & 0xfffffffffff) << 12;
  for (let level = <i32>levels - 1; level >= 0; level--) {
    const host = physHost(table + (((vaddr >> (12 + 9 * <u64>level)) & 0x1ff) << 3), 8, false);
    if (host == 0) return -1;
    const pte = atomic.load<u64>(host);
    if ((pte & PTE_V) == 0 || ((pte & PTE_R) == 0 && (pte & PTE_W) != 0) || (pte & PTE_RESERVED) != 0) return -1;
    const ppn = (pte >> 10) & 0xfffffffffff;
    if ((pte & (PTE_R | PTE_X)) == 0) {
      table = ppn << 12;
      continue;
    }
    const lowMask: u64 = (<u64>1 << (9 * <u64>level)) - 1;
    if ((ppn & lowMask) != 0) return -1;
    return ((ppn & ~lowMask) << 12) | (vaddr & ((lowMask << 12) | 0xfff));
  }
  return -1;
}
