// The core side of the JIT (docs/jit.md): the dispatcher that runs translated
// regions, the hash table of their entry points, and the helpers that translated
// code imports (slow-path loads and stores, M-extension operations). The
// translator itself runs on the host (src/target/riscv/jit/): it is called through
// jit_translate when a pc has been jumped to often enough, emits a WebAssembly
// function `(entry, budget) => i64` per region (returns the next pc), stores it in
// this instance's function table and enters the region's blocks here (jitEnter).
import * as S from './state';
import * as E from './exec';
import * as M from './jitmap';
import { tlbLookup, tlbVictim, loadSlow, storeSlow } from './mmu';
import { checkInterrupts } from './trap';

@external("env", "jit_translate") declare function jit_translate(pcLo: i32, pcHi: i32, host: i32): i32;
@external("env", "jit_sync") declare function jit_sync(): void;

// Words in the hart block shared with translated code (free space after OFF_SCRATCH).
export const OFF_JIT: u32 = 0x280;
export const JIT_COUNT: u32 = 0;   // u32: instructions executed by the last region call and the regions it chained to (incl. a faulting one)
export const JIT_FLAG: u32 = 4;    // u32: set by a helper: FLAG_TRAP or FLAG_STOP
export const JIT_TLBR: u32 = 8;    // u32: host address of the read TLB for this region call
export const JIT_TLBW: u32 = 12;   // u32: host address of the write TLB
export const JIT_TLBX: u32 = 16;   // u32: host address of the fetch TLB (regions chain through it)
export const JIT_NPC: u32 = 24;    // u64: the pc a region is entered at (it returns it when the budget is too small to run any of it); after a helper's stop, the next pc
/** The instruction trapped: S.pc is the trap vector. */
const FLAG_TRAP: u32 = 1;
/** The instruction completed but the dispatcher must look (an interrupt may be pending, code was written). */
const FLAG_STOP: u32 = 2;

// Hash table entries (M.hashSlot, 32 bytes): pc u64, host u32 (where the block starts),
// idx i32 (table index of its region, or -1: cannot translate), entry u32 (block index).
const ENTRY_SHIFT = M.ENTRY_SHIFT;

// Counters for `info jit` (64-bit, read by the host through jitCounter).
let nCalls: u64 = 0;
let nInsns: u64 = 0;
let nRuns: u64 = 0;

/** Bytes of hart memory the JIT needs for `entries` hash entries (the hotness filter and the entry bitmap follow). */
export function jitHartBytes(entries: u32): u32 {
  return (entries << ENTRY_SHIFT) + M.FILTER_SIZE * 2 + (M.ENTRY_BITS >> 3);
}

/** Enables the JIT for this hart: code map (shared), this hart's hash table and filter, hotness threshold (1..65535). */
export function jitInit(codeMap: u32, hash: u32, entries: u32, hot: u32): void {
  M.codeMap = codeMap;
  M.hashBase = hash;
  M.hashMask = entries - 1;
  M.filter = hash + (entries << ENTRY_SHIFT);
  M.entryMap = M.filter + M.FILTER_SIZE * 2;
  M.hot = hot;
  jitFlush();
}

/**
 * With harts on several threads (thread=multi): the shared invalidation log's entry
 * count and this hart's count of the entries it has applied. The dispatcher compares
 * them before each pc it looks at and has the host apply the new entries (jit_sync), so
 * a hart never enters translated code another hart's store has made stale before it
 * last came back to the dispatcher (FENCE.I always does: regions leave at it).
 */
let logGen: usize = 0;
let logSeen: usize = 0;

/** Enables the invalidation log check (host addresses of the two words). */
export function jitShare(gen: u32, seen: u32): void {
  logGen = gen;
  logSeen = seen;
}

/** Forgets every region of this hart. */
export function jitFlush(): void {
  memory.fill(M.filter, 0, M.FILTER_SIZE * 2 + (M.ENTRY_BITS >> 3));
  const end = M.hashBase + ((<usize>M.hashMask + 1) << ENTRY_SHIFT);
  for (let e = M.hashBase; e < end; e += 1 << ENTRY_SHIFT) {
    store<u64>(e, 1); // odd: never a pc
    store<u32>(e, 0, 8);
    store<i32>(e, 0, 12);
  }
}

/** Forgets the entry points in the page at host address `page` (their entry bits stay: see M.entryMap). */
export function jitDropPage(page: u32): void {
  const end = M.hashBase + ((<usize>M.hashMask + 1) << ENTRY_SHIFT);
  for (let e = M.hashBase; e < end; e += 1 << ENTRY_SHIFT) {
    if ((load<u32>(e, 8) & ~0xfff) == page) {
      store<u64>(e, 1);
      store<u32>(e, 0, 8);
      store<i32>(e, 0, 12);
    }
  }
}

/** Removes the page at host address `page` from this hart's write TLBs (it now holds code). */
export function jitDropWrite(page: u32): void {
  for (let set: u32 = 0; set < S.TLB_SETS; set++) {
    const base = S.hb + S.OFF_TLB + set * S.TLB_SET_SIZE + S.OFF_TLB_W;
    for (let i: u32 = 0; i < 2 * S.TLB_SIZE; i++) {
      const e = base + (i << 4);
      const tag = load<u64>(e);
      if (tag != <u64>-1 && <u32>(tag + load<u64>(e, 8)) == page) store<u64>(e, <u64>-1);
    }
  }
}

/**
 * Enters the block at pc (lo, hi), host address `host`, as block `entry` of the region
 * at table index `idx` (-1: the pc cannot be translated); the interpreter stops at
 * jumps to it (M.hotTarget).
 */
export function jitEnter(pcLo: u32, pcHi: u32, host: u32, idx: i32, entry: u32): void {
  const pc = (<u64>pcHi << 32) | <u64>pcLo;
  const e = M.hashSlot(pc);
  store<u64>(e, pc);
  store<u32>(e, host, 8);
  store<i32>(e, idx, 12);
  store<u32>(e, entry, 16);
  if (idx < 0) store<u16>(M.filterSlot(pc), 0);
  else M.markEntry(pc);
}

/** Statistics for the host: 0 region calls, 1 instructions run in regions, 2 interpreter runs. */
export function jitCounter(which: i32): u64 {
  return which == 0 ? nCalls : which == 1 ? nInsns : nRuns;
}

/**
 * run() with translated regions: executes at most `budget` instructions and returns
 * like run(). At each pc it reaches (start, region exit, interpreter stop at a hot
 * jump target) it runs the region entered there if there is one, translates the pc
 * once it is hot, and otherwise interprets until the next hot target.
 */
export function runJit(budget: i32): i32 {
  const xb = S.hb;
  const end = S.instret + <u64>budget;
  let exit = E.EXIT_BUDGET;
  E.stopAtJump = true;
  while (S.instret < end) {
    if (logGen != 0 && atomic.load<u32>(logGen) != load<u32>(logSeen)) jit_sync();
    if (!S.irqCheck) {
      const pc = S.pc;
      const tlbX = S.tlbSet(S.priv) + S.OFF_TLB_X;
      // The fetch TLB's second way too (it swaps into the first, where regions look when they chain).
      let host = tlbLookup(tlbX, pc, 2);
      if (host == 0) host = tlbVictim(tlbX, pc, 2);
      if (host != 0) {
        const e = M.hashSlot(pc);
        if (load<u64>(e) == pc && load<u32>(e, 8) == <u32>host) {
          const idx = load<i32>(e, 12);
          if (idx > 0) {
            const t = S.dataTlbSet();
            store<u32>(xb + OFF_JIT + JIT_TLBR, <u32>(t + S.OFF_TLB_R));
            store<u32>(xb + OFF_JIT + JIT_TLBW, <u32>(t + S.OFF_TLB_W));
            store<u32>(xb + OFF_JIT + JIT_TLBX, <u32>tlbX);
            store<u32>(xb + OFF_JIT + JIT_COUNT, 0); // each region adds its own, then chains on
            store<u64>(xb + OFF_JIT + JIT_NPC, pc);
            const npc = call_indirect<u64>(<u32>idx, load<u32>(e, 16), <i32>(end - S.instret));
            const n = load<u32>(xb + OFF_JIT + JIT_COUNT);
            S.instret += <u64>n;
            nCalls++;
            nInsns += <u64>n;
            const flag = load<u32>(xb + OFF_JIT + JIT_FLAG);
            if (flag != 0) {
              store<u32>(xb + OFF_JIT + JIT_FLAG, 0);
              if (flag == FLAG_TRAP) {
                S.trapped = false; // S.pc is the trap vector
                continue;
              }
            }
            // n == 0: the budget is smaller than the region: interpret the rest.
            if (n != 0) {
              S.pc = npc;
              continue;
            }
          } else {
            store<u16>(M.filterSlot(pc), 0); // cannot translate: count again before the next stop here
          }
        } else if (M.hotTarget(pc)) {
          // 1: entered (look again), 0: cannot translate, -1: queued (ask again later).
          const r = jit_translate(<i32>pc, <i32>(pc >> 32), <i32>host);
          if (r > 0) continue;
          if (r < 0) store<u16>(M.filterSlot(pc), <u16>(M.hot >> 1));
          else jitEnter(<u32>pc, <u32>(pc >> 32), <u32>host, -1, 0);
        }
      }
    }
    nRuns++;
    const r = E.run(<i32>(end - S.instret));
    if (r != E.EXIT_BUDGET) {
      exit = r;
      break;
    }
  }
  E.stopAtJump = false;
  return exit;
}

// Helpers called by translated code. `pc` is the instruction's address (for traps); a
// helper that raises a flag leaves the next pc in JIT_NPC for the region's side exit.

/** Raises `flag` for the region; `next` is the pc after the instruction (for FLAG_STOP). */
function raise(flag: u32, next: u64): void {
  store<u32>(S.hb + OFF_JIT + JIT_FLAG, flag);
  store<u64>(S.hb + OFF_JIT + JIT_NPC, next);
}

/** Bit of a helper's size argument set for a 32-bit instruction (clear: a compressed one). */
const LONG: i32 = 16;

@inline function nextPc(pc: u64, sizeArg: i32): u64 {
  return pc + ((sizeArg & LONG) != 0 ? 4 : 2);
}

/**
 * Load after a TLB miss; f3 is the LOAD funct3 (size and signedness) | LONG, `old` the
 * destination register's value, returned if the load traps (it must keep it).
 */
export function jitLd(addr: u64, f3: i32, pc: u64, old: u64): u64 {
  S.pc = pc;
  const op = f3 & 7;
  let v = loadSlow(addr, 1 << (op & 3));
  if (S.trapped) {
    raise(FLAG_TRAP, pc);
    return old;
  }
  if (S.irqCheck) raise(FLAG_STOP, nextPc(pc, f3));
  if (op < 3) v = S.sext(v, 8 << op);
  return v;
}

/** Store after a TLB miss (or to a page holding code); `size` in bytes | LONG. Returns 1 if it raised a flag. */
export function jitSt(addr: u64, v: u64, size: i32, pc: u64): i32 {
  S.pc = pc;
  M.codeWritten = false;
  storeSlow(addr, size & 15, v);
  if (S.trapped) raise(FLAG_TRAP, pc);
  else if (S.irqCheck || M.codeWritten) raise(FLAG_STOP, nextPc(pc, size));
  else return 0;
  return 1;
}

/**
 * Runs the instruction at `pc` (CSR, AMO, F/D: see translate.ts) in the interpreter;
 * `done`: instructions the region has executed, this one included (for instret).
 * The region has stored the instruction's x sources and reloads its x destination.
 * What run() would do after it (irqCheck) happens here, so that the region goes on
 * unless an interrupt is taken, the TLB sets or the code page changed, or the host
 * asked to stop.
 */
export function jitExec(pc: u64, next: u64, done: u32): i32 {
  const code = tlbLookup(S.tlbSet(S.priv) + S.OFF_TLB_X, pc, 2);
  const base = S.instret;
  // Regions chained to before this one counted theirs in JIT_COUNT.
  S.instret = base + <u64>load<u32>(S.hb + OFF_JIT + JIT_COUNT) + <u64>done - 1;
  S.pc = pc;
  M.codeWritten = false;
  E.run(1);
  S.instret = base;
  if (S.pc != next) { // it trapped: S.pc is the vector
    raise(FLAG_TRAP, next);
    return 1;
  }
  let stop = M.codeWritten;
  if (S.irqCheck) {
    if (atomic.load<u32>(S.hb + S.OFF_EXIT) != 0 ||
      S.dataTlbSet() + S.OFF_TLB_R != load<u32>(S.hb + OFF_JIT + JIT_TLBR) ||
      tlbLookup(S.tlbSet(S.priv) + S.OFF_TLB_X, pc, 2) != code) {
      stop = true;
    } else {
      S.irqCheck = false;
      if (!S.noIrq && checkInterrupts()) {
        raise(FLAG_TRAP, next);
        return 1;
      }
    }
  }
  if (!stop) return 0;
  raise(FLAG_STOP, next);
  return 1;
}

/** M-extension operations other than MUL/MULW: op = funct3, plus 8 for the W forms. */
export function jitMd(a: u64, b: u64, op: i32): u64 {
  return op < 8 ? E.mulDiv(a, b, <u32>op) : E.mulDivW(<u32>a, <u32>b, <u32>(op - 8));
}
