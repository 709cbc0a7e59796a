/**
 * Split virtqueues, device side (Virtio 1.2, section 2.7): the descriptor table, the
 * available ring (driver area) and the used ring (device area) in guest RAM, read and
 * written through a {@link GuestMemory}.
 *
 * Everything in the rings comes from the guest and is checked before use: the ring
 * areas (alignment, inside RAM), every head and next index, every buffer (inside RAM,
 * readable before writable), indirect tables (negotiated, not nested, a non-zero
 * multiple of 16 bytes, inside RAM), the chain length (at most the queue size, 2.7.5.3.1,
 * which also bounds the work on a looping chain) and the available index (it may run
 * at most a queue size ahead). A violation marks the queue broken and reports it, and
 * the transport puts the device in DEVICE_NEEDS_RESET; nothing throws.
 *
 * Notification suppression (2.7.7, 2.7.10): the plain VIRTQ_AVAIL_F_NO_INTERRUPT flag,
 * or with VIRTIO_F_EVENT_IDX the driver's used_event; the device asks to be notified
 * for every new buffer by keeping avail_event equal to the next index it will read.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import {
  VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type DescriptorBuffer, type DescriptorChain, type Virtqueue,
} from './virtio.js';

/** Descriptor flags (2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Available ring flag (2.7.6): the driver does not want used buffer notifications. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** The largest queue size a split virtqueue can have (2.7). */
export const VIRTQ_MAX_SIZE = 32768;

const DESC_SIZE = 16;
/** A chain may not describe more than 2^32 bytes in total (2.7.5.2). */
const MAX_CHAIN_BYTES = 2 ** 32;

/** Bytes taken by each area of a split virtqueue of `size` entries (2.7), event fields included. */
export function splitQueueAreaSizes(size: number): { desc: number; driver: number; device: number } {
  return { desc: DESC_SIZE * size, driver: 6 + 2 * size, device: 6 + 8 * size };
}

/** Where the driver put a split virtqueue: its size and the guest-physical address of each area. */
export interface SplitQueueLayout {
  size: number;
  /** Descriptor table (Descriptor Area), 16-byte aligned. */
  desc: number;
  /** Available ring (Driver Area), 2-byte aligned. */
  driver: number;
  /** Used ring (Device Area), 4-byte aligned. */
  device: number;
}

/**
 * Why `layout` cannot be used as a split virtqueue in `mem`, or null if it can: the size
 * must be a power of 2 no larger than `maxSize`, and each area aligned (2.7) and wholly
 * inside one RAM region.
 */
export function splitQueueLayoutError(mem: GuestMemory, layout: SplitQueueLayout, maxSize = VIRTQ_MAX_SIZE): string | null {
  const { size } = layout;
  if (!Number.isInteger(size) || size < 1 || size > Math.min(maxSize, VIRTQ_MAX_SIZE) || (size & (size - 1)) !== 0) {
    return `queue size ${size} is not a power of 2 in 1..${Math.min(maxSize, VIRTQ_MAX_SIZE)}`;
  }
  const sizes = splitQueueAreaSizes(size);
  const areas = [['descriptor table', layout.desc, 16, sizes.desc], ['available ring', layout.driver, 2, sizes.driver],
    ['used ring', layout.device, 4, sizes.device]] as const;
  for (const [name, addr, align, len] of areas) {
    if (Number.isSafeInteger(addr) && addr % align !== 0) return `${name} at 0x${addr.toString(16)} is not ${align}-byte aligned`;
    if (!mem.contains(addr, len)) return `${name} at 0x${addr.toString(16)} (+0x${len.toString(16)}) is not in RAM`;
  }
  return null;
}

/**
 * Where a device is in a queue's rings, for snapshots: the next available and used ring
 * entries (free-running 16-bit indices) and whether the driver broke the queue. The rings
 * themselves are in guest RAM.
 */
export interface SplitQueuePosition {
  nextAvail: number;
  nextUsed: number;
  broken: boolean;
}

/**
 * Why `p` cannot be a position in a queue of `size` entries, or null if it can: the chains
 * the device holds (popped, not yet used) can be at most the queue size.
 */
export function splitQueuePositionError(p: SplitQueuePosition, size: number): string | null {
  const u16 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffff;
  if (!u16(p.nextAvail) || !u16(p.nextUsed) || typeof p.broken !== 'boolean') return 'ring indices are not 16-bit';
  if (((p.nextAvail - p.nextUsed) & 0xffff) > size) return `${(p.nextAvail - p.nextUsed) & 0xffff} chains in use in a queue of ${size}`;
  return null;
}

/** What a {@link SplitVirtqueue} reports to its transport. */
export interface SplitQueueHooks {
  /** Sends a used buffer notification (called only when the driver wants one). */
  interrupt(): void;
  /** The driver broke the ring protocol; the queue stops and the device needs a reset. */
  malformed(reason: string): void;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A 16-bit ring field the other side accesses concurrently (avail idx, used idx, the
 * event fields). Under KVM the driver runs on other threads: Atomics order the field
 * against the ring entries around it. On a big-endian host (or an odd view) a plain
 * little-endian access is used instead.
 */
class SharedU16 {
  private readonly cell: Uint16Array | null;
  constructor(private readonly bytes: Uint8Array, private readonly off: number) {
    const at = bytes.byteOffset + off;
    this.cell = LITTLE_ENDIAN_HOST && at % 2 === 0 ? new Uint16Array(bytes.buffer, at, 1) : null;
  }
  load(): number {
    return this.cell ? Atomics.load(this.cell, 0) : this.bytes[this.off]! | (this.bytes[this.off + 1]! << 8);
  }
  store(v: number): void {
    if (this.cell) {
      Atomics.store(this.cell, 0, v);
    } else {
      this.bytes[this.off] = v & 0xff;
      this.bytes[this.off + 1] = (v >>> 8) & 0xff;
    }
  }
}

function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A split virtqueue over guest memory, as a device uses it. Create it once the layout
 * passed {@link splitQueueLayoutError}. The three ring areas are mapped once, here: guest
 * RAM does not move while a machine runs.
 */
export class SplitVirtqueue implements Virtqueue {
  readonly size: number;
  private readonly desc: DataView;
  private readonly avail: DataView;
  private readonly used: DataView;
  private readonly availIdx: SharedU16;
  private readonly usedEvent: SharedU16;
  private readonly usedIdx: SharedU16;
  private readonly availEvent: SharedU16;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  /** The used ring (Device Area), the only ring area the device writes. */
  private readonly usedArea: { addr: number; len: number };
  /** Next available ring entry to read, and next used ring entry to write (free-running, 16 bits). */
  private nextAvail = 0;
  private nextUsed = 0;
  private broken = false;
  private detached = false;

  /**
   * @param features the negotiated features (EVENT_IDX and INDIRECT_DESC matter here)
   * @param from where to continue in rings already in use (a snapshot's {@link position}); default: at 0
   * @throws RangeError if the layout or position is invalid: check them with
   *   {@link splitQueueLayoutError} and {@link splitQueuePositionError} first
   */
  constructor(private readonly mem: GuestMemory, readonly index: number, layout: SplitQueueLayout,
    features: bigint, private readonly hooks: SplitQueueHooks, from?: SplitQueuePosition) {
    const err = splitQueueLayoutError(mem, layout) ?? (from ? splitQueuePositionError(from, layout.size) : null);
    if (err) throw new RangeError(err);
    if (from) ({ nextAvail: this.nextAvail, nextUsed: this.nextUsed, broken: this.broken } = from);
    this.size = layout.size;
    const sizes = splitQueueAreaSizes(layout.size);
    const desc = mem.view(layout.desc, sizes.desc)!;
    const avail = mem.view(layout.driver, sizes.driver)!;
    const used = mem.view(layout.device, sizes.device)!;
    this.usedArea = { addr: layout.device, len: sizes.device };
    this.desc = dataView(desc);
    this.avail = dataView(avail);
    this.used = dataView(used);
    this.availIdx = new SharedU16(avail, 2);
    this.usedEvent = new SharedU16(avail, 4 + 2 * this.size);
    this.usedIdx = new SharedU16(used, 2);
    this.availEvent = new SharedU16(used, 4 + 8 * this.size);
    this.eventIdx = (features >> VIRTIO_F_EVENT_IDX & 1n) === 1n;
    this.indirect = (features >> VIRTIO_F_INDIRECT_DESC & 1n) === 1n;
  }

  /** Where the device is in the rings, for snapshots. */
  get position(): SplitQueuePosition {
    return { nextAvail: this.nextAvail, nextUsed: this.nextUsed, broken: this.broken };
  }

  /** True once the driver broke the ring protocol: the queue hands out nothing more. */
  get isBroken(): boolean {
    return this.broken;
  }

  /** Stops all guest memory access for good (the transport calls this at device reset). */
  detach(): void {
    this.detached = true;
  }

  pop(): DescriptorChain | null {
    if (this.broken || this.detached) return null;
    let avail = this.availIdx.load();
    if (avail === this.nextAvail) {
      if (!this.eventIdx) return null;
      // Ask for a notification on the next buffer, then look again: the driver may have
      // added one before it could see the request.
      this.availEvent.store(this.nextAvail);
      this.markUsedDirty();
      avail = this.availIdx.load();
      if (avail === this.nextAvail) return null;
    }
    if (((avail - this.nextAvail) & 0xffff) > this.size) {
      return this.fail(`available index jumped from ${this.nextAvail} to ${avail} (queue size ${this.size})`);
    }
    const head = this.avail.getUint16(4 + 2 * (this.nextAvail % this.size), true);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    if (this.eventIdx) {
      this.availEvent.store(this.nextAvail);
      this.markUsedDirty();
    }
    return this.walk(head);
  }

  pushUsed(head: number, written: number): void {
    if (this.detached) return;
    if (!Number.isInteger(head) || head < 0 || head >= this.size) throw new RangeError(`used head ${head} out of range`);
    const slot = 4 + 8 * (this.nextUsed % this.size);
    this.used.setUint32(slot, head, true);
    this.used.setUint32(slot + 4, Math.min(Math.max(written, 0), 0xffffffff) >>> 0, true);
    // The element is complete before the index exposes it (2.7.8).
    const old = this.nextUsed;
    this.nextUsed = (old + 1) & 0xffff;
    this.usedIdx.store(this.nextUsed);
    this.markUsedDirty();
    const notify = this.eventIdx
      ? this.usedEvent.load() === old
      : (this.avail.getUint16(0, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (notify) this.hooks.interrupt();
  }

  private markUsedDirty(): void {
    this.mem.markDirty(this.usedArea.addr, this.usedArea.len);
  }

  private fail(reason: string): null {
    this.broken = true;
    this.hooks.malformed(`queue ${this.index}: ${reason}`);
    return null;
  }

  /** Follows the chain starting at `head`, checking every descriptor (2.7.5). */
  private walk(head: number): DescriptorChain | null {
    if (head >= this.size) return this.fail(`head ${head} out of range`);
    const buffers: DescriptorBuffer[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.desc;
    let tableLen = this.size;
    let inIndirect = false;
    let i = head;
    // Counts data descriptors: at most the queue size, so a loop ends here too.
    for (let count = 0; ; ) {
      const off = i * DESC_SIZE;
      const lo = table.getUint32(off, true);
      const hi = table.getUint32(off + 4, true);
      const len = table.getUint32(off + 8, true);
      const flags = table.getUint16(off + 12, true);
      const next = table.getUint16(off + 14, true);
      const addr = hi * 2 ** 32 + lo;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirect) return this.fail('indirect descriptor without VIRTIO_F_INDIRECT_DESC');
        if (inIndirect) return this.fail('indirect descriptor inside an indirect table');
        if (flags & VIRTQ_DESC_F_NEXT) return this.fail('indirect descriptor with NEXT set');
        if (len === 0 || len % DESC_SIZE !== 0) return this.fail(`indirect table of ${len} bytes`);
        const t = this.mem.view(addr, len);
        if (!t) return this.fail(`indirect table at 0x${addr.toString(16)} (+0x${len.toString(16)}) is not in RAM`);
        table = dataView(t);
        tableLen = len / DESC_SIZE;
        inIndirect = true;
        i = 0;
        continue;
      }
      if (++count > this.size) return this.fail(`chain from head ${head} longer than the queue size`);
      const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (!writable && writableLength > 0) return this.fail('readable descriptor after a writable one');
      if (!this.mem.contains(addr, len)) return this.fail(`buffer at 0x${addr.toString(16)} (+0x${len.toString(16)}) is not in RAM`);
      buffers.push({ addr, len, writable });
      if (writable) writableLength += len;
      else readableLength += len;
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= tableLen) return this.fail(`next index ${next} out of range`);
      i = next;
    }
    if (readableLength + writableLength > MAX_CHAIN_BYTES) return this.fail(`chain from head ${head} longer than 2^32 bytes`);
    return { head, buffers, readableLength, writableLength };
  }
}

/** The queue given to a device for a queue the driver did not enable: it never has buffers. */
export class DisabledVirtqueue implements Virtqueue {
  readonly size = 0;
  constructor(readonly index: number) {}
  pop(): DescriptorChain | null {
    return null;
  }
  pushUsed(head: number): void {
    throw new RangeError(`used head ${head} on disabled queue ${this.index}`);
  }
}

/**
 * Copies bytes from the device-readable buffers of `chain`, starting `offset` bytes into
 * them, into `dst`. Returns how many bytes were copied (less than dst.length when the
 * readable part ends first).
 */
export function readFromChain(mem: GuestMemory, chain: DescriptorChain, offset: number, dst: Uint8Array): number {
  return copyChain(mem, chain, false, offset, dst);
}

/**
 * Copies `src` into the device-writable buffers of `chain`, starting `offset` bytes into
 * them. Returns how many bytes were written (less than src.length when the writable part
 * ends first); report it (plus anything written before) to pushUsed.
 */
export function writeToChain(mem: GuestMemory, chain: DescriptorChain, offset: number, src: Uint8Array): number {
  return copyChain(mem, chain, true, offset, src);
}

function copyChain(mem: GuestMemory, chain: DescriptorChain, writable: boolean, offset: number, data: Uint8Array): number {
  let skip = Math.max(0, offset);
  let done = 0;
  for (const b of chain.buffers) {
    if (done === data.length) break;
    if (b.writable !== writable) continue;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, data.length - done);
    const v = writable ? mem.view(b.addr + skip, n) : mem.readView(b.addr + skip, n);
    if (!v) break;
    if (writable) {
      v.set(data.subarray(done, done + n));
      mem.markDirty(b.addr + skip, n);
    } else {
      data.set(v, done);
    }
    done += n;
    skip = 0;
  }
  return done;
}
