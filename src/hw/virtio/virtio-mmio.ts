/**
 * virtio-mmio transport, version 2 ("modern") register layout (Virtio 1.2, section 4.2).
 *
 * The transport owns the register layout and the interrupt; the device status, feature
 * negotiation, queue configuration and activation are the shared
 * {@link VirtioTransportCore}'s (virtio-transport.ts). A slot without a device answers
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
 *
 * Snapshots: InterruptStatus and the core's state (which holds the device's). The line's
 * level follows InterruptStatus; a load does not drive it, since the interrupt
 * controller restores its own view of the line.
 */
import type { MmioHandler } from '../core/memory.js';
import type { FdtBuilder } from '../core/fdt.js';
import { NO_IRQ, type IrqLine } from '../core/irq.js';
import { RegionGuestMemory, type GuestMemory } from '../core/guest-memory.js';
import type { VirtioDevice, VirtioDoorbell } from './virtio.js';
import { VirtioTransportCore } from './virtio-transport.js';
import { intField, type DeviceState, type StagedVMStateDevice } from '../../migration/vmstate.js';

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

/** A virtio-mmio register block holding one device (or none). */
export class VirtioMmioTransport implements MmioHandler, StagedVMStateDevice {
  /** Null for an empty slot. */
  private readonly core: VirtioTransportCore | null;
  private interruptStatus = 0;
  private irqLevel = false;

  /** `device` null makes an empty slot (DeviceID 0). `irq` is level-triggered. */
  constructor(readonly device: VirtioDevice | null, mem: GuestMemory, private readonly irq: IrqLine) {
    this.core = device && new VirtioTransportCore(device, mem, {
      queueInterrupt: () => this.raise(VIRTIO_MMIO_INT.VRING),
      configInterrupt: () => this.raise(VIRTIO_MMIO_INT.CONFIG),
      reset: () => {
        this.interruptStatus = 0;
        this.updateIrq();
      },
    });
  }

  /** Why the device entered DEVICE_NEEDS_RESET (null if it has not since the last reset). */
  get needsResetReason(): string | null {
    return this.core?.needsResetReason ?? null;
  }

  /** The doorbell of queue `index` when the transport's registers start at `base`: QueueNotify, written with the index. */
  doorbell(base: number, index: number): VirtioDoorbell {
    return { addr: base + VIRTIO_MMIO.QUEUE_NOTIFY, size: 4, value: index };
  }

  /** The driver notified queue `index` (through a caught doorbell). */
  notifyQueue(index: number): void {
    this.core?.notify(index);
  }

  /** The transport's state and its device's (none for an empty slot). */
  saveState(): DeviceState {
    return this.core ? { ...this.core.saveState(), interruptStatus: this.interruptStatus } : {};
  }

  prepareLoad(s: DeviceState): () => void {
    const core = this.core;
    if (!core) return () => {};
    const restoreCore = core.prepareLoad(s);
    const status = intField(s, 'interruptStatus', 0, VIRTIO_MMIO_INT.VRING | VIRTIO_MMIO_INT.CONFIG);
    return () => {
      restoreCore();
      this.interruptStatus = status;
      this.irqLevel = status !== 0;
    };
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
    const core = this.core;
    if (!core) return 0;
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES: return core.deviceFeatureWindow();
      case VIRTIO_MMIO.QUEUE_NUM_MAX: return core.device.queueMaxSizes[core.queueSelect] ?? 0;
      case VIRTIO_MMIO.QUEUE_READY: return core.queue(core.queueSelect)?.ready ? 1 : 0;
      case VIRTIO_MMIO.INTERRUPT_STATUS: return this.interruptStatus;
      case VIRTIO_MMIO.STATUS: return core.status;
      // No shared memory regions: a length of -1 says so (4.2.2).
      case VIRTIO_MMIO.SHM_LEN_LOW: case VIRTIO_MMIO.SHM_LEN_HIGH:
      case VIRTIO_MMIO.SHM_BASE_LOW: case VIRTIO_MMIO.SHM_BASE_HIGH:
        return 0xffffffff;
      case VIRTIO_MMIO.CONFIG_GENERATION: return core.configGeneration;
      default: return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    const core = this.core;
    if (!core) return;
    if (offset >= VIRTIO_MMIO.CONFIG) {
      this.writeConfig(offset - VIRTIO_MMIO.CONFIG, size, value);
      return;
    }
    if (size !== 4 || offset % 4 !== 0) return;
    const v = value >>> 0;
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES_SEL: core.deviceFeatureSelect = v; return;
      case VIRTIO_MMIO.DRIVER_FEATURES: core.writeDriverFeatures(v); return;
      case VIRTIO_MMIO.DRIVER_FEATURES_SEL: core.driverFeatureSelect = v; return;
      case VIRTIO_MMIO.QUEUE_SEL: core.queueSelect = v; return;
      case VIRTIO_MMIO.QUEUE_NOTIFY: core.notify(v); return;
      case VIRTIO_MMIO.INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.updateIrq();
        return;
      case VIRTIO_MMIO.STATUS: core.writeStatus(v & 0xff); return;
      // Unlike virtio-pci's queue_enable, QueueReady may be cleared again before DRIVER_OK.
      case VIRTIO_MMIO.QUEUE_READY: core.setQueueReady((v & 1) === 1); return;
      case VIRTIO_MMIO.QUEUE_NUM: core.setQueueSize(v); return;
      case VIRTIO_MMIO.QUEUE_DESC_LOW: core.setQueueAddress('desc', 0, v); return;
      case VIRTIO_MMIO.QUEUE_DESC_HIGH: core.setQueueAddress('desc', 1, v); return;
      case VIRTIO_MMIO.QUEUE_DRIVER_LOW: core.setQueueAddress('driver', 0, v); return;
      case VIRTIO_MMIO.QUEUE_DRIVER_HIGH: core.setQueueAddress('driver', 1, v); return;
      case VIRTIO_MMIO.QUEUE_DEVICE_LOW: core.setQueueAddress('device', 0, v); return;
      case VIRTIO_MMIO.QUEUE_DEVICE_HIGH: core.setQueueAddress('device', 1, v); return;
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
