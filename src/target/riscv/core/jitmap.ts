// The JIT's map of guest RAM pages holding translated code (one byte per 4 KiB of
// host linear memory, indexed by host address >> 12; bit 0 set: the page has
// translated blocks). Pages with code never enter a write TLB, so every store to
// them takes the slow path, which calls codeWrite() to drop the stale blocks.
// codeMap stays 0 while the JIT is off: then nothing here costs anything.

@external("env", "jit_invalidate") declare function jit_invalidate(host: i32, size: i32): void;

/** Host address of the code map, or 0 when the JIT is off. */
export let codeMap: usize = 0;

/**
 * Hotness filter of this hart (FILTER_SIZE u8 counters indexed by a hash of the pc):
 * the interpreter counts taken jumps to each target; once a counter reaches `hot`, it
 * returns to the JIT dispatcher at that target (run() with stopAtJump).
 */
export let filter: usize = 0;
export let hot: u32 = 32;
export const FILTER_SIZE: u32 = 65536;

@inline export function filterSlot(pc: u64): usize {
  return filter + ((<u32>(pc >> 1) ^ <u32>(pc >> 17)) & (FILTER_SIZE - 1));
}

/** Counts a jump to `pc`; true once the target is hot (the dispatcher should look at it). */
@inline export function hotTarget(pc: u64): bool {
  const f = filterSlot(pc);
  const c = load<u8>(f);
  if (c >= hot) return true;
  store<u8>(f, c + 1);
  return false;
}

/** True if the page at host address `host` holds translated code. */
@inline export function isCode(host: usize): bool {
  return codeMap != 0 && (load<u8>(codeMap + (host >> 12)) & 1) != 0;
}

/** A store of `size` bytes at host address `host` is about to happen: the host drops the translations it overlaps. */
export function codeWrite(host: usize, size: u32): void {
  if (codeMap == 0) return;
  const last = host + size - 1;
  if ((load<u8>(codeMap + (host >> 12)) & 1) != 0 || (load<u8>(codeMap + (last >> 12)) & 1) != 0) jit_invalidate(<i32>host, size);
}
