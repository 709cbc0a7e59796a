/**
 * Guest RAM as devices see it (consumer side only, as rust-vmm's vm-memory): reads,
 * writes and zero-copy views of guest-physical ranges, every one bounds-checked, so
 * a guest-supplied address can never reach outside guest RAM. Only a board creates
 * a GuestMemory; devices receive one when they are activated.
 */

/** Guest-physical memory access for DMA. All addresses and lengths come from the guest: nothing is trusted. */
export interface GuestMemory {
  /**
   * A live view of [gpa, gpa + len) if the range lies entirely inside one RAM region,
   * else null. Writes through the view reach guest RAM directly.
   */
  view(gpa: number, len: number): Uint8Array | null;
  /**
   * view() for a device that only reads through the view (a transfer out of guest RAM):
   * memories that watch device writes (the JIT's, for code) need not see it.
   */
  readView(gpa: number, len: number): Uint8Array | null;
  /** Whether view() would give a view of [gpa, gpa + len) (a check with nothing allocated). */
  contains(gpa: number, len: number): boolean;
  /** Copies guest memory into `dst`; false (and nothing copied) if the range is not RAM. */
  read(gpa: number, dst: Uint8Array): boolean;
  /** Copies `src` into guest memory; false (and nothing written) if the range is not RAM. */
  write(gpa: number, src: Uint8Array): boolean;
  /**
   * Records that the device wrote [gpa, gpa + len) through a view (write() records its own
   * writes), so that live migration sends those pages again.
   */
  markDirty(gpa: number, len: number): void;
}

/** One region of guest RAM: `bytes` holds guest-physical [base, base + bytes.length). */
export interface RamRegion {
  base: number;
  bytes: Uint8Array;
  /** The region's dirty map, one byte per 4 KiB page (set to 1 on a write), if the board tracks dirty pages. */
  dirty?: Uint8Array;
}

/** GuestMemory over a few RAM regions (one on RISC-V virt, two on x86 around the 32-bit hole). */
export class RegionGuestMemory implements GuestMemory {
  constructor(private readonly regions: readonly RamRegion[]) {}

  view(gpa: number, len: number): Uint8Array | null {
    const r = this.region(gpa, len);
    return r ? r.bytes.subarray(gpa - r.base, gpa - r.base + len) : null;
  }

  readView(gpa: number, len: number): Uint8Array | null {
    return this.view(gpa, len);
  }

  contains(gpa: number, len: number): boolean {
    return this.region(gpa, len) !== null;
  }

  /** The region holding all of [gpa, gpa + len), if any. */
  private region(gpa: number, len: number): RamRegion | null {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(len) || gpa < 0 || len < 0) return null;
    for (const r of this.regions) {
      const off = gpa - r.base;
      if (off >= 0 && off + len <= r.bytes.length) return r;
    }
    return null;
  }

  read(gpa: number, dst: Uint8Array): boolean {
    const v = this.view(gpa, dst.length);
    if (!v) return false;
    dst.set(v);
    return true;
  }

  write(gpa: number, src: Uint8Array): boolean {
    const v = this.view(gpa, src.length);
    if (!v) return false;
    v.set(src);
    this.markDirty(gpa, src.length);
    return true;
  }

  markDirty(gpa: number, len: number): void {
    if (len <= 0) return;
    for (const r of this.regions) {
      const off = gpa - r.base;
      if (r.dirty && off >= 0 && off + len <= r.bytes.length) r.dirty.fill(1, Math.floor(off / 4096), Math.floor((off + len - 1) / 4096) + 1);
    }
  }
}
