/**
 * Physical address space: MMIO regions with QEMU's valid/impl split.
 *
 * A device implements {@link MmioHandler} and sees offsets relative to its own
 * region, never absolute addresses (as in TinyEMU, rust-vmm and Firecracker).
 * The address space splits wide accesses into the widths a handler implements,
 * so no device ever deals with 8-byte values: all values are plain numbers
 * (unsigned, at most 32 bits), never BigInt.
 */

/** Register-level access to one device region. Offsets are relative to the region. */
export interface MmioHandler {
  /** Returns the value read (unsigned, `size` bytes wide, size <= impl.max). */
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

/** Access widths in bytes (1, 2, 4 or 8). */
export interface AccessRange { min: number; max: number }

/** A device region placed in an {@link AddressSpace}. */
export interface MmioRegion {
  name: string;
  base: number;
  size: number;
  handler: MmioHandler;
  /** What the guest may do; other widths are bus errors. Default 1..8. */
  valid?: AccessRange;
  /** What the handler implements; wider accesses are split little-endian. Default 1..4. */
  impl?: AccessRange;
}

/** Returned by {@link AddressSpace.read} when no region accepts the access. */
export const BUS_ERROR = -1;

/**
 * A flat physical address space for device regions (RAM is the CPU's business).
 * Overlapping regions are rejected. Lookups are linear: boards have a handful of regions,
 * and the most recently hit one is checked first.
 */
export class AddressSpace {
  private regions: MmioRegion[] = [];
  private last: MmioRegion | null = null;

  addRegion(region: MmioRegion): void {
    for (const r of this.regions) {
      if (region.base < r.base + r.size && r.base < region.base + region.size) {
        throw new Error(`MMIO region ${region.name} overlaps ${r.name}`);
      }
    }
    this.regions.push(region);
  }

  removeRegion(region: MmioRegion): void {
    this.regions = this.regions.filter((r) => r !== region);
    this.last = null;
  }

  /** All regions, in insertion order (used to build device trees). */
  list(): readonly MmioRegion[] {
    return this.regions;
  }

  private find(addr: number, size: number): MmioRegion | null {
    const last = this.last;
    if (last && addr >= last.base && addr + size <= last.base + last.size) return last;
    for (const r of this.regions) {
      if (addr >= r.base && addr + size <= r.base + r.size) {
        this.last = r;
        return r;
      }
    }
    return null;
  }

  private accepts(r: MmioRegion, addr: number, size: number): boolean {
    const v = r.valid ?? { min: 1, max: 8 };
    return size >= v.min && size <= v.max && (addr & (size - 1)) === 0;
  }

  /**
   * Reads `size` bytes at `addr`. Returns BUS_ERROR if unmapped or not a valid access.
   * For size 8 the result is split: the low 32 bits are returned and the high 32 bits
   * are left in {@link hi}.
   */
  hi = 0;
  read(addr: number, size: number): number {
    const r = this.find(addr, size);
    if (!r || !this.accepts(r, addr, size)) return BUS_ERROR;
    const implMax = Math.min(r.impl?.max ?? 4, 4);
    const off = addr - r.base;
    if (size <= implMax) {
      this.hi = 0;
      return r.handler.read(off, size) >>> 0;
    }
    // Split into implMax-wide little-endian pieces.
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < size; i += implMax) {
      const v = r.handler.read(off + i, implMax) >>> 0;
      if (i < 4) lo = (lo | (v * 2 ** (i * 8))) >>> 0;
      else hi = (hi | (v * 2 ** ((i - 4) * 8))) >>> 0;
    }
    this.hi = hi;
    return lo;
  }

  /** Writes `size` bytes; for size 8, `hi` holds bits 63..32. Returns false on a bus error. */
  write(addr: number, size: number, value: number, hi = 0): boolean {
    const r = this.find(addr, size);
    if (!r || !this.accepts(r, addr, size)) return false;
    const implMax = Math.min(r.impl?.max ?? 4, 4);
    const off = addr - r.base;
    if (size <= implMax) {
      r.handler.write(off, size, value >>> 0);
      return true;
    }
    const mask = implMax === 4 ? 0xffffffff : (1 << (implMax * 8)) - 1;
    for (let i = 0; i < size; i += implMax) {
      const word = i < 4 ? value >>> 0 : hi >>> 0;
      const shift = (i % 4) * 8;
      r.handler.write(off + i, implMax, (Math.floor(word / 2 ** shift) & mask) >>> 0);
    }
    return true;
  }
}
