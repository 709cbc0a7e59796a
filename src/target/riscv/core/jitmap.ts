// The JIT's map of guest RAM pages holding translated code (one byte per 4 KiB of
// host linear memory, indexed by host address >> 12; bit 0 set: the page has
// translated blocks). Pages with code never enter a write TLB, so every store to
// them takes the slow path, which calls codeWrite() to drop the stale blocks.
// codeMap stays 0 while the JIT is off: then nothing here costs anything.

@external("env", "jit_invalidate") declare function jit_invalidate(host: i32, size: i32): void;

/** Host address of the code map, or 0 when the JIT is off. */
export let codeMap: usize = 0;

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
