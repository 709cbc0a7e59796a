/**
 * virtio-mmio transport, version 2 ("modern") register layout (Virtio 1.2, section 4.2).
 *
 * The transport owns the registers, feature negotiation, the device status and the
 * queue addresses; at DRIVER_OK it checks every enabled queue's layout, builds the
 * {@link SplitVirtqueue}s and activates the device. A slot without a device answers
 * DeviceID 0, which drivers skip (4.2.3.1.1), like an unused slot on QEMU's virt board.
 *
 * Nothing the driver writes can make the transport throw: accesses that are not 32-bit
 * and aligned (4.2.2.2) are ignored (reads return 0), queue registers are frozen while
 * the queue is enabled or the device is live, features not offered or a missing
 * VERSION_1 leave FEATURES_OK clear (3.1.1), and a bad queue layout, DRIVER_OK without
 * FEATURES_OK or a malformed ring put the device in DEVICE_NEEDS_RESET, with a
 * configuration change interrupt once DRIVER_OK is set (2.1.2).
 *
 * The interrupt is a level: asserted while InterruptStatus is non-zero (bit 0 used
 * buffer, bit 1 configuration change), until the driver acknowledges both; each new
 * event asserts it again.
 */
import type { MmioHandler } from '../core/memory.js';
import type { FdtBuilder } from '../core/fdt.js';
import { NO_IRQ, type IrqLine } from '../core/irq.js';
import { RegionGuestMemory, type GuestMemory } from '../core/guest-memory.js';
import {
  VIRTIO_STATUS, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type VirtioDevice, type VirtioInterrupt, type Virtqueue,
} from './virtio.js';
import { SplitVirtqueue, DisabledVirtqueue, splitQueueLayoutError } from './virtqueue.js';

const MAGIC = 0x74726976; // "virt"
const VERSION = 2;
const VENDOR_ID = 0x554d4551; // "QEMU", as on QEMU's virt board

/** Register offsets (4.2.2). */
export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** InterruptStatus bits (4.2.2). */
export const VIRTIO_MMIO_INT = { VRING: 1, CONFIG: 2 } as const;

/** Transport features offered on top of the device's own. */
const TRANSPORT_FEATURES = (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_INDIRECT_DESC);

/** The driver's view of one queue, as written through the queue registers. */
interface QueueRegs {
  num: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
}

/** The per-activation objects handed to the device; dead after a reset, so stale calls do nothing. */
interface Live {
  queues: Virtqueue[];
  alive: boolean;
}

const addr64 = ([lo, hi]: [number, number]) => hi * 2 ** 32 + lo;

/** A virtio-mmio register block holding one device (or none). */
export class VirtioMmioTransport implements MmioHandler {
  private readonly offered: bigint;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private queues: QueueRegs[] = [];
  private status = 0;
  private interruptStatus = 0;
  private irqLevel = false;
  private configGeneration = 0;
  private live: Live | null = null;
  private error: string | null = null;

  /** `device` null makes an empty slot (DeviceID 0). `irq` is level-triggered. */
  constructor(readonly device: VirtioDevice | null, private readonly mem: GuestMemory, private readonly irq: IrqLine) {
    this.offered = device ? device.features | TRANSPORT_FEATURES : 0n;
    this.resetState();
  }

  /** Why the device entered DEVICE_NEEDS_RESET (null if it has not since the last reset). */
  get needsResetReason(): string | null {
    return this.error;
  }

  read(offset: number, size: number): number {
    if (offset >= VIRTIO_MMIO.CONFIG) return this.readConfig(offset - VIRTIO_MMIO.CONFIG, size);
    if (size !== 4 || offset % 4 !== 0) return 0;
    switch (offset) {
      case VIRTIO_MMIO.MAGIC_VALUE: return MAGIC;
      case VIRTIO_MMIO.VERSION: return VERSION;
      case VIRTIO_MMIO.DEVICE_ID: return this.device?.deviceId ?? 0;
      case VIRTIO_MMIO.VENDOR_ID: return VENDOR_ID;
    }
    if (!this.device) return 0;
    const q = this.queues[this.queueSel];
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES:
        return this.deviceFeaturesSel < 2 ? Number((this.offered >> BigInt(32 * this.deviceFeaturesSel)) & 0xffffffffn) : 0;
      case VIRTIO_MMIO.QUEUE_NUM_MAX: return this.device.queueMaxSizes[this.queueSel] ?? 0;
      case VIRTIO_MMIO.QUEUE_READY: return q?.ready ? 1 : 0;
      case VIRTIO_MMIO.INTERRUPT_STATUS: return this.interruptStatus;
      case VIRTIO_MMIO.STATUS: return this.status;
      // No shared memory regions: a length of -1 says so (4.2.2).
      case VIRTIO_MMIO.SHM_LEN_LOW: case VIRTIO_MMIO.SHM_LEN_HIGH:
      case VIRTIO_MMIO.SHM_BASE_LOW: case VIRTIO_MMIO.SHM_BASE_HIGH:
        return 0xffffffff;
      case VIRTIO_MMIO.CONFIG_GENERATION: return this.configGeneration;
      default: return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (!this.device) return;
    if (offset >= VIRTIO_MMIO.CONFIG) {
      this.writeConfig(offset - VIRTIO_MMIO.CONFIG, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) return;
    const v = value >>> 0;
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; return;
      case VIRTIO_MMIO.DRIVER_FEATURES: this.writeDriverFeatures(v); return;
      case VIRTIO_MMIO.DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; return;
      case VIRTIO_MMIO.QUEUE_SEL: this.queueSel = v; return;
      case VIRTIO_MMIO.QUEUE_NOTIFY: this.notify(v); return;
      case VIRTIO_MMIO.INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.updateIrq();
        return;
      case VIRTIO_MMIO.STATUS: this.writeStatus(v & 0xff); return;
    }
    // Queue registers: only while the device is not live and the selected queue is off.
    const q = this.queues[this.queueSel];
    if (!q || this.status & VIRTIO_STATUS.DRIVER_OK) return;
    if (offset === VIRTIO_MMIO.QUEUE_READY) {
      q.ready = (v & 1) === 1;
      return;
    }
    if (q.ready) return;
    switch (offset) {
      case VIRTIO_MMIO.QUEUE_NUM: q.num = v; break;
      case VIRTIO_MMIO.QUEUE_DESC_LOW: q.desc[0] = v; break;
      case VIRTIO_MMIO.QUEUE_DESC_HIGH: q.desc[1] = v; break;
      case VIRTIO_MMIO.QUEUE_DRIVER_LOW: q.driver[0] = v; break;
      case VIRTIO_MMIO.QUEUE_DRIVER_HIGH: q.driver[1] = v; break;
      case VIRTIO_MMIO.QUEUE_DEVICE_LOW: q.device[0] = v; break;
      case VIRTIO_MMIO.QUEUE_DEVICE_HIGH: q.device[1] = v; break;
    }
  }

  private readConfig(off: number, size: number): number {
    if (!this.device || !this.configAccessOk(off, size)) return 0;
    return this.device.readConfig(off, size) >>> 0;
  }

  private writeConfig(off: number, size: number, value: number): void {
    if (this.configAccessOk(off, size)) this.device!.writeConfig(off, size, value >>> 0);
  }

  /** 1, 2 or 4 bytes, naturally aligned, inside the device's configuration space. */
  private configAccessOk(off: number, size: number): boolean {
    return (size === 1 || size === 2 || size === 4) && off % size === 0 && off + size <= this.device!.configSize;
  }

  private writeDriverFeatures(v: number): void {
    // Frozen once FEATURES_OK is accepted (3.1.1 step 5); only 64 feature bits exist.
    if (this.status & VIRTIO_STATUS.FEATURES_OK || this.driverFeaturesSel > 1) return;
    const shift = BigInt(32 * this.driverFeaturesSel);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    // Bits only accumulate until a reset; DEVICE_NEEDS_RESET belongs to the device.
    const requested = v & ~this.status & ~VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    let add = requested & ~VIRTIO_STATUS.FEATURES_OK;
    if (requested & VIRTIO_STATUS.FEATURES_OK && this.featuresAcceptable()) add |= VIRTIO_STATUS.FEATURES_OK;
    this.status |= add;
    if (requested & VIRTIO_STATUS.DRIVER_OK) this.activate();
  }

  /** Only offered features, and VERSION_1 among them: this is a modern-only device (6.1). */
  private featuresAcceptable(): boolean {
    return (this.driverFeatures & ~this.offered) === 0n && (this.driverFeatures >> VIRTIO_F_VERSION_1 & 1n) === 1n;
  }

  private activate(): void {
    const device = this.device!;
    if (!(this.status & VIRTIO_STATUS.FEATURES_OK)) {
      this.setNeedsReset('DRIVER_OK without FEATURES_OK');
      return;
    }
    for (const [i, q] of this.queues.entries()) {
      if (!q.ready) continue;
      const err = splitQueueLayoutError(this.mem, this.layout(q), device.queueMaxSizes[i]);
      if (err) {
        this.setNeedsReset(`queue ${i}: ${err}`);
        return;
      }
    }
    const live: Live = { queues: [], alive: true };
    const features = this.driverFeatures;
    live.queues = this.queues.map((q, i) => q.ready
      ? new SplitVirtqueue(this.mem, i, this.layout(q), features, {
        interrupt: () => {
          if (live.alive) this.raise(VIRTIO_MMIO_INT.VRING);
        },
        malformed: (reason) => {
          if (live.alive) this.setNeedsReset(reason);
        },
      })
      : new DisabledVirtqueue(i));
    const interrupt: VirtioInterrupt = {
      queue: () => {
        if (live.alive) this.raise(VIRTIO_MMIO_INT.VRING);
      },
      config: () => {
        if (live.alive) this.configChanged();
      },
    };
    this.live = live;
    device.activate({
      mem: this.mem,
      queues: live.queues,
      interrupt,
      features,
      needsReset: () => {
        if (live.alive) this.setNeedsReset('reported by the device');
      },
    });
  }

  private layout(q: QueueRegs) {
    return { size: q.num, desc: addr64(q.desc), driver: addr64(q.driver), device: addr64(q.device) };
  }

  private notify(index: number): void {
    if (this.live && this.queues[index]?.ready) this.device!.queueNotify(index);
  }

  private setNeedsReset(reason: string): void {
    if (this.status & VIRTIO_STATUS.DEVICE_NEEDS_RESET) return;
    this.error = reason;
    this.status |= VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    this.configChanged();
  }

  /** A configuration change: a new generation, and the interrupt once the driver is ready for it. */
  private configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & VIRTIO_STATUS.DRIVER_OK) this.raise(VIRTIO_MMIO_INT.CONFIG);
  }

  /**
   * Asserts the line for a new event even if it is already high: harmless for a level
   * consumer, and an edge-triggered one (a GSI declared edge-triggered) gets an edge per
   * event instead of losing one that arrives before the driver acknowledged the last.
   */
  private raise(bit: number): void {
    this.interruptStatus |= bit;
    this.irqLevel = true;
    this.irq.set(true);
  }

  private updateIrq(): void {
    const level = this.interruptStatus !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }

  /** Device reset (status 0, 4.2.3.1): the device drops its queues, which stop touching guest memory. */
  private reset(): void {
    if (this.live) {
      this.live.alive = false;
      for (const q of this.live.queues) if (q instanceof SplitVirtqueue) q.detach();
      this.live = null;
    }
    this.device!.reset();
    this.resetState();
  }

  private resetState(): void {
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.driverFeatures = 0n;
    this.status = 0;
    this.error = null;
    this.interruptStatus = 0;
    this.updateIrq();
    // QueueNum starts at the maximum, as in QEMU, for drivers that never write it.
    this.queues = (this.device?.queueMaxSizes ?? []).map((max) => ({
      num: max, ready: false, desc: [0, 0], driver: [0, 0], device: [0, 0],
    }));
  }
}

/** An empty virtio-mmio slot (DeviceID 0). */
export class VirtioMmioSlot extends VirtioMmioTransport {
  constructor() {
    super(null, new RegionGuestMemory([]), NO_IRQ);
  }
}

/** Writes a virtio-mmio node as QEMU virt does, at the current position (inside /soc). */
export function virtioMmioFdtNode(f: FdtBuilder, base: number, size: number, irq: number, plicPhandle: number): void {
  f.beginNode(`virtio_mmio@${base.toString(16)}`);
  f.propU32('interrupts', irq);
  f.propU32('interrupt-parent', plicPhandle);
  f.propCells64('reg', [base, size]);
  f.propString('compatible', 'virtio,mmio');
  f.endNode();
}
