/**
 * How the host backs guest RAM. Under Node on Linux, guest RAM is advised into transparent
 * huge pages (madvise MADV_HUGEPAGE, as QEMU does for its RAM blocks): the guest's first
 * touches of its memory then cost one host page fault per 2 MiB instead of one per 4 KiB.
 * On a virtualised host a fault costs ~15 us; the bundled guest's boot touches enough
 * memory for that to be ~10% of its time. Elsewhere (the browser, other systems, THP
 * set to `never`) guest RAM stays as the runtime allocated it.
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
