/**
 * A PCI function (PCI Local Bus Specification 3.0, chapter 6 "Configuration Space";
 * PCI Express Base Specification, chapter 7, for the 4 KiB extended space).
 *
 * The configuration space is a byte array with two masks beside it: `wmask` (bits the
 * driver may write) and `w1cmask` (bits a written 1 clears, as in the Status register).
 * A config write only ever changes bits a mask allows, so every register's read-only,
 * read-write and write-one-to-clear behaviour follows from how the masks are set up.
 *
 * BARs use the same masks: the address bits below the region's size are read-only
 * zero, so writing all ones and reading back yields the size (6.2.5.1), and a BAR is
 * mapped into the bus's memory or I/O AddressSpace while the Command register enables
 * that decoder and the BAR holds a usable address.
 *
 * Also here: the capability list (6.7), the INTx pin (6.2.4, 6.8.1.3 Interrupt
 * Disable) and MSI-X (6.8.2): capability, table and Pending Bit Array in a BAR.
 *
 * Snapshots (QEMU's pci_device_save/load): the configuration space the driver programmed,
 * checked against the function's read-only bits, so another device's state is refused;
 * loading maps the BARs where they were and restores the INTx pin's level without
 * driving it (the interrupt controller restores its own view).
 */
import type { AccessRange, AddressSpace, MmioHandler, MmioRegion } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import { SnapshotError, arrayField, boolField, type DeviceState, type StagedVMStateDevice } from '../../migration/vmstate.js';

/** Configuration header registers (type 0 header, 6.1). */
export const PCI_CFG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_CODE: 0x09, // 3 bytes: programming interface, sub-class, base class
  CACHE_LINE_SIZE: 0x0c,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITIES_POINTER: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;

/** Command register bits (6.2.2). */
export const PCI_COMMAND = {
  IO: 0x1,
  MEMORY: 0x2,
  BUS_MASTER: 0x4,
  PARITY: 0x40,
  SERR: 0x100,
  INTX_DISABLE: 0x400,
} as const;

/** Status register bits (6.2.3). */
export const PCI_STATUS = {
  INTERRUPT: 0x08,
  CAP_LIST: 0x10,
} as const;

/** Subsystem IDs QEMU gives its devices that have none of their own (QEMU docs/specs/pci-ids). */
export const PCI_SUBVENDOR_ID_QEMU = 0x1af4;
export const PCI_SUBDEVICE_ID_QEMU = 0x1100;

/** Capability IDs (PCI Code and ID Assignment Specification). */
export const PCI_CAP_ID = { VENDOR: 0x09, MSIX: 0x11 } as const;

/** Header Type bit 7: the device has more than one function (6.2.1). */
const HEADER_MULTI_FUNCTION = 0x80;
const BAR_COUNT = 6;
const STANDARD_CONFIG_SIZE = 256;
/** Capabilities live after the 64-byte header, in the standard 256 bytes (6.7). */
const FIRST_CAPABILITY = 0x40;
const TWO_POW_32 = 2 ** 32;

/** The AddressSpaces a bus decodes BARs into: PCI memory and PCI I/O. */
export interface PciSpaces {
  mem: AddressSpace;
  io: AddressSpace;
}

/** What a {@link PciFunction} is connected to once plugged into a bus. */
export interface PciSlot {
  spaces: PciSpaces;
  /** The function's INTx pin, already routed (and shared) by the bus. */
  intx: IrqLine;
  /** Sets the pin's level as the bus counts it, without driving the host line (loading a snapshot). */
  restoreIntx(level: boolean): void;
  /** Called when a BAR or the Command register changed, so the bus can remap every BAR. */
  barsChanged(): void;
}

/** Identity of a function: the read-only header fields. */
export interface PciFunctionIds {
  vendorId: number;
  deviceId: number;
  /** 24 bits: base class << 16 | sub-class << 8 | programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 0 for none, 1-4 for INTA#-INTD# (6.2.4). */
  interruptPin?: number;
  /** 256 for a conventional PCI function, 4096 for one with PCI Express extended space. */
  configSize?: 256 | 4096;
}

/** Kinds of BAR (6.2.5.1): I/O, 32-bit memory, 64-bit memory (which uses two BAR slots). */
export type PciBarKind = 'io' | 'mem32' | 'mem64';

/** A BAR a device model registers. */
export interface PciBarSpec {
  kind: PciBarKind;
  /** Bytes decoded: a power of two, at least 16 for memory and 4 for I/O, at most 256 for I/O. */
  size: number;
  prefetchable?: boolean;
  handler: MmioHandler;
  /** Access widths, as for {@link MmioRegion}. */
  valid?: AccessRange;
  impl?: AccessRange;
}

interface Bar extends PciBarSpec {
  index: number;
  /** The region currently placed in the bus's AddressSpace, if any. */
  region: MmioRegion | null;
}

/** Config ranges with side effects, watched by capabilities (MSI-X control, virtio's PCI_CFG window). */
interface ConfigWatch {
  start: number;
  end: number;
  beforeRead?(): void;
  afterWrite?(): void;
}

/** All ones of an access of `size` bytes: what a read that nobody answers returns. */
export function allOnes(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}

/** True for a config-style access: 1, 2 or 4 bytes, naturally aligned, inside `limit` bytes. */
export function validAccess(offset: number, size: number, limit: number): boolean {
  return (size === 1 || size === 2 || size === 4) && Number.isInteger(offset) && offset >= 0 &&
    offset % size === 0 && offset + size <= limit;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && n === 2 ** Math.round(Math.log2(n));
}

/**
 * One PCI function with a type 0 header. Device models construct it (or extend it),
 * register their BARs and capabilities, and hand it to {@link PciBus.plug}.
 */
export class PciFunction implements StagedVMStateDevice {
  /** Configuration space contents. */
  readonly config: Uint8Array;
  private readonly wmask: Uint8Array;
  private readonly w1cmask: Uint8Array;
  private readonly bars: (Bar | undefined)[] = new Array(BAR_COUNT);
  private readonly watches: ConfigWatch[] = [];
  private lastCapability = 0;
  private nextCapability = FIRST_CAPABILITY;
  private slot: PciSlot | null = null;
  private intxLevel = false;
  private intxOut = false;
  private intxMutedFlag = false;

  constructor(ids: PciFunctionIds) {
    const size = ids.configSize ?? STANDARD_CONFIG_SIZE;
    this.config = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.set16(PCI_CFG.VENDOR_ID, ids.vendorId);
    this.set16(PCI_CFG.DEVICE_ID, ids.deviceId);
    this.config[PCI_CFG.REVISION_ID] = ids.revision ?? 0;
    this.config[PCI_CFG.CLASS_CODE] = ids.classCode & 0xff;
    this.set16(PCI_CFG.CLASS_CODE + 1, ids.classCode >>> 8);
    this.set16(PCI_CFG.SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId ?? 0);
    this.set16(PCI_CFG.SUBSYSTEM_ID, ids.subsystemId ?? 0);
    const pin = ids.interruptPin ?? 0;
    if (!Number.isInteger(pin) || pin < 0 || pin > 4) throw new RangeError(`pci: bad interrupt pin ${pin}`);
    this.config[PCI_CFG.INTERRUPT_PIN] = pin;
    const command = PCI_COMMAND.IO | PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER | PCI_COMMAND.PARITY |
      PCI_COMMAND.SERR | (pin !== 0 ? PCI_COMMAND.INTX_DISABLE : 0);
    this.setMask(this.wmask, PCI_CFG.COMMAND, 2, command);
    // Status: the error bits (8, 11-15) are write-one-to-clear; nothing else is writable.
    this.setMask(this.w1cmask, PCI_CFG.STATUS, 2, 0xf900);
    this.wmask[PCI_CFG.CACHE_LINE_SIZE] = 0xff;
    this.wmask[PCI_CFG.INTERRUPT_LINE] = 0xff;
  }

  /** Slot assignment by the bus; device models do not call this. */
  attach(slot: PciSlot): void {
    if (this.slot) throw new Error('pci: function already plugged');
    this.slot = slot;
  }

  /** Sets Header Type bit 7, telling software to scan functions 1-7 of this device (called by the bus). */
  markMultiFunction(): void {
    this.config[PCI_CFG.HEADER_TYPE] |= HEADER_MULTI_FUNCTION;
  }

  /** Current Command register. */
  get command(): number {
    return this.get16(PCI_CFG.COMMAND);
  }

  /** Whether the function may master the bus: DMA and MSI-X messages need it (6.2.2). */
  get busMaster(): boolean {
    return (this.command & PCI_COMMAND.BUS_MASTER) !== 0;
  }

  /**
   * Registers BAR `index` (0-5; a 64-bit BAR also takes index + 1). The region appears
   * in the bus's AddressSpace once the driver programs an address and enables decoding.
   */
  registerBar(index: number, spec: PciBarSpec): void {
    const slots = spec.kind === 'mem64' ? 2 : 1;
    if (!Number.isInteger(index) || index < 0 || index + slots > BAR_COUNT) throw new RangeError(`pci: bad BAR index ${index}`);
    if (this.bars[index] || (slots === 2 && this.bars[index + 1]) || this.isUpperHalf(index)) {
      throw new Error(`pci: BAR ${index} already registered`);
    }
    const min = spec.kind === 'io' ? 4 : 16;
    const max = spec.kind === 'io' ? 256 : spec.kind === 'mem32' ? 2 ** 31 : 2 ** 52;
    if (!isPowerOfTwo(spec.size) || spec.size < min || spec.size > max) throw new RangeError(`pci: bad BAR ${index} size ${spec.size}`);
    if (spec.kind === 'io' && spec.prefetchable) throw new Error('pci: an I/O BAR cannot be prefetchable');
    const off = PCI_CFG.BAR0 + index * 4;
    // Low bits: I/O space indicator, or memory type and prefetchable (6.2.5.1); all read-only.
    const flags = spec.kind === 'io' ? 0x1 : (spec.kind === 'mem64' ? 0x4 : 0) | (spec.prefetchable ? 0x8 : 0);
    this.set32(off, flags);
    const lowMask = spec.kind === 'io' ? 0x3 : 0xf;
    // Address bits below the size are hard-wired to zero: that is what sizing reads back.
    this.setMask(this.wmask, off, 4, (-spec.size & ~lowMask) >>> 0);
    if (slots === 2) this.setMask(this.wmask, off + 4, 4, (~Math.floor((spec.size - 1) / TWO_POW_32)) >>> 0);
    this.bars[index] = { ...spec, index, region: null };
  }

  /** The address BAR `index` decodes at now, or null when it does not decode. */
  barAddress(index: number): number | null {
    const bar = this.bars[index];
    return bar ? this.decodedAddress(bar) : null;
  }

  /**
   * Adds a capability of `length` bytes to the end of the list and returns its offset.
   * The ID and next pointer are filled in; the rest starts zeroed and read-only.
   */
  addCapability(id: number, length: number): number {
    const off = this.nextCapability;
    if (!Number.isInteger(length) || length < 2 || off + length > STANDARD_CONFIG_SIZE) {
      throw new RangeError(`pci: no room for capability 0x${id.toString(16)} of ${length} bytes`);
    }
    this.config[off] = id;
    this.config[off + 1] = 0;
    if (this.lastCapability === 0) {
      this.config[PCI_CFG.CAPABILITIES_POINTER] = off;
      this.set16(PCI_CFG.STATUS, this.get16(PCI_CFG.STATUS) | PCI_STATUS.CAP_LIST);
    } else {
      this.config[this.lastCapability + 1] = off;
    }
    this.lastCapability = off;
    this.nextCapability = (off + length + 3) & ~3; // capabilities are DWORD aligned
    return off;
  }

  /** Makes `mask` of the `size`-byte little-endian field at `offset` writable by the driver. */
  setWritable(offset: number, size: number, mask: number): void {
    this.setMask(this.wmask, offset, size, mask);
  }

  /**
   * Watches config bytes [offset, offset + length): `beforeRead` runs before a read that
   * touches them, `afterWrite` after a write that did.
   */
  watchConfig(offset: number, length: number, hooks: { beforeRead?(): void; afterWrite?(): void }): void {
    this.watches.push({ start: offset, end: offset + length, ...hooks });
  }

  /** A config read as the bus forwards it; bad offsets or sizes read as all ones. */
  readConfig(offset: number, size: number): number {
    if (!validAccess(offset, size, this.config.length)) return allOnes(size);
    for (const w of this.watches) if (offset < w.end && w.start < offset + size) w.beforeRead?.();
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i]!;
    return v;
  }

  /** A config write as the bus forwards it; bad offsets or sizes are ignored. */
  writeConfig(offset: number, size: number, value: number): void {
    if (!validAccess(offset, size, this.config.length)) return;
    const oldCommand = this.command;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const b = Math.floor(value / 2 ** (8 * i)) & 0xff;
      const w = this.wmask[o]!;
      this.config[o] = ((this.config[o]! & ~w) | (b & w)) & ~(b & this.w1cmask[o]!);
    }
    const command = this.command;
    if ((command ^ oldCommand) & PCI_COMMAND.INTX_DISABLE) this.updateIntx();
    const touchesBars = offset < PCI_CFG.BAR0 + BAR_COUNT * 4 && PCI_CFG.BAR0 < offset + size;
    if (touchesBars || ((command ^ oldCommand) & (PCI_COMMAND.IO | PCI_COMMAND.MEMORY))) this.slot?.barsChanged();
    for (const w of this.watches) if (offset < w.end && w.start < offset + size) w.afterWrite?.();
  }

  /**
   * Drives the function's INTx pin (level-triggered). The Status register's Interrupt
   * Status bit follows it; the bus sees it unless Command.INTX_DISABLE is set.
   */
  setIntx(level: boolean): void {
    if (this.config[PCI_CFG.INTERRUPT_PIN] === 0) return;
    this.intxLevel = level;
    const status = this.get16(PCI_CFG.STATUS) & ~PCI_STATUS.INTERRUPT;
    this.set16(PCI_CFG.STATUS, status | (level ? PCI_STATUS.INTERRUPT : 0));
    this.updateIntx();
  }

  /** While set (MSI-X is enabled, 6.8.2), the pin is not driven onto the bus whatever its level. */
  set intxMuted(muted: boolean) {
    this.intxMutedFlag = muted;
    this.updateIntx();
  }

  saveState(): DeviceState {
    return { config: [...this.config], intxMuted: this.intxMutedFlag };
  }

  /** Checks a saved configuration space (the read-only bits must be this function's) and returns what loads it. */
  prepareLoad(s: DeviceState): () => void {
    const config = new Uint8Array(this.config.length);
    arrayField(s, 'config', config);
    const muted = boolField(s, 'intxMuted');
    for (let i = 0; i < config.length; i++) {
      let fixed = ~(this.wmask[i]! | this.w1cmask[i]!) & 0xff;
      if (i === PCI_CFG.STATUS) fixed &= ~PCI_STATUS.INTERRUPT; // the pin's level, not the device's identity
      if ((config[i]! ^ this.config[i]!) & fixed) {
        throw new SnapshotError(`snapshot: the PCI function's read-only config byte 0x${i.toString(16)} differs (another device?)`);
      }
    }
    return () => {
      this.config.set(config);
      this.intxLevel = (this.get16(PCI_CFG.STATUS) & PCI_STATUS.INTERRUPT) !== 0;
      this.intxMutedFlag = muted;
      this.intxOut = this.intxLevel && !muted && !(this.command & PCI_COMMAND.INTX_DISABLE);
      this.slot?.restoreIntx(this.intxOut);
      this.slot?.barsChanged();
    };
  }

  /** BAR `index` if it is registered there (not the upper half of a 64-bit BAR). */
  protected bar(index: number): { size: number; handler: MmioHandler } | null {
    return this.bars[index] ?? null;
  }

  /** First pass of a remap: takes out the regions whose decoded address changed (called by the bus). */
  unmapStaleBars(): void {
    if (!this.slot) return;
    for (const bar of this.bars) {
      if (!bar?.region) continue;
      if (this.decodedAddress(bar) !== bar.region.base) {
        this.space(bar).removeRegion(bar.region);
        bar.region = null;
      }
    }
  }

  /**
   * Second pass of a remap: maps the BARs that decode but are not mapped. A BAR that would
   * overlap another region (the driver programmed two BARs to the same place) stays
   * unmapped until the next remap finds the place free.
   */
  mapPendingBars(): void {
    if (!this.slot) return;
    for (const bar of this.bars) {
      if (!bar || bar.region) continue;
      const base = this.decodedAddress(bar);
      if (base === null) continue;
      const space = this.space(bar);
      if (space.list().some((r) => base < r.base + r.size && r.base < base + bar.size)) continue;
      const region: MmioRegion = { name: `pci-bar${bar.index}`, base, size: bar.size, handler: bar.handler };
      if (bar.valid) region.valid = bar.valid;
      if (bar.impl) region.impl = bar.impl;
      space.addRegion(region);
      bar.region = region;
    }
  }

  private space(bar: Bar): AddressSpace {
    return bar.kind === 'io' ? this.slot!.spaces.io : this.slot!.spaces.mem;
  }

  private isUpperHalf(index: number): boolean {
    return index > 0 && this.bars[index - 1]?.kind === 'mem64';
  }

  /**
   * Where a BAR decodes: null while its decoder is off in the Command register, or while
   * it holds 0 (unprogrammed) or an address whose region would not fit below 4 GiB (for
   * I/O and 32-bit BARs, which covers the all-ones sizing value) or below 2^53 (64-bit).
   */
  private decodedAddress(bar: Bar): number | null {
    const off = PCI_CFG.BAR0 + bar.index * 4;
    const io = bar.kind === 'io';
    if (!(this.command & (io ? PCI_COMMAND.IO : PCI_COMMAND.MEMORY))) return null;
    const low = (this.get32(off) & (io ? ~0x3 : ~0xf)) >>> 0;
    const base = bar.kind === 'mem64' ? this.get32(off + 4) * TWO_POW_32 + low : low;
    const limit = bar.kind === 'mem64' ? Number.MAX_SAFE_INTEGER : TWO_POW_32 - 1;
    if (base === 0 || base + bar.size > limit) return null;
    return base;
  }

  private updateIntx(): void {
    const out = this.intxLevel && !this.intxMutedFlag && !(this.command & PCI_COMMAND.INTX_DISABLE);
    if (out === this.intxOut) return;
    this.intxOut = out;
    this.slot?.intx.set(out);
  }

  private setMask(mask: Uint8Array, offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) mask[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  }

  private set16(offset: number, v: number): void {
    this.config[offset] = v & 0xff;
    this.config[offset + 1] = (v >>> 8) & 0xff;
  }

  private set32(offset: number, v: number): void {
    this.setMask(this.config, offset, 4, v >>> 0);
  }

  private get16(offset: number): number {
    return this.config[offset]! | (this.config[offset + 1]! << 8);
  }

  private get32(offset: number): number {
    return (this.get16(offset) | (this.get16(offset + 2) << 16)) >>> 0;
  }
}

/** Where MSI-X messages go: a memory write of `data` (32 bits) to `addr`, as the interrupt controller sees it. */
export interface MsiTarget {
  send(addr: number, data: number): void;
}

/** MSI-X Message Control bits (6.8.2.3). */
const MSIX_ENABLE = 0x8000;
const MSIX_FUNCTION_MASK = 0x4000;
const MSIX_ENTRY_SIZE = 16;
const MSIX_VECTOR_MASKED = 0x1;
const MSIX_CAP_LENGTH = 12;
const MSIX_MAX_VECTORS = 2048;
const MSIX_MIN_BAR_SIZE = 4096;

/**
 * MSI-X (PCI 3.0 section 6.8.2) with its table and Pending Bit Array sharing one 32-bit
 * memory BAR of their own: the table at offset 0, the PBA in the second half (as QEMU's
 * exclusive MSI-X BAR). {@link notify} sends a vector's message when it can, and
 * otherwise records it in the PBA; unmasking a vector with its pending bit set sends it.
 */
export class MsixCapability {
  /** Offset of the capability in config space. */
  readonly offset: number;
  private readonly table: Uint8Array;
  private readonly tableView: DataView;
  private readonly pba: Uint8Array;
  private readonly pbaOffset: number;

  /**
   * @param vectors table size, 1 to 2048
   * @param barIndex the (32-bit memory) BAR to put the table and PBA in
   */
  constructor(private readonly fn: PciFunction, readonly vectors: number, barIndex: number, private readonly target: MsiTarget) {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > MSIX_MAX_VECTORS) throw new RangeError(`msix: bad vector count ${vectors}`);
    const tableBytes = vectors * MSIX_ENTRY_SIZE;
    let barSize = MSIX_MIN_BAR_SIZE;
    while (barSize < 2 * tableBytes) barSize *= 2;
    this.pbaOffset = barSize / 2;
    this.table = new Uint8Array(tableBytes);
    this.tableView = new DataView(this.table.buffer);
    this.pba = new Uint8Array(Math.ceil(vectors / 64) * 8);
    // Vectors start masked (6.8.2.9).
    for (let v = 0; v < vectors; v++) this.tableView.setUint32(v * MSIX_ENTRY_SIZE + 12, MSIX_VECTOR_MASKED, true);

    const off = fn.addCapability(PCI_CAP_ID.MSIX, MSIX_CAP_LENGTH);
    this.offset = off;
    const c = fn.config;
    c[off + 2] = (vectors - 1) & 0xff; // Table Size, N - 1
    c[off + 3] = (vectors - 1) >>> 8;
    fn.setWritable(off + 2, 2, MSIX_ENABLE | MSIX_FUNCTION_MASK);
    // Table Offset/BIR and PBA Offset/BIR: the offsets are QWORD aligned, the BIR is in bits 2:0.
    new DataView(c.buffer, c.byteOffset).setUint32(off + 4, barIndex, true);
    new DataView(c.buffer, c.byteOffset).setUint32(off + 8, (this.pbaOffset | barIndex) >>> 0, true);
    fn.watchConfig(off + 2, 2, {
      afterWrite: () => {
        fn.intxMuted = this.enabled;
        this.deliverPending();
      },
    });
    fn.registerBar(barIndex, {
      kind: 'mem32', size: barSize,
      handler: { read: (o, s) => this.readBar(o, s), write: (o, s, v) => this.writeBar(o, s, v) },
      // DWORD and QWORD accesses only (6.8.2); a QWORD is handled as two DWORDs.
      valid: { min: 4, max: 8 }, impl: { min: 4, max: 4 },
    });
  }

  /** The table and the pending bits; Enable and Function Mask are in the function's config space. */
  saveState(): DeviceState {
    return { table: [...this.table], pba: [...this.pba] };
  }

  prepareLoad(s: DeviceState): () => void {
    const table = new Uint8Array(this.table.length);
    const pba = new Uint8Array(this.pba.length);
    arrayField(s, 'table', table);
    arrayField(s, 'pba', pba);
    const t = new DataView(table.buffer);
    for (let v = 0; v < this.vectors; v++) {
      // What writeBar() lets through: a DWORD-aligned address and only the mask bit of Vector Control.
      if (t.getUint32(v * MSIX_ENTRY_SIZE, true) & 0x3 || t.getUint32(v * MSIX_ENTRY_SIZE + 12, true) & ~MSIX_VECTOR_MASKED) {
        throw new SnapshotError("snapshot: bad field 'table'");
      }
    }
    if (pba.some((b, i) => b !== 0 && i * 8 + 31 - Math.clz32(b) >= this.vectors)) throw new SnapshotError("snapshot: bad field 'pba'");
    return () => {
      this.table.set(table);
      this.pba.set(pba);
    };
  }

  /** MSI-X Enable is set: the function must use MSI-X and not INTx. */
  get enabled(): boolean {
    return (this.control() & MSIX_ENABLE) !== 0;
  }

  /**
   * Signals `vector`: sends its message if MSI-X is enabled and neither the function nor
   * the vector is masked, else sets its pending bit. Vectors out of range, and messages
   * while Bus Master Enable is clear (the function may not write to memory), are dropped.
   */
  notify(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors || !this.enabled) return;
    if (this.masked(vector)) this.pba[vector >> 3]! |= 1 << (vector & 7);
    else this.send(vector);
  }

  /** Whether `vector`'s pending bit is set. */
  pending(vector: number): boolean {
    return vector >= 0 && vector < this.vectors && (this.pba[vector >> 3]! & (1 << (vector & 7))) !== 0;
  }

  private control(): number {
    return this.fn.config[this.offset + 2]! | (this.fn.config[this.offset + 3]! << 8);
  }

  private masked(vector: number): boolean {
    return (this.control() & MSIX_FUNCTION_MASK) !== 0 ||
      (this.tableView.getUint32(vector * MSIX_ENTRY_SIZE + 12, true) & MSIX_VECTOR_MASKED) !== 0;
  }

  private send(vector: number): void {
    if (!this.fn.busMaster) return;
    const e = vector * MSIX_ENTRY_SIZE;
    const addr = this.tableView.getUint32(e + 4, true) * 2 ** 32 + this.tableView.getUint32(e, true);
    if (!Number.isSafeInteger(addr)) return;
    this.target.send(addr, this.tableView.getUint32(e + 8, true));
  }

  /** Sends every pending vector that is no longer masked, clearing its pending bit. */
  private deliverPending(): void {
    if (!this.enabled) return;
    for (let v = 0; v < this.vectors; v++) this.deliverIfUnmasked(v);
  }

  private deliverIfUnmasked(vector: number): void {
    if (!this.pending(vector) || this.masked(vector)) return;
    this.pba[vector >> 3]! &= ~(1 << (vector & 7));
    this.send(vector);
  }

  private readBar(offset: number, size: number): number {
    if (size !== 4 || offset % 4 !== 0) return allOnes(size);
    if (offset + 4 <= this.table.length) return this.tableView.getUint32(offset, true);
    const p = offset - this.pbaOffset;
    if (p >= 0 && p + 4 <= this.pba.length) return new DataView(this.pba.buffer).getUint32(p, true);
    return 0;
  }

  /** Table writes only; the PBA is read-only (software must never write it). */
  private writeBar(offset: number, size: number, value: number): void {
    if (size !== 4 || offset % 4 !== 0 || offset + 4 > this.table.length) return;
    switch (offset % MSIX_ENTRY_SIZE) {
      case 0: // Message Address: bits 1:0 are zero for DWORD alignment
        this.tableView.setUint32(offset, value & ~0x3, true);
        break;
      case 12: { // Vector Control: only the mask bit is defined
        this.tableView.setUint32(offset, value & MSIX_VECTOR_MASKED, true);
        if (this.enabled) this.deliverIfUnmasked(Math.floor(offset / MSIX_ENTRY_SIZE));
        break;
      }
      default: // Message Upper Address, Message Data
        this.tableView.setUint32(offset, value, true);
    }
  }
}
