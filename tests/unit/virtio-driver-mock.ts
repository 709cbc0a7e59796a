/**
 * The driver side of virtio, for device unit tests (in the spirit of Firecracker's
 * virtio test_utils and rust-vmm's virtio-queue mock): a fake guest RAM, split
 * virtqueues laid out in it the way a driver does (Virtio 1.2, 2.7), and a driver for
 * the virtio-mmio registers (4.2.3). Not a test file itself.
 *
 * Typical device test, without any transport:
 *
 *     const ram = new FakeGuestRam();
 *     const rxq = new MockSplitQueue(ram, 16);
 *     const dev = new MyDevice();
 *     const { interrupt, needsReset } = activateDevice(dev, ram, [rxq], VIRTIO_F_VERSION_1_BIT);
 *     const chain = rxq.addChain([{ readable: 'request header' }, { writable: 512 }]);
 *     dev.queueNotify(0);
 *     const [used] = rxq.takeUsed();            // { id: chain.head, len: bytes written }
 *     rxq.readBuffer(chain.buffers[1]!);        // what the device wrote
 *
 * or through virtio-mmio: `new MmioDriver(transport).init([rxq])`, then `notify(0)`.
 * For malformed-ring tests, write the rings by hand with setDesc / offer / setAvailIdx.
 * All ring fields are little-endian, as the spec requires.
 */
import { RegionGuestMemory, type GuestMemory } from '../../src/hw/core/guest-memory.js';
import type { MmioHandler } from '../../src/hw/core/memory.js';
import {
  VIRTIO_STATUS, VIRTIO_F_VERSION_1,
  type VirtioDevice, type VirtioInterrupt, type Virtqueue,
} from '../../src/hw/virtio/virtio.js';
import {
  SplitVirtqueue, DisabledVirtqueue, splitQueueAreaSizes, splitQueueLayoutError, type SplitQueueLayout,
  VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT,
} from '../../src/hw/virtio/virtqueue.js';
import { VIRTIO_MMIO } from '../../src/hw/virtio/virtio-mmio.js';

/** Guest RAM for tests: one region at `base`, a bump allocator, little-endian accessors. */
export class FakeGuestRam {
  readonly bytes: Uint8Array;
  /** The GuestMemory to give devices. */
  readonly mem: GuestMemory;
  private readonly dv: DataView;
  private next: number;

  constructor(readonly size = 1 << 20, readonly base = 0x8000_0000) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
    this.mem = new RegionGuestMemory([{ base, bytes: this.bytes }]);
    this.next = base;
  }

  /** First address after RAM. */
  get end(): number {
    return this.base + this.size;
  }

  /** Reserves `len` bytes aligned to `align`; returns the guest-physical address. */
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.next / align) * align;
    if (addr + len > this.end) throw new RangeError(`FakeGuestRam: out of memory allocating ${len} bytes`);
    this.next = addr + len;
    return addr;
  }

  private off(addr: number, len: number): number {
    const o = addr - this.base;
    if (o < 0 || o + len > this.size) throw new RangeError(`FakeGuestRam: 0x${addr.toString(16)}+${len} outside RAM`);
    return o;
  }

  /** A copy of [addr, addr + len). */
  read(addr: number, len: number): Uint8Array {
    const o = this.off(addr, len);
    return this.bytes.slice(o, o + len);
  }

  write(addr: number, data: Uint8Array | string): void {
    const d = typeof data === 'string' ? Buffer.from(data) : data;
    this.bytes.set(d, this.off(addr, d.length));
  }

  getU16(addr: number): number { return this.dv.getUint16(this.off(addr, 2), true); }
  getU32(addr: number): number { return this.dv.getUint32(this.off(addr, 4), true); }
  /** As a number: exact below 2^53, which covers every address that can be in RAM. */
  getU64(addr: number): number { return Number(this.dv.getBigUint64(this.off(addr, 8), true)); }
  setU16(addr: number, v: number): void { this.dv.setUint16(this.off(addr, 2), v, true); }
  setU32(addr: number, v: number): void { this.dv.setUint32(this.off(addr, 4), v >>> 0, true); }
  setU64(addr: number, v: number | bigint): void { this.dv.setBigUint64(this.off(addr, 8), BigInt(v), true); }

  /** A copy of all of RAM (into `into` if given, to save allocations), to compare against later with {@link changedBytes}. */
  snapshot(into?: Uint8Array): Uint8Array {
    if (!into) return this.bytes.slice();
    into.set(this.bytes);
    return into;
  }

  /** Guest-physical addresses of the bytes that differ from `snapshot`. */
  changedBytes(snapshot: Uint8Array): number[] {
    const out: number[] = [];
    if (Buffer.compare(snapshot, this.bytes) === 0) return out;
    for (let i = 0; i < this.size; i++) if (snapshot[i] !== this.bytes[i]) out.push(this.base + i);
    return out;
  }
}

/**
 * One buffer of a chain to build: device-readable contents, or the length of a
 * device-writable buffer; placed at `addr` if given, else in newly allocated RAM (give
 * `addr` when a test posts more buffers than the bump allocator can hold).
 */
export type MockBufferSpec = ({ readable: Uint8Array | string } | { writable: number }) & { addr?: number };

/** A descriptor as stored in a table (2.7.5). */
export interface MockDescriptor {
  addr: number | bigint;
  len: number;
  flags?: number;
  next?: number;
}

/** A chain placed by {@link MockSplitQueue.addChain}: its head and where its buffers are. */
export interface MockChain {
  head: number;
  buffers: { addr: number; len: number; writable: boolean }[];
}

/** A used ring element (2.7.8). */
export interface UsedElem {
  id: number;
  len: number;
}

/**
 * A split virtqueue as a driver lays it out in {@link FakeGuestRam}: descriptor table,
 * available ring (with used_event) and used ring (with avail_event), each allocated with
 * its required alignment unless placed explicitly. The used ring starts zeroed, as the
 * driver must leave it (2.7.10).
 */
export class MockSplitQueue {
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
  /** Index the driver will write next into the available ring (free-running). */
  private availIdx = 0;
  private lastUsed = 0;
  private readonly free: number[];
  /** Descriptor indices owned by each outstanding head, freed by takeUsed. */
  private readonly owned = new Map<number, number[]>();

  constructor(readonly ram: FakeGuestRam, readonly size: number, at: Partial<{ desc: number; driver: number; device: number }> = {}) {
    const s = splitQueueAreaSizes(size);
    this.desc = at.desc ?? ram.alloc(s.desc, 16);
    this.driver = at.driver ?? ram.alloc(s.driver, 2);
    this.device = at.device ?? ram.alloc(s.device, 4);
    this.free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** The layout to hand to a transport or to SplitVirtqueue. */
  get layout(): SplitQueueLayout {
    return { size: this.size, desc: this.desc, driver: this.driver, device: this.device };
  }

  /** Writes descriptor `i` of the table at `table` (default: this queue's descriptor table). */
  setDesc(i: number, d: MockDescriptor, table = this.desc): void {
    const a = table + 16 * i;
    this.ram.setU64(a, d.addr);
    this.ram.setU32(a + 8, d.len);
    this.ram.setU16(a + 12, d.flags ?? 0);
    this.ram.setU16(a + 14, d.next ?? 0);
  }

  /** Places the buffers in RAM and writes descriptors for them; `flags` gets NEXT when chained. */
  private placeBuffers(bufs: MockBufferSpec[]): { descs: MockDescriptor[]; buffers: MockChain['buffers'] } {
    const descs: MockDescriptor[] = [];
    const buffers: MockChain['buffers'] = [];
    for (const b of bufs) {
      const writable = 'writable' in b;
      const data = writable ? null : typeof b.readable === 'string' ? Buffer.from(b.readable) : b.readable;
      const len = data ? data.length : (b as { writable: number }).writable;
      const addr = b.addr ?? this.ram.alloc(Math.max(len, 1), 8);
      if (data) this.ram.write(addr, data);
      descs.push({ addr, len, flags: writable ? VIRTQ_DESC_F_WRITE : 0 });
      buffers.push({ addr, len, writable });
    }
    return { descs, buffers };
  }

  private takeFree(n: number): number[] {
    if (n > this.free.length) throw new RangeError(`MockSplitQueue: ${n} descriptors wanted, ${this.free.length} free`);
    return this.free.splice(this.free.length - n, n).reverse();
  }

  /**
   * Builds a chain from `bufs` (readable ones first, as the driver must) in free
   * descriptors, or with `indirect` in an indirect table referenced by one descriptor,
   * and makes it available (unless `publish` is false: then call {@link offer} yourself).
   */
  addChain(bufs: MockBufferSpec[], opts: { indirect?: boolean; publish?: boolean } = {}): MockChain {
    const { descs, buffers } = this.placeBuffers(bufs);
    descs.forEach((d, i) => {
      if (i < descs.length - 1) {
        d.flags = (d.flags ?? 0) | VIRTQ_DESC_F_NEXT;
        d.next = i + 1;
      }
    });
    let indices: number[];
    if (opts.indirect) {
      const table = this.ram.alloc(16 * descs.length, 16);
      descs.forEach((d, i) => this.setDesc(i, d, table));
      indices = this.takeFree(1);
      this.setDesc(indices[0]!, { addr: table, len: 16 * descs.length, flags: VIRTQ_DESC_F_INDIRECT });
    } else {
      indices = this.takeFree(descs.length);
      descs.forEach((d, i) => this.setDesc(indices[i]!, { ...d, next: d.next === undefined ? 0 : indices[d.next]! }));
    }
    const head = indices[0]!;
    this.owned.set(head, indices);
    if (opts.publish ?? true) this.offer(head);
    return { head, buffers };
  }

  /** Puts `head` in the next available ring slot and publishes it by bumping idx (2.7.13). */
  offer(head: number): void {
    this.ram.setU16(this.driver + 4 + 2 * (this.availIdx % this.size), head);
    this.setAvailIdx(this.availIdx + 1);
  }

  /** Sets the available ring idx (wrapping at 16 bits): the raw way to expose, or to corrupt. */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.ram.setU16(this.driver + 2, this.availIdx);
  }

  /** Available ring flags (1 = VIRTQ_AVAIL_F_NO_INTERRUPT). */
  setAvailFlags(flags: number): void {
    this.ram.setU16(this.driver, flags);
  }

  /** used_event (VIRTIO_F_EVENT_IDX): interrupt when the used idx moves past this value. */
  setUsedEvent(v: number): void {
    this.ram.setU16(this.driver + 4 + 2 * this.size, v);
  }

  /** avail_event as the device last wrote it (VIRTIO_F_EVENT_IDX). */
  availEvent(): number {
    return this.ram.getU16(this.device + 4 + 8 * this.size);
  }

  /** The used ring idx as the device last wrote it. */
  usedIdx(): number {
    return this.ram.getU16(this.device + 2);
  }

  /** Used ring element at free-running position `i`. */
  usedElem(i: number): UsedElem {
    const a = this.device + 4 + 8 * (i % this.size);
    return { id: this.ram.getU32(a), len: this.ram.getU32(a + 4) };
  }

  /** The used elements added since the last call; their descriptors become free again. */
  takeUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx();
    for (; this.lastUsed !== idx; this.lastUsed = (this.lastUsed + 1) & 0xffff) {
      const e = this.usedElem(this.lastUsed);
      out.push(e);
      const owned = this.owned.get(e.id);
      if (owned) {
        this.free.push(...owned);
        this.owned.delete(e.id);
      }
    }
    return out;
  }

  /** The first `len` bytes (default: all) of a buffer of a chain. */
  readBuffer(b: { addr: number; len: number }, len = b.len): Uint8Array {
    return this.ram.read(b.addr, Math.min(len, b.len));
  }
}

/** A VirtioInterrupt that counts notifications. */
export class RecordingInterrupt implements VirtioInterrupt {
  /** Used buffer notifications per queue index. */
  readonly queues: number[] = [];
  configs = 0;
  queue(index: number): void {
    this.queues[index] = (this.queues[index] ?? 0) + 1;
  }
  config(): void {
    this.configs++;
  }
  /** Used buffer notifications sent for queue `index`. */
  count(index: number): number {
    return this.queues[index] ?? 0;
  }
}

/** Feature bits every modern driver accepts. */
export const VIRTIO_F_VERSION_1_BIT = 1n << VIRTIO_F_VERSION_1;

/**
 * Activates `device` directly, as a transport would at DRIVER_OK, over the given mock
 * queues (null: queue not enabled). `features` are the negotiated bits. Returns the
 * recording interrupt, the SplitVirtqueues, and the first NEEDS_RESET reason (ring
 * errors or the device's own needsReset()) or null.
 */
export function activateDevice(device: VirtioDevice, ram: FakeGuestRam, queues: (MockSplitQueue | null)[], features: bigint) {
  const interrupt = new RecordingInterrupt();
  let reason: string | null = null;
  const malformed = (r: string) => {
    reason ??= r;
    interrupt.config();
  };
  const vqs: Virtqueue[] = queues.map((q, i) => {
    if (!q) return new DisabledVirtqueue(i);
    const err = splitQueueLayoutError(ram.mem, q.layout, device.queueMaxSizes[i]);
    if (err) throw new RangeError(`activateDevice: queue ${i}: ${err}`);
    return new SplitVirtqueue(ram.mem, i, q.layout, features, { interrupt: () => interrupt.queue(i), malformed });
  });
  device.activate({ mem: ram.mem, queues: vqs, interrupt, features, needsReset: () => malformed('reported by the device') });
  return { interrupt, queues: vqs, needsReset: () => reason };
}

/** Drives a virtio-mmio transport's registers as Linux's virtio_mmio driver does (4.2.3). */
export class MmioDriver {
  constructor(readonly transport: MmioHandler) {}

  read(reg: number): number {
    return this.transport.read(reg, 4);
  }

  write(reg: number, v: number): void {
    this.transport.write(reg, 4, v);
  }

  status(): number {
    return this.read(VIRTIO_MMIO.STATUS);
  }

  /** The 64 device feature bits. */
  deviceFeatures(): bigint {
    this.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 0);
    const lo = this.read(VIRTIO_MMIO.DEVICE_FEATURES);
    this.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 1);
    return (BigInt(this.read(VIRTIO_MMIO.DEVICE_FEATURES)) << 32n) | BigInt(lo);
  }

  writeDriverFeatures(f: bigint): void {
    this.write(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 0);
    this.write(VIRTIO_MMIO.DRIVER_FEATURES, Number(f & 0xffffffffn));
    this.write(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 1);
    this.write(VIRTIO_MMIO.DRIVER_FEATURES, Number((f >> 32n) & 0xffffffffn));
  }

  /** Programs queue `index` with `q`'s layout and enables it. */
  setupQueue(index: number, q: { layout: SplitQueueLayout }): void {
    const { size, desc, driver, device } = q.layout;
    const split = (reg: number, a: number) => {
      this.write(reg, a % 2 ** 32);
      this.write(reg + 4, Math.floor(a / 2 ** 32));
    };
    this.write(VIRTIO_MMIO.QUEUE_SEL, index);
    this.write(VIRTIO_MMIO.QUEUE_NUM, size);
    split(VIRTIO_MMIO.QUEUE_DESC_LOW, desc);
    split(VIRTIO_MMIO.QUEUE_DRIVER_LOW, driver);
    split(VIRTIO_MMIO.QUEUE_DEVICE_LOW, device);
    this.write(VIRTIO_MMIO.QUEUE_READY, 1);
  }

  /**
   * Device initialization (3.1.1): reset, ACKNOWLEDGE, DRIVER, features (default: all
   * offered), FEATURES_OK (throws if the device refuses it), queues (null: left
   * disabled), DRIVER_OK.
   */
  init(queues: ({ layout: SplitQueueLayout } | null)[], features?: bigint): void {
    this.write(VIRTIO_MMIO.STATUS, 0);
    this.write(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE);
    this.write(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER);
    this.writeDriverFeatures(features ?? this.deviceFeatures());
    this.write(VIRTIO_MMIO.STATUS, VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.FEATURES_OK);
    if (!(this.status() & VIRTIO_STATUS.FEATURES_OK)) throw new Error('MmioDriver: device refused FEATURES_OK');
    queues.forEach((q, i) => {
      if (q) this.setupQueue(i, q);
    });
    this.write(VIRTIO_MMIO.STATUS, this.status() | VIRTIO_STATUS.DRIVER_OK);
  }

  notify(index: number): void {
    this.write(VIRTIO_MMIO.QUEUE_NOTIFY, index);
  }

  /** Reads InterruptStatus and acknowledges every bit in it, as the interrupt handler does; returns it. */
  ackInterrupt(): number {
    const s = this.read(VIRTIO_MMIO.INTERRUPT_STATUS);
    this.write(VIRTIO_MMIO.INTERRUPT_ACK, s);
    return s;
  }
}
