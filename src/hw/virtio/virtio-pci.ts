/**
 * virtio-pci transport, modern (non-transitional) only (Virtio 1.2, section 4.1).
 *
 * The function is 1af4:(1040 + device ID), revision 1 (4.1.2). Its registers sit in
 * BAR 4, a 64-bit prefetchable memory BAR laid out as QEMU's: common configuration at
 * 0x0000, ISR status at 0x1000, device configuration at 0x2000 and notifications at
 * 0x3000 (queue n at 0x3000 + 4n: notify_off_multiplier 4, queue_notify_off n). Virtio
 * vendor capabilities (4.1.4) point the driver at them, plus the PCI_CFG capability,
 * a window through config space onto the BARs (4.1.4.9). MSI-X (4.1.5.1.2) has its own
 * BAR 1: a config vector and a vector per queue, or VIRTIO_MSI_NO_VECTOR.
 *
 * The device status, feature negotiation and queue life cycle follow the same rules as
 * the virtio-mmio transport (virtio-mmio.ts): features not offered or a missing
 * VERSION_1 leave FEATURES_OK clear (3.1.1), queue registers are frozen while the queue
 * is enabled or the device is live, the layouts are checked at DRIVER_OK and a bad one,
 * like a malformed ring, puts the device in DEVICE_NEEDS_RESET. Nothing the driver
 * writes makes the transport throw; accesses of the wrong width are ignored.
 *
 * Interrupts (4.1.4.5, 4.1.5.3, 4.1.5.4): with MSI-X enabled, a used buffer sends the
 * queue's vector and a configuration change the config vector. Otherwise the ISR's
 * bits (0 queue, 1 configuration) drive INTA# until the driver reads the ISR, which
 * clears it.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import type { MmioHandler } from '../core/memory.js';
import {
  PciFunction, MsixCapability, PCI_CAP_ID, PCI_SUBVENDOR_ID_QEMU, PCI_SUBDEVICE_ID_QEMU, allOnes, validAccess,
  type MsiTarget,
} from '../pci/pci.js';
import {
  VIRTIO_ID, VIRTIO_STATUS, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type VirtioDevice, type VirtioInterrupt, type Virtqueue,
} from './virtio.js';
import { SplitVirtqueue, DisabledVirtqueue, splitQueueLayoutError } from './virtqueue.js';

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern devices are 0x1040 + the virtio device ID (4.1.2). */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** "No MSI-X vector" for config_msix_vector and queue_msix_vector (4.1.5.1.2). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** cfg_type of the virtio vendor capabilities (4.1.4). */
export const VIRTIO_PCI_CAP = { COMMON_CFG: 1, NOTIFY_CFG: 2, ISR_CFG: 3, DEVICE_CFG: 4, PCI_CFG: 5 } as const;

/** struct virtio_pci_common_cfg field offsets (4.1.4.3). */
export const VIRTIO_PCI_COMMON = {
  DEVICE_FEATURE_SELECT: 0x00,
  DEVICE_FEATURE: 0x04,
  DRIVER_FEATURE_SELECT: 0x08,
  DRIVER_FEATURE: 0x0c,
  CONFIG_MSIX_VECTOR: 0x10,
  NUM_QUEUES: 0x12,
  DEVICE_STATUS: 0x14,
  CONFIG_GENERATION: 0x15,
  QUEUE_SELECT: 0x16,
  QUEUE_SIZE: 0x18,
  QUEUE_MSIX_VECTOR: 0x1a,
  QUEUE_ENABLE: 0x1c,
  QUEUE_NOTIFY_OFF: 0x1e,
  QUEUE_DESC: 0x20,
  QUEUE_DRIVER: 0x28,
  QUEUE_DEVICE: 0x30,
} as const;
/** Bytes of common configuration through queue_device; the 1.2 fields after it read as 0. */
const COMMON_CFG_LENGTH = 0x38;

/** ISR status bits (4.1.4.5). */
export const VIRTIO_PCI_ISR = { QUEUE: 1, CONFIG: 2 } as const;

/** Where things are: the BARs and the 4 KiB pieces of the virtio BAR (QEMU's layout). */
export const VIRTIO_PCI_LAYOUT = {
  MSIX_BAR: 1,
  BAR: 4,
  COMMON: 0x0000,
  ISR: 0x1000,
  DEVICE: 0x2000,
  NOTIFY: 0x3000,
  PIECE_SIZE: 0x1000,
  NOTIFY_OFF_MULTIPLIER: 4,
} as const;
const BAR_SIZE = 0x4000;
const VIRTIO_CAP_LENGTH = 16;
const NOTIFY_CAP_LENGTH = 20;
const PCI_CFG_CAP_LENGTH = 20;

/** Class codes QEMU gives its virtio-pci devices; others are "unclassified". */
const CLASS_CODES: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID.NET, 0x020000], // network, Ethernet
  [VIRTIO_ID.BLOCK, 0x010000], // mass storage, SCSI
  [VIRTIO_ID.CONSOLE, 0x078000], // communication, other
  [VIRTIO_ID.RNG, 0x00ff00],
]);
const CLASS_OTHER = 0xff0000;

/** Transport features offered on top of the device's own. */
const TRANSPORT_FEATURES = (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_INDIRECT_DESC);

/** The driver's view of one queue, as written through the common configuration. */
interface QueueRegs {
  size: number;
  msixVector: number;
  enabled: boolean;
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

/** What a virtio-pci function needs besides its device. */
export interface VirtioPciOptions {
  /** Guest RAM, for the virtqueues. */
  mem: GuestMemory;
  /** Where MSI-X messages go. */
  msi: MsiTarget;
  /** MSI-X table size; default one per queue plus one for configuration changes (as QEMU). */
  vectors?: number;
}

/** A virtio device on PCI: plug it into a {@link PciBus} like any other function. */
export class VirtioPciTransport extends PciFunction {
  readonly msix: MsixCapability;
  private readonly mem: GuestMemory;
  private readonly offered: bigint;
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = 0n;
  private configVector = VIRTIO_MSI_NO_VECTOR;
  private queueSelect = 0;
  private queues: QueueRegs[] = [];
  private status = 0;
  private isr = 0;
  private configGeneration = 0;
  private live: Live | null = null;
  private error: string | null = null;
  private readonly scratch = new DataView(new ArrayBuffer(COMMON_CFG_LENGTH));
  private readonly pciCfgCap: number;

  constructor(readonly device: VirtioDevice, opts: VirtioPciOptions) {
    super({
      vendorId: VIRTIO_PCI_VENDOR_ID,
      deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceId,
      classCode: CLASS_CODES.get(device.deviceId) ?? CLASS_OTHER,
      revision: 1,
      subsystemVendorId: PCI_SUBVENDOR_ID_QEMU,
      subsystemId: PCI_SUBDEVICE_ID_QEMU,
      interruptPin: 1,
    });
    const L = VIRTIO_PCI_LAYOUT;
    const queueCount = device.queueMaxSizes.length;
    if (queueCount * L.NOTIFY_OFF_MULTIPLIER > L.PIECE_SIZE || device.configSize > L.PIECE_SIZE) {
      throw new RangeError(`virtio-pci: ${queueCount} queues or ${device.configSize} config bytes do not fit the layout`);
    }
    this.mem = opts.mem;
    this.offered = device.features | TRANSPORT_FEATURES;
    this.msix = new MsixCapability(this, opts.vectors ?? queueCount + 1, L.MSIX_BAR, opts.msi);
    this.virtioCap(VIRTIO_PCI_CAP.COMMON_CFG, L.COMMON, L.PIECE_SIZE);
    this.virtioCap(VIRTIO_PCI_CAP.ISR_CFG, L.ISR, L.PIECE_SIZE);
    this.virtioCap(VIRTIO_PCI_CAP.DEVICE_CFG, L.DEVICE, L.PIECE_SIZE);
    const notify = this.virtioCap(VIRTIO_PCI_CAP.NOTIFY_CFG, L.NOTIFY, L.PIECE_SIZE, NOTIFY_CAP_LENGTH);
    this.put32(notify + 16, L.NOTIFY_OFF_MULTIPLIER);
    // PCI_CFG: bar, offset, length and pci_cfg_data are the driver's to write (4.1.4.9).
    this.pciCfgCap = this.virtioCap(VIRTIO_PCI_CAP.PCI_CFG, 0, 0, PCI_CFG_CAP_LENGTH);
    this.setWritable(this.pciCfgCap + 4, 1, 0xff);
    this.setWritable(this.pciCfgCap + 8, 4, 0xffffffff);
    this.setWritable(this.pciCfgCap + 12, 4, 0xffffffff);
    this.setWritable(this.pciCfgCap + 16, 4, 0xffffffff);
    this.watchConfig(this.pciCfgCap + 16, 4, {
      beforeRead: () => this.pciCfgAccess(false),
      afterWrite: () => this.pciCfgAccess(true),
    });
    const handler: MmioHandler = { read: (o, s) => this.readBar(o, s), write: (o, s, v) => this.writeBar(o, s, v) };
    this.registerBar(L.BAR, { kind: 'mem64', prefetchable: true, size: BAR_SIZE, handler, valid: { min: 1, max: 8 }, impl: { min: 1, max: 4 } });
    this.resetState();
  }

  /** Why the device entered DEVICE_NEEDS_RESET (null if it has not since the last reset). */
  get needsResetReason(): string | null {
    return this.error;
  }

  /** Adds a struct virtio_pci_cap (4.1.4) for a piece of the virtio BAR; returns its offset. */
  private virtioCap(type: number, offset: number, length: number, capLength = VIRTIO_CAP_LENGTH): number {
    const cap = this.addCapability(PCI_CAP_ID.VENDOR, capLength);
    this.config[cap + 2] = capLength;
    this.config[cap + 3] = type;
    this.config[cap + 4] = VIRTIO_PCI_LAYOUT.BAR;
    this.put32(cap + 8, offset);
    this.put32(cap + 12, length);
    return cap;
  }

  private put32(off: number, v: number): void {
    new DataView(this.config.buffer, this.config.byteOffset).setUint32(off, v >>> 0, true);
  }

  /**
   * A driver access to pci_cfg_data: the access it describes (cap.length bytes at
   * cap.offset in BAR cap.bar) is carried out, if it is a valid one (4.1.4.9.1).
   */
  private pciCfgAccess(write: boolean): void {
    const c = new DataView(this.config.buffer, this.config.byteOffset);
    const cap = this.pciCfgCap;
    const bar = this.bar(this.config[cap + 4]!);
    const offset = c.getUint32(cap + 8, true);
    const length = c.getUint32(cap + 12, true);
    if (!bar || !validAccess(offset, length, bar.size)) return;
    if (write) {
      bar.handler.write(offset, length, c.getUint32(cap + 16, true) % 2 ** (8 * length));
    } else {
      c.setUint32(cap + 16, bar.handler.read(offset, length) >>> 0, true);
    }
  }

  private readBar(offset: number, size: number): number {
    const L = VIRTIO_PCI_LAYOUT;
    const piece = Math.floor(offset / L.PIECE_SIZE) * L.PIECE_SIZE;
    const off = offset - piece;
    if (!validAccess(off, size, L.PIECE_SIZE)) return allOnes(size);
    switch (piece) {
      case L.COMMON: return this.readCommon(off, size);
      case L.ISR: return off === 0 ? this.readIsr() : 0;
      case L.DEVICE: return this.configAccessOk(off, size) ? this.device.readConfig(off, size) >>> 0 : allOnes(size);
      default: return 0;
    }
  }

  private writeBar(offset: number, size: number, value: number): void {
    const L = VIRTIO_PCI_LAYOUT;
    const piece = Math.floor(offset / L.PIECE_SIZE) * L.PIECE_SIZE;
    const off = offset - piece;
    if (!validAccess(off, size, L.PIECE_SIZE)) return;
    const v = value >>> 0;
    switch (piece) {
      case L.COMMON: this.writeCommon(off, size, v); break;
      case L.DEVICE: if (this.configAccessOk(off, size)) this.device.writeConfig(off, size, v); break;
      case L.NOTIFY:
        // The address names the queue (queue_notify_off = index); the value is the index again.
        if (off % L.NOTIFY_OFF_MULTIPLIER === 0 && size >= 2) this.notify(off / L.NOTIFY_OFF_MULTIPLIER);
        break;
    }
  }

  private configAccessOk(off: number, size: number): boolean {
    return off + size <= this.device.configSize;
  }

  /** Reading the ISR returns and clears it, and takes INTA# down (4.1.4.5). */
  private readIsr(): number {
    const v = this.isr;
    this.isr = 0;
    this.driveIntx();
    return v;
  }

  private readCommon(off: number, size: number): number {
    if (off + size > COMMON_CFG_LENGTH) return 0;
    const C = VIRTIO_PCI_COMMON;
    const d = this.scratch;
    const q = this.queues[this.queueSelect];
    const features = this.deviceFeatureSelect < 2 ? Number((this.offered >> BigInt(32 * this.deviceFeatureSelect)) & 0xffffffffn) : 0;
    d.setUint32(C.DEVICE_FEATURE_SELECT, this.deviceFeatureSelect, true);
    d.setUint32(C.DEVICE_FEATURE, features, true);
    d.setUint32(C.DRIVER_FEATURE_SELECT, this.driverFeatureSelect, true);
    d.setUint32(C.DRIVER_FEATURE, this.driverFeatureSelect < 2 ? Number((this.driverFeatures >> BigInt(32 * this.driverFeatureSelect)) & 0xffffffffn) : 0, true);
    d.setUint16(C.CONFIG_MSIX_VECTOR, this.configVector, true);
    d.setUint16(C.NUM_QUEUES, this.queues.length, true);
    d.setUint8(C.DEVICE_STATUS, this.status);
    d.setUint8(C.CONFIG_GENERATION, this.configGeneration & 0xff);
    d.setUint16(C.QUEUE_SELECT, this.queueSelect, true);
    // A queue that does not exist has size 0 (4.1.4.3.2); its other fields read as 0.
    d.setUint16(C.QUEUE_SIZE, q?.size ?? 0, true);
    d.setUint16(C.QUEUE_MSIX_VECTOR, q?.msixVector ?? 0, true);
    d.setUint16(C.QUEUE_ENABLE, q?.enabled ? 1 : 0, true);
    d.setUint16(C.QUEUE_NOTIFY_OFF, q ? this.queueSelect : 0, true);
    const addrs = [q?.desc, q?.driver, q?.device];
    addrs.forEach((a, i) => {
      d.setUint32(C.QUEUE_DESC + 8 * i, a?.[0] ?? 0, true);
      d.setUint32(C.QUEUE_DESC + 8 * i + 4, a?.[1] ?? 0, true);
    });
    return size === 1 ? d.getUint8(off) : size === 2 ? d.getUint16(off, true) : d.getUint32(off, true);
  }

  /** Writes of the field's own width only (4.1.3.1; 64-bit fields as two 32-bit halves). */
  private writeCommon(off: number, size: number, v: number): void {
    const C = VIRTIO_PCI_COMMON;
    const is = (field: number, width: number) => off === field && size === width;
    if (is(C.DEVICE_FEATURE_SELECT, 4)) this.deviceFeatureSelect = v;
    else if (is(C.DRIVER_FEATURE_SELECT, 4)) this.driverFeatureSelect = v;
    else if (is(C.DRIVER_FEATURE, 4)) this.writeDriverFeatures(v);
    else if (is(C.CONFIG_MSIX_VECTOR, 2)) this.configVector = this.mapVector(v);
    else if (is(C.DEVICE_STATUS, 1)) this.writeStatus(v);
    else if (is(C.QUEUE_SELECT, 2)) this.queueSelect = v;
    else this.writeQueue(off, size, v);
  }

  /** Writes to the selected queue's fields. */
  private writeQueue(off: number, size: number, v: number): void {
    const C = VIRTIO_PCI_COMMON;
    const q = this.queues[this.queueSelect];
    if (!q) return;
    if (off === C.QUEUE_MSIX_VECTOR && size === 2) {
      q.msixVector = this.mapVector(v);
      return;
    }
    // The rest configures the queue: only while the device is not live and the queue is off.
    if (this.live || this.status & VIRTIO_STATUS.DRIVER_OK || q.enabled) return;
    if (off === C.QUEUE_ENABLE && size === 2) {
      q.enabled = (v & 1) === 1; // writing 0 is not allowed (4.1.4.3.2); ignore it
    } else if (off === C.QUEUE_SIZE && size === 2) {
      q.size = v;
    } else if (off >= C.QUEUE_DESC && off < COMMON_CFG_LENGTH && size === 4) {
      const i = (off - C.QUEUE_DESC) >> 3;
      const half = (off >> 2) & 1;
      [q.desc, q.driver, q.device][i]![half] = v;
    }
  }

  /** A vector the table has, or NO_VECTOR: what the driver reads back tells it whether the mapping worked (4.1.5.1.2). */
  private mapVector(v: number): number {
    return v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  private writeDriverFeatures(v: number): void {
    // Frozen once FEATURES_OK is accepted (3.1.1 step 5); only 64 feature bits exist.
    if (this.status & VIRTIO_STATUS.FEATURES_OK || this.driverFeatureSelect > 1) return;
    const shift = BigInt(32 * this.driverFeatureSelect);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    // Bits only accumulate until a reset; DEVICE_NEEDS_RESET belongs to the device.
    const requested = v & ~this.status & ~VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    let add = requested & ~(VIRTIO_STATUS.FEATURES_OK | VIRTIO_STATUS.DRIVER_OK);
    if (requested & VIRTIO_STATUS.FEATURES_OK && this.featuresAcceptable()) add |= VIRTIO_STATUS.FEATURES_OK;
    this.status |= add;
    if (requested & VIRTIO_STATUS.DRIVER_OK) {
      this.status |= VIRTIO_STATUS.DRIVER_OK;
      this.activate();
    }
  }

  /** Only offered features, and VERSION_1 among them: this is a modern-only device (6.1). */
  private featuresAcceptable(): boolean {
    return (this.driverFeatures & ~this.offered) === 0n && (this.driverFeatures >> VIRTIO_F_VERSION_1 & 1n) === 1n;
  }

  private activate(): void {
    if (!(this.status & VIRTIO_STATUS.FEATURES_OK)) {
      this.setNeedsReset('DRIVER_OK without FEATURES_OK');
      return;
    }
    for (const [i, q] of this.queues.entries()) {
      if (!q.enabled) continue;
      const err = splitQueueLayoutError(this.mem, this.layout(q), this.device.queueMaxSizes[i]);
      if (err) {
        this.setNeedsReset(`queue ${i}: ${err}`);
        return;
      }
    }
    const live: Live = { queues: [], alive: true };
    const features = this.driverFeatures;
    live.queues = this.queues.map((q, i) => q.enabled
      ? new SplitVirtqueue(this.mem, i, this.layout(q), features, {
        interrupt: () => {
          if (live.alive) this.queueInterrupt(i);
        },
        malformed: (reason) => {
          if (live.alive) this.setNeedsReset(reason);
        },
      })
      : new DisabledVirtqueue(i));
    const interrupt: VirtioInterrupt = {
      queue: (i) => {
        if (live.alive) this.queueInterrupt(i);
      },
      config: () => {
        if (live.alive) this.configChanged();
      },
    };
    this.live = live;
    this.device.activate({
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
    return { size: q.size, desc: addr64(q.desc), driver: addr64(q.driver), device: addr64(q.device) };
  }

  private notify(index: number): void {
    if (this.live && this.queues[index]?.enabled) this.device.queueNotify(index);
  }

  /** A used buffer notification: the queue's MSI-X vector, or the ISR queue bit and INTA#. */
  private queueInterrupt(index: number): void {
    if (this.msix.enabled) {
      const vector = this.queues[index]?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(vector);
      return;
    }
    this.isr |= VIRTIO_PCI_ISR.QUEUE;
    this.driveIntx();
  }

  private setNeedsReset(reason: string): void {
    if (this.status & VIRTIO_STATUS.DEVICE_NEEDS_RESET) return;
    this.error = reason;
    this.status |= VIRTIO_STATUS.DEVICE_NEEDS_RESET;
    this.configChanged();
  }

  /**
   * A configuration change: a new generation and, once the driver is ready for it, the
   * ISR configuration bit (set with or without MSI-X) and the config vector or INTA#.
   */
  private configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (!(this.status & VIRTIO_STATUS.DRIVER_OK)) return;
    this.isr |= VIRTIO_PCI_ISR.CONFIG;
    if (this.msix.enabled) {
      if (this.configVector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(this.configVector);
    } else {
      this.driveIntx();
    }
  }

  /** INTA# is the OR of the ISR bits (the PCI function mutes it while MSI-X is enabled). */
  private driveIntx(): void {
    this.setIntx(this.isr !== 0);
  }

  /** Device reset (device_status 0, 4.1.4.3.2): the device drops its queues, which stop touching guest memory. */
  private reset(): void {
    if (this.live) {
      this.live.alive = false;
      for (const q of this.live.queues) if (q instanceof SplitVirtqueue) q.detach();
      this.live = null;
    }
    this.device.reset();
    this.resetState();
  }

  private resetState(): void {
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
    this.driverFeatures = 0n;
    this.configVector = VIRTIO_MSI_NO_VECTOR;
    this.status = 0;
    this.error = null;
    this.isr = 0;
    this.driveIntx();
    // queue_size starts at the maximum (4.1.4.3.2: the driver may lower it).
    this.queues = this.device.queueMaxSizes.map((max) => ({
      size: max, msixVector: VIRTIO_MSI_NO_VECTOR, enabled: false, desc: [0, 0], driver: [0, 0], device: [0, 0],
    }));
  }
}
