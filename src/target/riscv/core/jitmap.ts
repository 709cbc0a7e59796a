// The JIT's map of guest RAM pages holding translated code (one byte per 4 KiB of
// host linear memory, indexed by host address >> 12; bit 0 set: the page has
// translated blocks). Pages with code never enter a write TLB, so every store to
// them takes the slow path, which calls codeWrite() to drop the stale blocks.
// codeMap stays 0 while the JIT is off: then nothing here costs anything.

@external("env", "jit_invalidate") declare function jit_invalidate(host: i32, size: i32): void;

/** Host address of the code map, or 0 when the JIT is off. */
export let codeMap: usize = 0;

/**
 * Hotness filter of this hart (FILTER_SIZE u16 counters indexed by a hash of the pc):
 * the interpreter counts, for each jump target, the instructions it ran from there to
 * its next taken jump (hotJump), the dispatcher the times it came to it; once a counter
 * reaches `hot`, the interpreter returns to the dispatcher at that target (run() with stopAtJump).
 */
export let filter: usize = 0;
export let hot: u32 = 32;
export const FILTER_SIZE: u32 = 65536;

@inline export function filterSlot(pc: u64): usize {
  return filter + (((<u32>(pc >> 1) ^ <u32>(pc >> 17)) & (FILTER_SIZE - 1)) << 1);
}

/**
 * The dispatcher's hash table of region entry points (32-byte entries: pc u64,
 * host u32, table index i32, block index u32; see jit.ts).
 */
export let hashBase: usize = 0;
export let hashMask: u32 = 0;
export const ENTRY_SHIFT: u32 = 5;

@inline export function hashSlot(pc: u64): usize {
  return hashBase + ((<usize>((<u32>pc >> 1) ^ <u32>(pc >> 13)) & hashMask) << ENTRY_SHIFT);
}

/**
 * Bitmap of this hart (ENTRY_BITS bits indexed by a hash of the pc): set where a region
 * block may start (false positives only cost a stop). Small enough to stay in the
 * host's caches, unlike the hash table, so the interpreter can test it at every jump.
 */
export let entryMap: usize = 0;
export const ENTRY_BITS: u32 = 1 << 20;

@inline function entryBit(pc: u64): u32 {
  return (<u32>(pc >> 1) ^ <u32>(pc >> 21)) & (ENTRY_BITS - 1);
}

/** Marks `pc` as a possible region entry. */
export function markEntry(pc: u64): void {
  const i = entryBit(pc);
  const a = entryMap + (i >> 3);
  store<u8>(a, load<u8>(a) | (<u8>1 << <u8>(i & 7)));
}

/** True if a translated region block may start at `pc`. */
@inline export function isEntry(pc: u64): bool {
  const i = entryBit(pc);
  return (load<u8>(entryMap + (i >> 3)) & (1 << (i & 7))) != 0;
}

/**
 * Counts a jump to `pc`; true if a translated region block starts there or once the
 * target is hot (the dispatcher should look at it).
 */
@inline export function hotTarget(pc: u64): bool {
  if (isEntry(pc)) return true;
  const f = filterSlot(pc);
  const c = load<u16>(f);
  if (<u32>c >= hot) return true;
  store<u16>(f, c + 1);
  return false;
}

/**
 * A taken jump to `to`, `insns` instructions after the interpreter reached jump target
 * `from`: credits them to `from`'s counter (saturating), so that code gets hot by the
 * instructions run from it, and tells whether to stop at `to` (a region entry, or hot).
 */
@inline export function hotJump(from: u64, insns: u32, to: u64): bool {
  const f = filterSlot(from);
  const c = <u32>load<u16>(f) + insns;
  store<u16>(f, <u16>(c < 0xffff ? c : 0xffff));
  return isEntry(to) || <u32>load<u16>(filterSlot(to)) >= hot;
}

/** True if the page at host address `host` holds translated code. */
@inline export function isCode(host: usize): bool {
  return codeMap != 0 && (load<u8>(codeMap + (host >> 12)) & 1) != 0;
}

/** Set when codeWrite() found translated code (the JIT's store helper then leaves the region). */
export let codeWritten: bool = false;

/** A store of `size` bytes at host address `host` is about to happen: the host drops the translations it overlaps. */
export function codeWrite(host: usize, size: u32): void {
  if (codeMap == 0) return;
  const last = host + size - 1;
  if ((load<u8>(codeMap + (host >> 12)) & 1) != 0 || (load<u8>(codeMap + (last >> 12)) & 1) != 0) {
    codeWritten = true;
    jit_invalidate(<i32>host, size);
  }
}
