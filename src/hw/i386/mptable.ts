/**
 * The Intel MultiProcessor Specification (version 1.4) tables: an MP floating pointer
 * followed by an MP configuration table that lists the vCPUs, the ISA bus, the IOAPIC and
 * how interrupts reach them. Linux uses it to find the CPUs and interrupt wiring when it
 * does not use ACPI (acpi=off, or a kernel without CONFIG_ACPI).
 *
 * Linux scans for the floating pointer in the first KiB of the EBDA, the last KiB of base
 * memory and 0xf0000-0xfffff; {@link writeMpTable} puts the pointer at `addr` and the
 * configuration table right behind it.
 */

import { tableChecksum } from './acpi.js';
import { type IoApicInfo, ISA_IRQ0_PIN, LAPIC_ADDR } from './x86-boot.js';

const FLOATING_SIZE = 16;
const HEADER_SIZE = 44;
const PROCESSOR_SIZE = 20;
const SHORT_ENTRY_SIZE = 8;

const SPEC_REV_1_4 = 4;
// Entry types (MP spec, table 4-3).
const MP_PROCESSOR = 0;
const MP_BUS = 1;
const MP_IOAPIC = 2;
const MP_IOINTR = 3;
const MP_LINTR = 4;
// Interrupt types (table 4-9).
const MP_INT = 0;
const MP_NMI = 1;
const MP_EXTINT = 3;

const CPU_ENABLED = 1 << 0;
const CPU_BOOTSTRAP = 1 << 1;
/** Version register values of KVM's in-kernel LAPIC and IOAPIC. */
const LAPIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11;
/** Family 6 in the processor entries' CPU signature; features FPU and APIC (CPUID 1 EDX). */
const CPU_SIGNATURE = 0x600;
const CPU_FEATURES = (1 << 0) | (1 << 9);
const ISA_BUS_ID = 0;
const ALL_LAPICS = 0xff;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Writes the MP floating pointer at `addr` (16-byte aligned) and the configuration table right
 * after it: one processor entry per vCPU (APIC ID = index, vCPU 0 the bootstrap processor),
 * the ISA bus, the IOAPIC, an I/O interrupt entry per IOAPIC pin (ISA IRQ 0 on pin
 * {@link ISA_IRQ0_PIN}, IRQ 2, the 8259 cascade, left out, every other IRQ n on pin n, all
 * "conforming to the bus": edge-triggered, active high), and the local interrupts of virtual
 * wire mode (ExtINT on LINT0, NMI on LINT1). Returns the bytes used.
 * @throws RangeError on bad arguments or when the tables would not fit in `ram`.
 */
export function writeMpTable(ram: Uint8Array, addr: number, vcpuCount: number, ioapic: IoApicInfo): number {
  if (addr % 16 !== 0) throw new RangeError(`MP floating pointer address 0x${addr.toString(16)} is not 16-byte aligned`);
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > 254) throw new RangeError(`vcpuCount ${vcpuCount} is not in 1..254`);
  if (ioapic.id < vcpuCount || ioapic.id > 0xfe) throw new RangeError(`IOAPIC ID ${ioapic.id} collides with an APIC ID or is not below 0xff`);
  if (ioapic.pins <= ISA_IRQ0_PIN || ioapic.pins > 256) throw new RangeError(`IOAPIC pin count ${ioapic.pins} is out of range`);

  const ioIrqs = ioapic.pins - 1; // every pin but the cascade's
  const entryCount = vcpuCount + 2 + ioIrqs + 2;
  const tableLength = HEADER_SIZE + vcpuCount * PROCESSOR_SIZE + (2 + ioIrqs + 2) * SHORT_ENTRY_SIZE;
  const total = FLOATING_SIZE + tableLength;
  if (addr + total > ram.length) throw new RangeError(`MP table (${total} bytes at 0x${addr.toString(16)}) does not fit in guest RAM`);

  const table = new Uint8Array(tableLength);
  const t = new DataView(table.buffer);
  table.set(ascii('PCMP'), 0);
  t.setUint16(4, tableLength, true);
  table[6] = SPEC_REV_1_4;
  table.set(ascii('VIREO   '), 8); // OEM ID, 8 bytes
  table.set(ascii('MICROVM     '), 16); // product ID, 12 bytes
  t.setUint16(34, entryCount, true);
  t.setUint32(36, LAPIC_ADDR, true);
  // OEM table pointer and size, extended table length and checksum stay 0.

  let off = HEADER_SIZE;
  for (let cpu = 0; cpu < vcpuCount; cpu++) {
    table[off] = MP_PROCESSOR;
    table[off + 1] = cpu;
    table[off + 2] = LAPIC_VERSION;
    table[off + 3] = CPU_ENABLED | (cpu === 0 ? CPU_BOOTSTRAP : 0);
    t.setUint32(off + 4, CPU_SIGNATURE, true);
    t.setUint32(off + 8, CPU_FEATURES, true);
    off += PROCESSOR_SIZE;
  }
  table[off] = MP_BUS;
  table[off + 1] = ISA_BUS_ID;
  table.set(ascii('ISA   '), off + 2);
  off += SHORT_ENTRY_SIZE;
  table[off] = MP_IOAPIC;
  table[off + 1] = ioapic.id;
  table[off + 2] = IOAPIC_VERSION;
  table[off + 3] = 1; // enabled
  t.setUint32(off + 4, ioapic.addr, true);
  off += SHORT_ENTRY_SIZE;

  /** An I/O or local interrupt entry; flags 0: polarity and trigger conform to the bus. */
  const interrupt = (type: number, irqType: number, srcIrq: number, dest: number, pin: number): void => {
    table[off] = type;
    table[off + 1] = irqType;
    t.setUint16(off + 2, 0, true);
    table[off + 4] = ISA_BUS_ID;
    table[off + 5] = srcIrq;
    table[off + 6] = dest;
    table[off + 7] = pin;
    off += SHORT_ENTRY_SIZE;
  };
  for (let irq = 0; irq < ioapic.pins; irq++) {
    if (irq === 2) continue;
    interrupt(MP_IOINTR, MP_INT, irq, ioapic.id, irq === 0 ? ISA_IRQ0_PIN : irq);
  }
  interrupt(MP_LINTR, MP_EXTINT, 0, ALL_LAPICS, 0);
  interrupt(MP_LINTR, MP_NMI, 0, ALL_LAPICS, 1);
  table[7] = tableChecksum(table);

  const floating = new Uint8Array(FLOATING_SIZE);
  floating.set(ascii('_MP_'), 0);
  new DataView(floating.buffer).setUint32(4, addr + FLOATING_SIZE, true);
  floating[8] = 1; // length in 16-byte units
  floating[9] = SPEC_REV_1_4;
  // Feature bytes 0: a configuration table is present, IMCR absent (virtual wire mode).
  floating[10] = tableChecksum(floating);

  ram.set(floating, addr);
  ram.set(table, addr + FLOATING_SIZE);
  return total;
}
