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
 * The device status, feature negotiation and queue life cycle are the shared
 * {@link VirtioTransportCore}'s (virtio-transport.ts), as for virtio-mmio: features not
 * offered or a missing VERSION_1 leave FEATURES_OK clear (3.1.1), queue registers are
 * frozen while the queue is enabled or the device is live, the layouts are checked at
 * DRIVER_OK and a bad one, like a malformed ring, puts the device in DEVICE_NEEDS_RESET.
 * Nothing the driver writes makes the transport throw; accesses of the wrong width are
 * ignored.
 *
 * Interrupts (4.1.4.5, 4.1.5.3, 4.1.5.4): with MSI-X enabled, a used buffer sends the
 * queue's vector and a configuration change the config vector. Otherwise the ISR's
 * bits (0 queue, 1 configuration) drive INTA# until the driver reads the ISR, which
 * clears it.
 *
 * Snapshots: the function's configuration space (BARs, command, MSI-X control), the
 * MSI-X table and pending bits, the vectors, the ISR and the core's state (which holds
 * the device's). A load sends no message and leaves INTA# to the interrupt controller.
 */
import type { GuestMemory } from '../core/guest-memory.js';
import type { MmioHandler } from '../core/memory.js';
import {
  PciFunction, MsixCapability, PCI_CAP_ID, PCI_SUBVENDOR_ID_QEMU, PCI_SUBDEVICE_ID_QEMU, allOnes, validAccess,
  type MsiTarget,
} from '../pci/pci.js';
import { VIRTIO_ID, type VirtioDevice, type VirtioDoorbell } from './virtio.js';
import { VirtioTransportCore, type QueueArea } from './virtio-transport.js';
import { SnapshotError, arrayField, intField, stateField, type DeviceState } from '../../migration/vmstate.js';

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
  [VIRTIO_ID.INPUT, 0x098000], // input, other
]);
const CLASS_OTHER = 0xff0000;

/** queue_desc, queue_driver and queue_device, 8 bytes apart from QUEUE_DESC. */
const QUEUE_AREAS: readonly QueueArea[] = ['desc', 'driver', 'device'];

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
  private readonly core: VirtioTransportCore;
  private configVector = VIRTIO_MSI_NO_VECTOR;
  /** queue_msix_vector of each queue. */
  private queueVectors: number[] = [];
  private isr = 0;
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
    this.core = new VirtioTransportCore(device, opts.mem, {
      queueInterrupt: (i) => this.queueInterrupt(i),
      configInterrupt: () => this.configInterrupt(),
      reset: () => this.resetState(),
    });
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
    return this.core.needsResetReason;
  }

  override saveState(): DeviceState {
    return {
      ...super.saveState(),
      ...this.core.saveState(),
      msix: this.msix.saveState(),
      configVector: this.configVector,
      queueVectors: [...this.queueVectors],
      isr: this.isr,
    };
  }

  override prepareLoad(s: DeviceState): () => void {
    const restoreFunction = super.prepareLoad(s);
    const restoreMsix = this.msix.prepareLoad(stateField(s, 'msix'));
    const restoreCore = this.core.prepareLoad(s);
    const vectorOk = (v: number) => v < this.msix.vectors || v === VIRTIO_MSI_NO_VECTOR;
    const configVector = intField(s, 'configVector', 0, 0xffff);
    const queueVectors = new Uint16Array(this.queueVectors.length);
    arrayField(s, 'queueVectors', queueVectors);
    if (!vectorOk(configVector)) throw new SnapshotError("snapshot: bad field 'configVector'");
    if (!queueVectors.every(vectorOk)) throw new SnapshotError("snapshot: bad field 'queueVectors'");
    const isr = intField(s, 'isr', 0, VIRTIO_PCI_ISR.QUEUE | VIRTIO_PCI_ISR.CONFIG);
    return () => {
      restoreFunction();
      restoreMsix();
      restoreCore();
      this.configVector = configVector;
      this.queueVectors = [...queueVectors];
      this.isr = isr;
    };
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
        if (off % L.NOTIFY_OFF_MULTIPLIER === 0 && size >= 2) this.core.notify(off / L.NOTIFY_OFF_MULTIPLIER);
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
    const core = this.core;
    const q = core.queue(core.queueSelect);
    d.setUint32(C.DEVICE_FEATURE_SELECT, core.deviceFeatureSelect, true);
    d.setUint32(C.DEVICE_FEATURE, core.deviceFeatureWindow(), true);
    d.setUint32(C.DRIVER_FEATURE_SELECT, core.driverFeatureSelect, true);
    d.setUint32(C.DRIVER_FEATURE, core.driverFeatureWindow(), true);
    d.setUint16(C.CONFIG_MSIX_VECTOR, this.configVector, true);
    d.setUint16(C.NUM_QUEUES, core.queueCount, true);
    d.setUint8(C.DEVICE_STATUS, core.status);
    d.setUint8(C.CONFIG_GENERATION, core.configGeneration & 0xff);
    d.setUint16(C.QUEUE_SELECT, core.queueSelect, true);
    // A queue that does not exist has size 0 (4.1.4.3.2); its other fields read as 0.
    d.setUint16(C.QUEUE_SIZE, q?.size ?? 0, true);
    d.setUint16(C.QUEUE_MSIX_VECTOR, this.queueVectors[core.queueSelect] ?? 0, true);
    d.setUint16(C.QUEUE_ENABLE, q?.ready ? 1 : 0, true);
    d.setUint16(C.QUEUE_NOTIFY_OFF, q ? core.queueSelect : 0, true);
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
    const core = this.core;
    const is = (field: number, width: number) => off === field && size === width;
    if (is(C.DEVICE_FEATURE_SELECT, 4)) core.deviceFeatureSelect = v;
    else if (is(C.DRIVER_FEATURE_SELECT, 4)) core.driverFeatureSelect = v;
    else if (is(C.DRIVER_FEATURE, 4)) core.writeDriverFeatures(v);
    else if (is(C.CONFIG_MSIX_VECTOR, 2)) this.configVector = this.mapVector(v);
    else if (is(C.DEVICE_STATUS, 1)) core.writeStatus(v);
    else if (is(C.QUEUE_SELECT, 2)) core.queueSelect = v;
    else if (is(C.QUEUE_MSIX_VECTOR, 2)) {
      if (core.queue(core.queueSelect)) this.queueVectors[core.queueSelect] = this.mapVector(v);
    } else if (is(C.QUEUE_ENABLE, 2)) {
      // Writing 0 is not allowed (4.1.4.3.2): ignore it rather than disable the queue.
      if (v & 1) core.setQueueReady(true);
    } else if (is(C.QUEUE_SIZE, 2)) {
      core.setQueueSize(v);
    } else if (off >= C.QUEUE_DESC && off < COMMON_CFG_LENGTH && size === 4) {
      core.setQueueAddress(QUEUE_AREAS[(off - C.QUEUE_DESC) >> 3]!, ((off >> 2) & 1) as 0 | 1, v);
    }
  }

  /** A vector the table has, or NO_VECTOR: what the driver reads back tells it whether the mapping worked (4.1.5.1.2). */
  private mapVector(v: number): number {
    return v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  /** A used buffer notification: the queue's MSI-X vector, or the ISR queue bit and INTA#. */
  /**
   * The doorbell of queue `index`: its 16-bit notify register in the virtio BAR (any value;
   * the address names the queue), or null while the BAR does not decode. The address is
   * a PCI memory address, which boards map 1:1.
   */
  doorbell(index: number): VirtioDoorbell | null {
    const bar = this.barAddress(VIRTIO_PCI_LAYOUT.BAR);
    return bar === null ? null : { addr: bar + VIRTIO_PCI_LAYOUT.NOTIFY + index * VIRTIO_PCI_LAYOUT.NOTIFY_OFF_MULTIPLIER, size: 2 };
  }

  /** The driver notified queue `index` (through a caught doorbell). */
  notifyQueue(index: number): void {
    this.core.notify(index);
  }

  private queueInterrupt(index: number): void {
    if (this.msix.enabled) {
      const vector = this.queueVectors[index] ?? VIRTIO_MSI_NO_VECTOR;
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(vector);
      return;
    }
    this.isr |= VIRTIO_PCI_ISR.QUEUE;
    this.driveIntx();
  }

  /** A configuration change interrupt: the ISR configuration bit (set with or without MSI-X) and the config vector or INTA#. */
  private configInterrupt(): void {
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

  /** The transport's part of a device reset (device_status 0, 4.1.4.3.2); the core resets the rest. */
  private resetState(): void {
    this.configVector = VIRTIO_MSI_NO_VECTOR;
    this.isr = 0;
    this.driveIntx();
    this.queueVectors = this.device.queueMaxSizes.map(() => VIRTIO_MSI_NO_VECTOR);
  }
}
