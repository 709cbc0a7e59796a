/**
 * How the host backs guest RAM. Under Node on Linux, guest RAM is advised into transparent
 * huge pages (madvise MADV_HUGEPAGE, as QEMU does for its RAM blocks): the guest's first
 * touches of its memory then cost one host page fault per 2 MiB instead of one per 4 KiB.
 * On a virtualised host a fault costs ~15 us; the bundled guest's boot touches enough
 * memory for that to be ~10% of its time. Elsewhere (the browser, other systems, THP
 * set to `never`) guest RAM stays as the runtime allocated it. Also here: zeroing guest RAM
 * (shared memory) quickly.
 */

/** Advises one range of guest RAM, or null before {@link enableHugePages} succeeded. */
let advise: ((ram: Uint8Array) => void) | null = null;

const MADV_HUGEPAGE = 14;

/**
 * Loads the madvise binding (koffi: ~30 ms, once) so that guest RAM allocated from now on
 * is advised; without it (not Linux, koffi missing) nothing changes.
 */
export async function enableHugePages(): Promise<void> {
  if (advise !== null || typeof process !== 'object' || process.platform !== 'linux') return;
  try {
    const { default: koffi } = await import('koffi');
    const madvise = koffi.load('libc.so.6').func('int madvise(void *addr, size_t length, int advice)');
    // A refusal (EINVAL without THP in the kernel) only leaves the memory as it was.
    advise = (ram) => void madvise(ram, ram.length, MADV_HUGEPAGE);
  } catch {
    // No binding: guest RAM stays as the runtime allocates it.
  }
}

/** Called on guest RAM just allocated, before its first touch. */
export function adviseGuestRam(ram: Uint8Array): void {
  if (ram.length > 0) advise?.(ram);
}

/** Zeros for a disk's writeZeroes and for zeroing guest RAM, in pieces of this size so a large range needs little memory. */
const ZERO_CHUNK = 1 << 20;
let zeroChunk: Uint8Array | undefined;

/** A shared, never-written buffer of zeros (libuv only reads it). */
export function zeros(len: number): Uint8Array {
  zeroChunk ??= new Uint8Array(ZERO_CHUNK);
  return zeroChunk.subarray(0, Math.min(len, ZERO_CHUNK));
}

/**
 * Zeroes `dst` by copying from {@link zeros}: on a view of shared memory (guest RAM),
 * fill(0) stores byte by byte and took ~300 us per MiB here, a copy ~50.
 */
export function zeroFill(dst: Uint8Array): void {
  for (let at = 0; at < dst.length;) {
    const z = zeros(dst.length - at);
    dst.set(z, at);
    at += z.length;
  }
}
