/**
 * Hardware-reduced ACPI tables for the microvm-style board: RSDP (revision 2), XSDT, FADT
 * (revision 6, HW_REDUCED_ACPI, sleep control/status registers in I/O space), MADT and a
 * DSDT whose AML holds the \_S5_ sleep package and, optionally, the board's devices.
 *
 * Follows the ACPI Specification 6.x: 5.2.5 (RSDP), 5.2.6 (table header), 5.2.8 (XSDT),
 * 5.2.9 (FADT), 5.2.12 (MADT), 5.2.3.2 (Generic Address Structure), 4.8.3.7 (sleep control
 * and status registers), 6.4 (resource descriptors) and 20 (AML encoding).
 *
 * In hardware-reduced mode Linux sets up no legacy 8259 and no PIT clock event, so ISA IRQs
 * are only usable for devices the DSDT describes with their interrupt: a UART or a
 * virtio-mmio device announced on the command line instead gets no IRQ. List them in
 * {@link AcpiOptions.uarts} and {@link AcpiOptions.virtioMmio}. Linux's poweroff writes
 * {@link ACPI_WAKE_STATUS} to the sleep status register, then {@link ACPI_S5_SLEEP_VALUE}
 * to the sleep control register (ACPICA's acpi_hw_extended_sleep).
 */

import { type IoApicInfo, ISA_IRQ0_PIN, LAPIC_ADDR } from './x86-boot.js';

/** SLP_EN of the sleep control register (bit 5); SLP_TYP sits in bits 4:2. */
export const ACPI_SLP_EN = 0x20;
/** Sleep type of S5 (soft off), as the DSDT's \_S5_ package says. */
export const ACPI_S5_SLP_TYP = 5;
/** What Linux writes to the sleep control register to power off: (5 << 2) | SLP_EN = 0x34. */
export const ACPI_S5_SLEEP_VALUE = (ACPI_S5_SLP_TYP << 2) | ACPI_SLP_EN;
/** WAK_STS (bit 7), which Linux writes to the sleep status register to clear it before sleeping. */
export const ACPI_WAKE_STATUS = 0x80;

/** The value that makes the bytes of `bytes` sum to 0 mod 256, for a checksum field that is 0 in `bytes`. */
export function tableChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum += b;
  return (256 - (sum & 0xff)) & 0xff;
}

/** What {@link writeAcpiTables} describes. */
export interface AcpiOptions {
  vcpuCount: number;
  ioapic: Pick<IoApicInfo, 'id' | 'addr'>;
  /** I/O port of the 8-bit sleep control register (SLP_TYP, SLP_EN). */
  sleepControlPort: number;
  /** I/O port of the 8-bit sleep status register (WAK_STS). */
  sleepStatusPort: number;
  /** An 8-bit I/O-port reset register: Linux reboots by writing `value` to `port`. */
  reset?: { port: number; value: number };
  /** Whether a CMOS RTC answers at ports 0x70/0x71 (IRQ 8): the FADT says so and the DSDT describes it (PNP0B00). */
  cmosRtc?: boolean;
  /** Whether an i8042 keyboard controller answers at ports 0x60/0x64 (IRQ 1, no mouse): the FADT says so and the DSDT describes it (PNP0303). */
  i8042?: boolean;
  /** 16550 UARTs (COM1..COM4, PNP0501): 8 I/O ports at `port`, edge-triggered `irq`. */
  uarts?: readonly { port: number; irq: number }[];
  /** virtio-mmio transports (LNRO0005): registers at [addr, addr + size), edge-triggered active-high GSI `irq`. */
  virtioMmio?: readonly { addr: number; size: number; irq: number }[];
  /** A PCI Express host bridge with bus 0 only: the DSDT describes it and the MCFG gives its ECAM. */
  pci?: AcpiPciHost;
}

/** A PCI host bridge as {@link writeAcpiTables} describes it. */
export interface AcpiPciHost {
  /** ECAM for bus 0 (at least 1 MiB), reserved as a motherboard resource so Linux trusts the MCFG. */
  ecam: { base: number; size: number };
  /** I/O port window (CPU port = PCI port) and 32-bit memory window (1:1) for BARs. */
  pio: { base: number; size: number };
  mmio32: { base: number; size: number };
  /** Level-triggered, active-low GSIs of INTA-INTD; device d's pin p goes to intx[(d + p - 1) % 4]. */
  intx: readonly [number, number, number, number];
}

/** Where {@link writeAcpiTables} put each table. */
export interface AcpiTables {
  /** The RSDP: pass it in boot_params.acpi_rsdp_addr, or put it in 0xe0000-0xfffff where Linux scans. */
  rsdp: number;
  xsdt: number;
  fadt: number;
  madt: number;
  dsdt: number;
  /** The MCFG, when there is a PCI host bridge. */
  mcfg?: number;
  /** First byte after the last table. */
  end: number;
}

const HEADER_SIZE = 36;
const RSDP_SIZE = 36;
const FADT_SIZE = 276; // ACPI 6.0 and later
const OEM_ID = 'VIREO ';
const OEM_TABLE_ID = 'MICROVM ';
const CREATOR_ID = 'VIRE';

const FADT_REVISION = 6;
const FADT_RESET_REG_SUP = 1 << 10;
const FADT_HW_REDUCED_ACPI = 1 << 20;
/** IA-PC boot architecture flags. */
const BOOT_ARCH_8042 = 1 << 1;
const BOOT_ARCH_NO_VGA = 1 << 2;
const BOOT_ARCH_NO_CMOS_RTC = 1 << 5;
const MADT_REVISION = 4;
const MADT_PCAT_COMPAT = 1; // the in-kernel 8259 pair exists
const GAS_SYSTEM_IO = 1;
const GAS_ACCESS_BYTE = 1;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const align16 = (n: number): number => Math.ceil(n / 16) * 16;

function concat(parts: readonly (Uint8Array | readonly number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A system description table: the standard header, then `body`, with length and checksum filled in. */
function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Uint8Array(HEADER_SIZE + body.length);
  const v = new DataView(table.buffer);
  table.set(ascii(signature), 0);
  v.setUint32(4, table.length, true);
  table[8] = revision;
  table.set(ascii(OEM_ID), 10);
  table.set(ascii(OEM_TABLE_ID), 16);
  v.setUint32(24, 1, true); // OEM revision
  table.set(ascii(CREATOR_ID), 28);
  v.setUint32(32, 1, true); // creator revision
  table.set(body, HEADER_SIZE);
  table[9] = tableChecksum(table);
  return table;
}

/** A Generic Address Structure for an 8-bit I/O port. */
function ioPortGas(view: DataView, off: number, port: number): void {
  view.setUint8(off, GAS_SYSTEM_IO);
  view.setUint8(off + 1, 8); // register bit width
  view.setUint8(off + 2, 0); // bit offset
  view.setUint8(off + 3, GAS_ACCESS_BYTE);
  view.setBigUint64(off + 4, BigInt(port), true);
}

// ---- AML (ACPI 6.x chapter 20) ----

const AML_ZERO = 0x00;
const AML_ONE = 0x01;
const AML_NAME = 0x08;
const AML_BYTE = 0x0a;
const AML_WORD = 0x0b;
const AML_DWORD = 0x0c;
const AML_STRING = 0x0d;
const AML_SCOPE = 0x10;
const AML_BUFFER = 0x11;
const AML_PACKAGE = 0x12;
const AML_EXT = 0x5b;
const AML_DEVICE = 0x82; // after AML_EXT
const AML_ROOT = 0x5c;

/** PkgLength: the length of `content` plus the encoding's own 1-4 bytes. */
function pkgLength(contentLength: number): number[] {
  for (let extra = 0; extra < 4; extra++) {
    const total = contentLength + 1 + extra;
    if (extra === 0 && total < 0x40) return [total];
    if (extra > 0 && total < 2 ** (4 + 8 * extra)) {
      const bytes = [(extra << 6) | (total & 0xf)];
      for (let i = 0; i < extra; i++) bytes.push((total >>> (4 + 8 * i)) & 0xff);
      return bytes;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too long`);
}

/** An opcode followed by a PkgLength covering `content`. */
function amlPackage(op: readonly number[], content: Uint8Array): Uint8Array {
  return concat([op, pkgLength(content.length), content]);
}

function nameSeg(seg: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{3}$/.test(seg)) throw new RangeError(`bad AML name segment "${seg}"`);
  return ascii(seg);
}

function amlInteger(v: number): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`AML integer ${v} out of range`);
  if (v === 0) return Uint8Array.of(AML_ZERO);
  if (v === 1) return Uint8Array.of(AML_ONE);
  if (v <= 0xff) return Uint8Array.of(AML_BYTE, v);
  if (v <= 0xffff) return Uint8Array.of(AML_WORD, v & 0xff, v >>> 8);
  return Uint8Array.of(AML_DWORD, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}

function amlString(s: string): Uint8Array {
  return concat([[AML_STRING], ascii(s), [0]]);
}

/** Name(seg, value). */
function amlName(seg: string, value: Uint8Array): Uint8Array {
  return concat([[AML_NAME], nameSeg(seg), value]);
}

/** Device(seg) { body }. */
function amlDevice(seg: string, body: readonly Uint8Array[]): Uint8Array {
  return amlPackage([AML_EXT, AML_DEVICE], concat([nameSeg(seg), ...body]));
}

/** EisaId("PNPxxxx"): three letters in 5 bits each, then four hex digits, stored big-endian. */
function eisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`bad EISA ID "${id}"`);
  const letters = ((id.charCodeAt(0) - 0x40) << 10) | ((id.charCodeAt(1) - 0x40) << 5) | (id.charCodeAt(2) - 0x40);
  const product = parseInt(id.slice(3), 16);
  return Uint8Array.of(AML_DWORD, letters >>> 8, letters & 0xff, product >>> 8, product & 0xff);
}

/** ResourceTemplate() { descriptors }: a Buffer ending with an End Tag (checksum 0: not checked). */
function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  const bytes = concat([...descriptors, [0x79, 0x00]]);
  return amlPackage([AML_BUFFER], concat([amlInteger(bytes.length), bytes]));
}

/** IO(Decode16, port, port, 1, length). */
function ioDescriptor(port: number, length: number): Uint8Array {
  return Uint8Array.of(0x47, 0x01, port & 0xff, port >>> 8, port & 0xff, port >>> 8, 0x01, length);
}

/** IRQNoFlags() { irq }: edge-triggered, active high. */
function irqDescriptor(irq: number): Uint8Array {
  const mask = 1 << irq;
  return Uint8Array.of(0x22, mask & 0xff, mask >>> 8);
}

/** Memory32Fixed(ReadWrite, addr, size). */
function memory32FixedDescriptor(addr: number, size: number): Uint8Array {
  const d = new Uint8Array(12);
  const v = new DataView(d.buffer);
  d[0] = 0x86;
  v.setUint16(1, 9, true);
  d[3] = 0x01; // read/write
  v.setUint32(4, addr, true);
  v.setUint32(8, size, true);
  return d;
}

/** Address space descriptor general flags: a producer with fixed minimum and maximum (6.4.3.5.4). */
const ADDRESS_PRODUCER_FIXED = 0x0c;

/** WordBusNumber / WordIO (6.4.3.5.3): resource type 2 (bus) or 1 (I/O, entire range), [min, min + length). */
function wordAddressDescriptor(type: 'bus' | 'io', min: number, length: number): Uint8Array {
  const d = new Uint8Array(16);
  const v = new DataView(d.buffer);
  d[0] = 0x88;
  v.setUint16(1, 13, true);
  d[3] = type === 'bus' ? 2 : 1;
  d[4] = ADDRESS_PRODUCER_FIXED;
  d[5] = type === 'io' ? 3 : 0;
  v.setUint16(8, min, true);
  v.setUint16(10, min + length - 1, true);
  v.setUint16(14, length, true);
  return d;
}

/** DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite) (6.4.3.5.2). */
function dwordMemoryDescriptor(min: number, length: number): Uint8Array {
  const d = new Uint8Array(26);
  const v = new DataView(d.buffer);
  d[0] = 0x87;
  v.setUint16(1, 23, true);
  d[3] = 0; // memory
  d[4] = ADDRESS_PRODUCER_FIXED;
  d[5] = 0x01; // read/write, non-cacheable
  v.setUint32(10, min, true);
  v.setUint32(14, min + length - 1, true);
  v.setUint32(22, length, true);
  return d;
}

/**
 * The PCI host bridge (PNP0A08, compatible with PNP0A03) with its bus range and windows
 * in _CRS and a _PRT routing every slot's INTA-INTD straight to GSIs (6.2.13: source 0),
 * then a motherboard resource device holding the ECAM.
 */
function pciHostAml(pci: AcpiPciHost): Uint8Array[] {
  const { ecam, pio, mmio32, intx } = pci;
  const below4g = (r: { base: number; size: number }) => r.base >= 0 && r.size > 0 && r.base + r.size <= 2 ** 32;
  if (!below4g(ecam) || ecam.size < 2 ** 20 || !below4g(mmio32) || pio.base < 0 || pio.size <= 0 || pio.base + pio.size > 0x10000) {
    throw new RangeError('PCI host bridge windows out of range');
  }
  const routes: Uint8Array[] = [];
  for (let device = 0; device < 32; device++) {
    for (let pin = 0; pin < 4; pin++) {
      // Package() { address (device << 16 | 0xffff: any function), pin, source, source index }
      const entry = concat([[4], amlInteger(device * 0x10000 + 0xffff), amlInteger(pin), amlInteger(0), amlInteger(intx[(device + pin) % 4]!)]);
      routes.push(amlPackage([AML_PACKAGE], entry));
    }
  }
  return [
    amlDevice('PCI0', [
      amlName('_HID', eisaId('PNP0A08')),
      amlName('_CID', eisaId('PNP0A03')),
      amlName('_SEG', amlInteger(0)),
      amlName('_BBN', amlInteger(0)),
      amlName('_UID', amlInteger(0)),
      amlName('_CRS', resourceTemplate([
        wordAddressDescriptor('bus', 0, 1),
        ioDescriptor(0xcf8, 8),
        wordAddressDescriptor('io', pio.base, pio.size),
        dwordMemoryDescriptor(mmio32.base, mmio32.size),
      ])),
      amlName('_PRT', amlPackage([AML_PACKAGE], concat([[routes.length], ...routes]))),
    ]),
    amlDevice('RES0', [
      amlName('_HID', eisaId('PNP0C02')),
      amlName('_CRS', resourceTemplate([memory32FixedDescriptor(ecam.base, ecam.size)])),
    ]),
  ];
}

/** MCFG body (PCI Firmware Specification 3.0, 4.1.2): 8 reserved bytes, then bus 0's ECAM in segment 0. */
function mcfgBody(pci: AcpiPciHost): Uint8Array {
  const body = new Uint8Array(8 + 16);
  const v = new DataView(body.buffer);
  v.setBigUint64(8, BigInt(pci.ecam.base), true);
  v.setUint16(16, 0, true); // segment
  body[18] = 0; // start bus
  body[19] = 0; // end bus
  return body;
}

/** Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }. */
function extendedInterruptDescriptor(gsi: number): Uint8Array {
  const d = new Uint8Array(9);
  const v = new DataView(d.buffer);
  d[0] = 0x89;
  v.setUint16(1, 6, true);
  d[3] = 0x01 | 0x02; // consumer, edge-triggered; active high and exclusive are 0
  d[4] = 1;
  v.setUint32(5, gsi, true);
  return d;
}

function dsdtAml(opts: AcpiOptions): Uint8Array {
  const devices: Uint8Array[] = [];
  const uarts = opts.uarts ?? [];
  if (uarts.length > 4) throw new RangeError(`${uarts.length} UARTs: at most 4 (COM1-COM4)`);
  uarts.forEach((u, i) => {
    if (u.port < 0 || u.port > 0xfff8 || u.irq < 0 || u.irq > 15) throw new RangeError(`UART at port 0x${u.port.toString(16)} IRQ ${u.irq} out of range`);
    devices.push(
      amlDevice(`COM${i + 1}`, [
        amlName('_HID', eisaId('PNP0501')),
        amlName('_UID', amlInteger(i + 1)),
        amlName('_CRS', resourceTemplate([ioDescriptor(u.port, 8), irqDescriptor(u.irq)])),
      ]),
    );
  });
  // The keyboard controller (PNP0303) with no mouse device: Linux then skips probing the AUX port.
  if (opts.i8042) {
    devices.push(
      amlDevice('KBD_', [
        amlName('_HID', eisaId('PNP0303')),
        amlName('_CRS', resourceTemplate([ioDescriptor(0x60, 1), ioDescriptor(0x64, 1), irqDescriptor(1)])),
      ]),
    );
  }
  // In hardware-reduced mode Linux creates no legacy RTC device: it must be described (ports 0x70-0x71, IRQ 8).
  if (opts.cmosRtc) {
    devices.push(
      amlDevice('RTC_', [
        amlName('_HID', eisaId('PNP0B00')),
        amlName('_CRS', resourceTemplate([ioDescriptor(0x70, 2), irqDescriptor(8)])),
      ]),
    );
  }
  const virtio = opts.virtioMmio ?? [];
  if (virtio.length > 256) throw new RangeError(`${virtio.length} virtio-mmio devices: at most 256`);
  virtio.forEach((d, i) => {
    if (d.addr < 0 || d.size <= 0 || d.addr + d.size > 2 ** 32) throw new RangeError(`virtio-mmio region 0x${d.addr.toString(16)}+0x${d.size.toString(16)} is not below 4 GiB`);
    devices.push(
      amlDevice(`VR${i.toString(16).toUpperCase().padStart(2, '0')}`, [
        amlName('_HID', amlString('LNRO0005')),
        amlName('_UID', amlInteger(i)),
        amlName('_CRS', resourceTemplate([memory32FixedDescriptor(d.addr, d.size), extendedInterruptDescriptor(d.irq)])),
      ]),
    );
  });
  if (opts.pci) devices.push(...pciHostAml(opts.pci));
  // Package() { 5, 0 }: SLP_TYPa = 5, SLP_TYPb = 0.
  const s5 = amlName('_S5_', amlPackage([AML_PACKAGE], concat([[2], amlInteger(ACPI_S5_SLP_TYP), amlInteger(0)])));
  const sb = devices.length > 0 ? [amlPackage([AML_SCOPE], concat([[AML_ROOT], nameSeg('_SB_'), ...devices]))] : [];
  return concat([...sb, s5]);
}

function fadtBody(opts: AcpiOptions, dsdt: number): Uint8Array {
  const body = new Uint8Array(FADT_SIZE - HEADER_SIZE);
  const v = new DataView(body.buffer);
  const at = (off: number) => off - HEADER_SIZE; // offsets below are the specification's, from the table start
  v.setUint32(at(40), dsdt, true);
  v.setUint16(at(109), BOOT_ARCH_NO_VGA | (opts.cmosRtc ? 0 : BOOT_ARCH_NO_CMOS_RTC) | (opts.i8042 ? BOOT_ARCH_8042 : 0), true);
  let flags = FADT_HW_REDUCED_ACPI;
  if (opts.reset !== undefined) {
    flags |= FADT_RESET_REG_SUP;
    ioPortGas(v, at(116), opts.reset.port);
    v.setUint8(at(128), opts.reset.value);
  }
  v.setUint32(at(112), flags, true);
  // FADT minor version (131) stays 0: ACPI 6.0.
  v.setBigUint64(at(140), BigInt(dsdt), true); // X_DSDT
  ioPortGas(v, at(244), opts.sleepControlPort);
  ioPortGas(v, at(256), opts.sleepStatusPort);
  return body;
}

function madtBody(opts: AcpiOptions): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, LAPIC_ADDR, true);
  new DataView(head.buffer).setUint32(4, MADT_PCAT_COMPAT, true);
  parts.push(head);
  for (let cpu = 0; cpu < opts.vcpuCount; cpu++) {
    // Processor Local APIC: UID, APIC ID, flags (enabled).
    parts.push(Uint8Array.of(0, 8, cpu, cpu, 1, 0, 0, 0));
  }
  const ioapic = new Uint8Array(12);
  const iv = new DataView(ioapic.buffer);
  ioapic.set([1, 12, opts.ioapic.id, 0]);
  iv.setUint32(4, opts.ioapic.addr, true);
  iv.setUint32(8, 0, true); // GSI base
  parts.push(ioapic);
  // Interrupt Source Override: ISA IRQ 0 → GSI 2, flags 0 (conforms to the bus: edge, active high).
  const iso = new Uint8Array(10);
  iso.set([2, 10, 0, 0]);
  new DataView(iso.buffer).setUint32(4, ISA_IRQ0_PIN, true);
  parts.push(iso);
  // Local APIC NMI: all processors (UID 0xff), flags 0, LINT1.
  parts.push(Uint8Array.of(4, 6, 0xff, 0, 0, 1));
  return concat(parts);
}

/**
 * Writes the RSDP at `addr` (16-byte aligned) and the XSDT, FADT, MADT, DSDT (and MCFG) after it,
 * each 16-byte aligned, all with correct lengths and checksums. The MADT lists one enabled
 * local APIC per vCPU (ACPI UID = APIC ID = index), the IOAPIC (GSI base 0), the override
 * ISA IRQ 0 → GSI 2 and the NMI on LINT1 of every CPU.
 * @throws RangeError on bad arguments or when the tables would not fit in `ram`.
 */
export function writeAcpiTables(ram: Uint8Array, addr: number, opts: AcpiOptions): AcpiTables {
  if (addr % 16 !== 0) throw new RangeError(`RSDP address 0x${addr.toString(16)} is not 16-byte aligned`);
  if (!Number.isInteger(opts.vcpuCount) || opts.vcpuCount < 1 || opts.vcpuCount > 255) throw new RangeError(`vcpuCount ${opts.vcpuCount} is not in 1..255`);
  if (opts.ioapic.id < 0 || opts.ioapic.id > 0xfe) throw new RangeError(`IOAPIC ID ${opts.ioapic.id} is not below 0xff`);
  for (const port of [opts.sleepControlPort, opts.sleepStatusPort, ...(opts.reset ? [opts.reset.port] : [])]) {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`I/O port ${port} out of range`);
  }

  const entries = opts.pci ? 3 : 2;
  const xsdt = align16(addr + RSDP_SIZE);
  const fadt = align16(xsdt + HEADER_SIZE + entries * 8);
  const madt = align16(fadt + FADT_SIZE);
  const madtTable = sdt('APIC', MADT_REVISION, madtBody(opts));
  const dsdt = align16(madt + madtTable.length);
  const dsdtTable = sdt('DSDT', 2, dsdtAml(opts)); // revision 2: 64-bit AML integers
  const mcfgTable = opts.pci ? sdt('MCFG', 1, mcfgBody(opts.pci)) : undefined;
  const mcfg = mcfgTable ? align16(dsdt + dsdtTable.length) : undefined;
  const end = mcfg !== undefined && mcfgTable ? mcfg + mcfgTable.length : dsdt + dsdtTable.length;
  if (end > ram.length || end > 2 ** 32) throw new RangeError(`ACPI tables (0x${addr.toString(16)}-0x${end.toString(16)}) do not fit in guest RAM below 4 GiB`);

  const xsdtBody = new Uint8Array(entries * 8);
  const xv = new DataView(xsdtBody.buffer);
  xv.setBigUint64(0, BigInt(fadt), true);
  xv.setBigUint64(8, BigInt(madt), true);
  if (mcfg !== undefined) xv.setBigUint64(16, BigInt(mcfg), true);

  const rsdp = new Uint8Array(RSDP_SIZE);
  const rv = new DataView(rsdp.buffer);
  rsdp.set(ascii('RSD PTR '), 0);
  rsdp.set(ascii(OEM_ID), 9);
  rsdp[15] = 2; // revision: ACPI 2.0+, XSDT only (RsdtAddress 0)
  rv.setUint32(20, RSDP_SIZE, true);
  rv.setBigUint64(24, BigInt(xsdt), true);
  rsdp[8] = tableChecksum(rsdp.subarray(0, 20));
  rsdp[32] = tableChecksum(rsdp);

  ram.fill(0, addr, end);
  ram.set(rsdp, addr);
  ram.set(sdt('XSDT', 1, xsdtBody), xsdt);
  ram.set(sdt('FACP', FADT_REVISION, fadtBody(opts, dsdt)), fadt);
  ram.set(madtTable, madt);
  ram.set(dsdtTable, dsdt);
  if (mcfg !== undefined && mcfgTable) ram.set(mcfgTable, mcfg);
  return { rsdp: addr, xsdt, fadt, madt, dsdt, mcfg, end };
}
