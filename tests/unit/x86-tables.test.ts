/**
 * Tests for the firmware tables of the x86 board: the MP table (src/hw/i386/mptable.ts) and
 * the hardware-reduced ACPI tables (src/hw/i386/acpi.ts), parsed back byte by byte, and, when
 * acpica-tools is installed, decompiled with iasl and evaluated with acpiexec.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACPI_S5_SLEEP_VALUE, ACPI_WAKE_STATUS, type AcpiOptions, tableChecksum, writeAcpiTables } from '../../src/hw/i386/acpi.js';
import { writeMpTable } from '../../src/hw/i386/mptable.js';
import { IOAPIC_ADDR, IOAPIC_PINS, X86_LAYOUT } from '../../src/hw/i386/x86-boot.js';

const sum8 = (bytes: Uint8Array): number => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const text = (bytes: Uint8Array): string => new TextDecoder('latin1').decode(bytes);

test('tableChecksum makes the bytes sum to zero', () => {
  const bytes = Uint8Array.of(1, 2, 3, 0, 250);
  bytes[3] = tableChecksum(bytes);
  assert.equal(sum8(bytes), 0);
  assert.equal(tableChecksum(new Uint8Array(4)), 0);
});

test('MP table: floating pointer, header, checksums and entries', () => {
  const ram = new Uint8Array(0x10_0000);
  const addr = X86_LAYOUT.ebda;
  const used = writeMpTable(ram, addr, 3, { id: 3, addr: IOAPIC_ADDR, pins: IOAPIC_PINS });
  const v = new DataView(ram.buffer);

  const fp = ram.subarray(addr, addr + 16);
  assert.equal(text(fp.subarray(0, 4)), '_MP_');
  assert.equal(sum8(fp), 0);
  assert.equal(fp[8], 1); // length in paragraphs
  assert.equal(fp[9], 4); // MP spec 1.4
  assert.deepEqual([...fp.subarray(11, 16)], [0, 0, 0, 0, 0]); // virtual wire, no default configuration
  const cfg = v.getUint32(addr + 4, true);
  assert.equal(cfg, addr + 16);
  // The floating pointer lies in the first KiB of the EBDA, where Linux scans.
  assert.ok(addr + 16 <= X86_LAYOUT.ebda + 1024);

  const length = v.getUint16(cfg + 4, true);
  assert.equal(used, 16 + length);
  assert.equal(text(ram.subarray(cfg, cfg + 4)), 'PCMP');
  assert.equal(sum8(ram.subarray(cfg, cfg + length)), 0);
  assert.equal(ram[cfg + 6], 4);
  assert.equal(v.getUint32(cfg + 36, true), 0xfee0_0000);
  assert.equal(v.getUint16(cfg + 40, true), 0); // no extended table

  // Walk the entries as Linux's MP parser does.
  const count = v.getUint16(cfg + 34, true);
  const cpus: number[][] = [];
  const ioints: number[][] = [];
  const lints: number[][] = [];
  let off = cfg + 44;
  for (let i = 0; i < count; i++) {
    const type = ram[off]!;
    if (type === 0) {
      cpus.push([ram[off + 1]!, ram[off + 2]!, ram[off + 3]!]);
      off += 20;
      continue;
    }
    if (type === 1) assert.equal(text(ram.subarray(off + 2, off + 8)), 'ISA   ');
    if (type === 2) assert.deepEqual([ram[off + 1], ram[off + 2], ram[off + 3], v.getUint32(off + 4, true)], [3, 0x11, 1, IOAPIC_ADDR]);
    if (type === 3 || type === 4) {
      assert.equal(v.getUint16(off + 2, true), 0); // conforms to the bus
      assert.equal(ram[off + 4], 0); // ISA bus
      (type === 3 ? ioints : lints).push([ram[off + 1]!, ram[off + 5]!, ram[off + 6]!, ram[off + 7]!]);
    }
    assert.ok(type <= 4, `entry type ${type}`);
    off += 8;
  }
  assert.equal(off, cfg + length);
  // APIC ID, LAPIC version, flags (enabled; bootstrap on CPU 0).
  assert.deepEqual(cpus, [
    [0, 0x14, 3],
    [1, 0x14, 1],
    [2, 0x14, 1],
  ]);
  // IRQ 0 on pin 2, no IRQ 2, the rest identity; all INT to IOAPIC 3.
  assert.deepEqual(ioints[0], [0, 0, 3, 2]);
  assert.deepEqual(
    ioints.map((e) => e[1]),
    [0, 1, ...Array.from({ length: 21 }, (_, i) => i + 3)],
  );
  for (const e of ioints.slice(1)) assert.deepEqual(e, [0, e[1], 3, e[1]]);
  assert.deepEqual(lints, [
    [3, 0, 0xff, 0], // ExtINT → LINT0 of every CPU
    [1, 0, 0xff, 1], // NMI → LINT1
  ]);
});

test('MP table refuses bad arguments', () => {
  const ram = new Uint8Array(0x10_0000);
  const ioapic = { id: 4, addr: IOAPIC_ADDR, pins: 24 };
  assert.throws(() => writeMpTable(ram, 0x9fc08, 1, ioapic), RangeError);
  assert.throws(() => writeMpTable(ram, 0x9fc00, 0, ioapic), RangeError);
  assert.throws(() => writeMpTable(ram, 0x9fc00, 5, ioapic), /collides/);
  assert.throws(() => writeMpTable(ram, 0x9fc00, 2, { ...ioapic, pins: 2 }), RangeError);
  assert.throws(() => writeMpTable(ram, ram.length - 64, 2, ioapic), /does not fit/);
});

const OPTS: AcpiOptions = {
  vcpuCount: 2,
  ioapic: { id: 2, addr: IOAPIC_ADDR },
  sleepControlPort: 0x600,
  sleepStatusPort: 0x601,
  reset: { port: 0x602, value: 0x01 },
  uarts: [{ port: 0x3f8, irq: 4 }],
  virtioMmio: [
    { addr: 0xd000_0000, size: 0x1000, irq: 5 },
    { addr: 0xd000_1000, size: 0x1000, irq: 6 },
  ],
};

function acpiImage(opts: AcpiOptions = OPTS) {
  const ram = new Uint8Array(0x10_0000);
  const tables = writeAcpiTables(ram, X86_LAYOUT.acpi, opts);
  const v = new DataView(ram.buffer);
  /** A table by its header: signature, length, checksum checked. */
  const table = (addr: number, signature: string, revision: number): Uint8Array => {
    assert.equal(text(ram.subarray(addr, addr + 4)), signature);
    const bytes = ram.subarray(addr, addr + v.getUint32(addr + 4, true));
    assert.equal(sum8(bytes), 0, `${signature} checksum`);
    assert.equal(bytes[8], revision, `${signature} revision`);
    assert.equal(text(bytes.subarray(10, 16)), 'VIREO ');
    return bytes;
  };
  return { ram, v, tables, table };
}

test('ACPI: RSDP and XSDT point at the FADT and MADT, the FADT at the DSDT', () => {
  const { ram, v, tables, table } = acpiImage();
  const rsdp = ram.subarray(tables.rsdp, tables.rsdp + 36);
  assert.equal(tables.rsdp, 0xe0000);
  assert.equal(text(rsdp.subarray(0, 8)), 'RSD PTR ');
  assert.equal(sum8(rsdp.subarray(0, 20)), 0); // ACPI 1.0 checksum
  assert.equal(sum8(rsdp), 0); // extended checksum
  assert.equal(rsdp[15], 2);
  assert.equal(v.getUint32(tables.rsdp + 16, true), 0); // no RSDT
  assert.equal(v.getUint32(tables.rsdp + 20, true), 36);
  assert.equal(Number(v.getBigUint64(tables.rsdp + 24, true)), tables.xsdt);

  const xsdt = table(tables.xsdt, 'XSDT', 1);
  assert.equal(xsdt.length, 36 + 16);
  assert.equal(Number(v.getBigUint64(tables.xsdt + 36, true)), tables.fadt);
  assert.equal(Number(v.getBigUint64(tables.xsdt + 44, true)), tables.madt);

  const fadt = table(tables.fadt, 'FACP', 6);
  assert.equal(fadt.length, 276);
  const f = new DataView(fadt.buffer, fadt.byteOffset, fadt.length);
  assert.equal(f.getUint32(40, true), tables.dsdt);
  assert.equal(Number(f.getBigUint64(140, true)), tables.dsdt);
  assert.equal(f.getUint32(112, true), (1 << 20) | (1 << 10)); // HW_REDUCED_ACPI, RESET_REG_SUP
  assert.equal(f.getUint16(109, true), (1 << 2) | (1 << 5)); // no VGA, no CMOS RTC
  assert.equal(f.getUint32(36, true), 0); // no FACS
  const gas = (off: number) => [f.getUint8(off), f.getUint8(off + 1), f.getUint8(off + 2), f.getUint8(off + 3), Number(f.getBigUint64(off + 4, true))];
  assert.deepEqual(gas(116), [1, 8, 0, 1, 0x602]); // reset register, I/O port
  assert.equal(f.getUint8(128), 1);
  assert.deepEqual(gas(244), [1, 8, 0, 1, 0x600]); // sleep control
  assert.deepEqual(gas(256), [1, 8, 0, 1, 0x601]); // sleep status
  // No fixed hardware in a hardware-reduced FADT.
  for (const off of [46, 48, 56, 64, 76, 80]) assert.equal(f.getUint32(off, true), 0);

  table(tables.dsdt, 'DSDT', 2);
  // Tables are 16-byte aligned, in order, and end where reported.
  for (const a of [tables.xsdt, tables.fadt, tables.madt, tables.dsdt]) assert.equal(a % 16, 0);
  assert.equal(tables.end, tables.dsdt + v.getUint32(tables.dsdt + 4, true));
  assert.ok(tables.end <= X86_LAYOUT.kernel);
});

test('ACPI: FADT without a reset register, and with a CMOS RTC and an i8042', () => {
  const { v, tables, table } = acpiImage({ ...OPTS, reset: undefined, cmosRtc: true, i8042: true });
  table(tables.fadt, 'FACP', 6);
  assert.equal(v.getUint32(tables.fadt + 112, true), 1 << 20);
  assert.equal(v.getUint8(tables.fadt + 116), 0);
  assert.equal(v.getUint16(tables.fadt + 109, true), (1 << 1) | (1 << 2)); // 8042 present, no VGA
});

test('ACPI: MADT lists the local APICs, the IOAPIC, the IRQ 0 override and LINT1 NMI', () => {
  const { v, tables, table } = acpiImage({ ...OPTS, vcpuCount: 3 });
  const madt = table(tables.madt, 'APIC', 4);
  assert.equal(v.getUint32(tables.madt + 36, true), 0xfee0_0000);
  assert.equal(v.getUint32(tables.madt + 40, true), 1); // PCAT_COMPAT
  const entries: number[][] = [];
  for (let off = 44; off < madt.length; off += madt[off + 1]!) entries.push([...madt.subarray(off, off + madt[off + 1]!)]);
  assert.deepEqual(entries, [
    [0, 8, 0, 0, 1, 0, 0, 0],
    [0, 8, 1, 1, 1, 0, 0, 0],
    [0, 8, 2, 2, 1, 0, 0, 0],
    [1, 12, 2, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0],
    [2, 10, 0, 0, 2, 0, 0, 0, 0, 0],
    [4, 6, 0xff, 0, 0, 1],
  ]);
});

test('ACPI: the DSDT holds \\_S5_ = Package() { 5, 0 } and the devices', () => {
  const { ram, tables } = acpiImage({ ...OPTS, uarts: [], virtioMmio: [] });
  const dsdt = ram.subarray(tables.dsdt, tables.dsdt + new DataView(ram.buffer).getUint32(tables.dsdt + 4, true));
  // Name(_S5_, Package(0x02) { BytePrefix 5, Zero }) and nothing else.
  assert.deepEqual([...dsdt.subarray(36)], [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00]);
  // The value Linux then writes to power off: SLP_TYP 5 in bits 4:2 with SLP_EN (bit 5).
  assert.equal(ACPI_S5_SLEEP_VALUE, 0x34);
  assert.equal(ACPI_WAKE_STATUS, 0x80);

  const full = acpiImage();
  const aml = text(full.ram.subarray(full.tables.dsdt + 36, full.tables.end));
  assert.match(aml, /\\_SB_/);
  assert.match(aml, /COM1/);
  assert.match(aml, /VR00.*LNRO0005.*VR01/s);
  const kbd = acpiImage({ ...OPTS, i8042: true });
  assert.match(text(kbd.ram.subarray(kbd.tables.dsdt + 36, kbd.tables.end)), /KBD_/);
});

test('ACPI refuses bad arguments', () => {
  const ram = new Uint8Array(0x10_0000);
  assert.throws(() => writeAcpiTables(ram, 0xe0008, OPTS), RangeError);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, vcpuCount: 0 }), RangeError);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, sleepControlPort: 0x10000 }), RangeError);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, uarts: [{ port: 0x3f8, irq: 16 }] }), RangeError);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, virtioMmio: [{ addr: 0xffff_f000, size: 0x2000, irq: 5 }] }), RangeError);
  assert.throws(() => writeAcpiTables(ram, ram.length - 256, OPTS), /do not fit/);
});

/**
 * Writes the table at `addr` of `ram` to DIR/NAME.dat, decompiles it with iasl (which must
 * not complain) and returns the source without the disassembler's end-of-line comments.
 */
function decompile(dir: string, ram: Uint8Array, name: string, addr: number): string {
  const file = join(dir, `${name}.dat`);
  const length = new DataView(ram.buffer, ram.byteOffset).getUint32(addr + 4, true);
  writeFileSync(file, ram.subarray(addr, addr + length));
  const out = spawnSync('iasl', ['-d', file], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stdout + out.stderr);
  assert.doesNotMatch(out.stdout + out.stderr, /error|warning/i);
  return readFileSync(join(dir, `${name}.dsl`), 'utf8').replace(/\/\/.*$/gm, '');
}

test('iasl decompiles the tables and acpiexec evaluates \\_S5_', (t) => {
  if (spawnSync('iasl', ['-v']).error) return t.skip('iasl not installed (apt-get install acpica-tools)');
  const { ram, tables } = acpiImage();
  const dir = mkdtempSync(join(tmpdir(), 'vireo-acpi-'));
  try {
    const dump = (name: string, addr: number): string => decompile(dir, ram, name, addr);
    const dsl = dump('dsdt', tables.dsdt);
    assert.match(dsl, /Name \(_S5, Package \(0x02\)\s*\{\s*0x05,\s*Zero\s*\}\)/);
    assert.match(dsl, /Device \(COM1\)[\s\S]*EisaId \("PNP0501"\)[\s\S]*IO \(Decode16,\s*0x03F8,\s*0x03F8,\s*0x01,\s*0x08,[\s\S]*IRQNoFlags \(\)\s*\{4\}/);
    assert.match(dsl, /Device \(VR01\)[\s\S]*"LNRO0005"[\s\S]*Memory32Fixed \(ReadWrite,\s*0xD0001000,\s*0x00001000,[\s\S]*Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \)\s*\{\s*0x00000006,/);
    // The decompiled DSDT compiles back without complaint.
    writeFileSync(join(dir, 'dsdt.dsl'), dsl);
    const recompile = spawnSync('iasl', ['-p', join(dir, 'again'), join(dir, 'dsdt.dsl')], { encoding: 'utf8' });
    assert.equal(recompile.status, 0, recompile.stdout + recompile.stderr);
    assert.match(recompile.stdout, /0 Errors, 0 Warnings/);

    const fadt = dump('facp', tables.fadt);
    assert.match(fadt, /Hardware Reduced \(V5\) : 1/);
    // The GAS: Space ID, bit width, bit offset, access width, address, one line each.
    assert.match(fadt, /Sleep Control Register : .*\n.*Space ID : 01 \[SystemIO\]\n.*Bit Width : 08\n.*\n.*\n.*Address : 0000000000000600\n/);
    assert.match(fadt, /Sleep Status Register : .*\n.*Space ID : 01 \[SystemIO\]\n(.*\n){3}.*Address : 0000000000000601\n/);
    assert.match(fadt, /DSDT Address : 0000000000\w{6}/);
    const madt = dump('apic', tables.madt);
    assert.match(madt, /Subtable Type : 02 \[Interrupt Source Override\][\s\S]*?Interrupt : 00000002/);
    dump('xsdt', tables.xsdt);

    if (spawnSync('acpiexec', ['-v']).error) return t.skip('acpiexec not installed');
    const run = execFileSync('acpiexec', ['-b', 'evaluate \\_S5_', join(dir, 'dsdt.dat')], { encoding: 'utf8' });
    assert.match(run, /\[Package\] Contains 2 Elements:\s*\[Integer\] = 0000000000000005\s*\[Integer\] = 0000000000000000/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const PCI: AcpiOptions['pci'] = {
  ecam: { base: 0xe000_0000, size: 0x10_0000 },
  pio: { base: 0x5000, size: 0x3000 },
  mmio32: { base: 0xc000_0000, size: 0x1000_0000 },
  intx: [12, 13, 14, 15],
};

test('ACPI: a PCI host bridge adds an MCFG to the XSDT with bus 0 ECAM', () => {
  const { v, tables, table } = acpiImage({ ...OPTS, pci: PCI });
  const xsdt = table(tables.xsdt, 'XSDT', 1);
  assert.equal(xsdt.length, 36 + 3 * 8);
  assert.equal(v.getBigUint64(tables.xsdt + 36 + 16, true), BigInt(tables.mcfg!));
  const mcfg = table(tables.mcfg!, 'MCFG', 1);
  assert.equal(mcfg.length, 36 + 8 + 16);
  const m = new DataView(mcfg.buffer, mcfg.byteOffset);
  assert.equal(m.getBigUint64(44, true), 0xe000_0000n);
  assert.deepEqual([m.getUint16(52, true), mcfg[54], mcfg[55]], [0, 0, 0], 'segment 0, buses 0-0');
  assert.equal(acpiImage().tables.mcfg, undefined, 'no bridge, no MCFG');
  const ram = new Uint8Array(0x10_0000);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, pci: { ...PCI, ecam: { base: 0xe000_0000, size: 0x1000 } } }), RangeError);
  assert.throws(() => writeAcpiTables(ram, 0xe0000, { ...OPTS, pci: { ...PCI, pio: { base: 0xf000, size: 0x2000 } } }), RangeError);
});

test('iasl decompiles the PCI host bridge and acpiexec evaluates its _CRS and _PRT', (t) => {
  if (spawnSync('iasl', ['-v']).error) return t.skip('iasl not installed (apt-get install acpica-tools)');
  const { ram, tables } = acpiImage({ ...OPTS, i8042: true, pci: PCI });
  const dir = mkdtempSync(join(tmpdir(), 'vireo-acpi-'));
  try {
    const save = (name: string, addr: number): string => decompile(dir, ram, name, addr);
    const dsl = save('dsdt', tables.dsdt);
    assert.match(dsl, /Device \(KBD\)[\s\S]*EisaId \("PNP0303"\)[\s\S]*IO \(Decode16,\s*0x0064,\s*0x0064,\s*0x01,\s*0x01,[\s\S]*IRQNoFlags \(\)\s*\{1\}/);
    assert.match(dsl, /Device \(PCI0\)[\s\S]*EisaId \("PNP0A08"\)[\s\S]*EisaId \("PNP0A03"\)/);
    assert.match(dsl, /WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode,\s*0x0000,\s*0x0000,\s*0x0000,\s*0x0000,\s*0x0001,/);
    assert.match(dsl, /WordIO \(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\s*0x0000,\s*0x5000,\s*0x7FFF,\s*0x0000,\s*0x3000,/);
    assert.match(dsl, /DWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,\s*0x00000000,\s*0xC0000000,\s*0xCFFFFFFF,\s*0x00000000,\s*0x10000000,/);
    assert.match(dsl, /Device \(RES0\)[\s\S]*EisaId \("PNP0C02"\)[\s\S]*Memory32Fixed \(ReadWrite,\s*0xE0000000,\s*0x00100000,/);
    assert.match(save('mcfg', tables.mcfg!), /Base Address : 00000000E0000000[\s\S]*End Bus Number : 00/);
    if (spawnSync('acpiexec', ['-v']).error) return t.skip('acpiexec not installed');
    const prt = execFileSync('acpiexec', ['-b', 'evaluate \\_SB.PCI0._PRT', join(dir, 'dsdt.dat')], { encoding: 'utf8' });
    assert.match(prt, /\[Package\] Contains 128 Elements/);
    // Slot 1 INTA (the swizzle: device 1 pin A is line B) and slot 3 INTD (line C).
    assert.match(prt, /\[Integer\] = 000000000001FFFF\s*\[Integer\] = 0000000000000000\s*\[Integer\] = 0000000000000000\s*\[Integer\] = 000000000000000D/);
    assert.match(prt, /\[Integer\] = 000000000003FFFF\s*\[Integer\] = 0000000000000003\s*\[Integer\] = 0000000000000000\s*\[Integer\] = 000000000000000E/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
