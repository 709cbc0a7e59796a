/**
 * Tests for the PCI function model and bus (src/hw/pci/pci.ts, pci-bus.ts): config space
 * masks, the BAR sizing protocol and BAR mapping, the capability list, INTx routing and
 * MSI-X, driven through config accesses the way an OS drives them.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace, BUS_ERROR, type MmioHandler } from '../../src/hw/core/memory.js';
import {
  PciFunction, MsixCapability, PCI_CFG, PCI_COMMAND, PCI_STATUS, type MsiTarget, type PciSpaces,
} from '../../src/hw/pci/pci.js';
import { PciBus } from '../../src/hw/pci/pci-bus.js';
import { RecordingLine as Line } from './device-helpers.js';

/** A register file answering reads with offset + 0x1000 * tag, recording writes. */
class Regs implements MmioHandler {
  writes: [number, number, number][] = [];
  constructor(private readonly tag: number) {}
  read(offset: number): number {
    return offset + 0x1000 * this.tag;
  }
  write(offset: number, size: number, value: number): void {
    this.writes.push([offset, size, value]);
  }
}

function newBus(): { bus: PciBus; spaces: PciSpaces; lines: Line[] } {
  const spaces = { mem: new AddressSpace(), io: new AddressSpace() };
  const lines = [new Line(), new Line(), new Line(), new Line()];
  return { bus: new PciBus(spaces, lines), spaces, lines };
}

const ids = { vendorId: 0x1234, deviceId: 0x5678, classCode: 0x020000, revision: 3, subsystemVendorId: 0x1af4, subsystemId: 0x1100, interruptPin: 1 };
const BAR = (i: number) => PCI_CFG.BAR0 + 4 * i;

test('header: identity is read-only, Command has only its implemented bits, Status errors are write-one-to-clear', () => {
  const f = new PciFunction(ids);
  assert.equal(f.readConfig(0, 4), 0x56781234);
  assert.equal(f.readConfig(8, 4), 0x02000003, 'class code and revision');
  assert.equal(f.readConfig(0x2c, 4), 0x11001af4, 'subsystem IDs');
  assert.equal(f.readConfig(PCI_CFG.INTERRUPT_PIN, 1), 1);
  f.writeConfig(0, 4, 0xffffffff);
  f.writeConfig(8, 4, 0xffffffff);
  f.writeConfig(PCI_CFG.INTERRUPT_PIN, 1, 4);
  assert.equal(f.readConfig(0, 4), 0x56781234);
  assert.equal(f.readConfig(8, 4), 0x02000003);
  assert.equal(f.readConfig(PCI_CFG.INTERRUPT_PIN, 1), 1);

  f.writeConfig(PCI_CFG.COMMAND, 2, 0xffff);
  assert.equal(f.readConfig(PCI_CFG.COMMAND, 2), 0x0547, 'IO, MEM, MASTER, PARITY, SERR, INTX_DISABLE');
  f.writeConfig(PCI_CFG.CACHE_LINE_SIZE, 1, 0x10);
  f.writeConfig(PCI_CFG.INTERRUPT_LINE, 1, 0x2a);
  assert.equal(f.readConfig(PCI_CFG.CACHE_LINE_SIZE, 1), 0x10);
  assert.equal(f.readConfig(PCI_CFG.INTERRUPT_LINE, 1), 0x2a);
  assert.equal(f.readConfig(PCI_CFG.HEADER_TYPE, 1), 0, 'type 0 header, single function');

  // A detected parity error (bit 15) and signalled system error (bit 14): a written 1
  // clears one, a written 0 leaves the other; a 32-bit write at 0x04 reaches both registers.
  f.config[PCI_CFG.STATUS + 1] = 0xc0;
  f.writeConfig(PCI_CFG.COMMAND, 4, 0x80000000 | PCI_COMMAND.MEMORY);
  assert.equal(f.readConfig(PCI_CFG.STATUS, 2), 0x4000);
  assert.equal(f.readConfig(PCI_CFG.COMMAND, 2), PCI_COMMAND.MEMORY);
});

test('bad config accesses read as all ones and change nothing', () => {
  const f = new PciFunction(ids);
  const before = Uint8Array.from(f.config);
  for (const [off, size] of [[1, 2], [2, 4], [0x100, 4], [0xfe, 4], [-4, 4], [0, 3], [0, 8], [1.5, 1], [NaN, 4]] as const) {
    assert.equal(f.readConfig(off, size), size >= 4 ? 0xffffffff : 2 ** (8 * size) - 1, `${off}/${size}`);
    f.writeConfig(off, size, 0);
  }
  assert.deepEqual(f.config, before);
  const express = new PciFunction({ ...ids, configSize: 4096 });
  assert.equal(express.readConfig(0xffc, 4), 0, 'extended config space exists');
});

test('BAR sizing: all ones reads back the size mask with the type bits', () => {
  const f = new PciFunction(ids);
  f.registerBar(0, { kind: 'mem32', size: 0x1000, handler: new Regs(0) });
  f.registerBar(1, { kind: 'io', size: 0x20, handler: new Regs(1) });
  f.registerBar(2, { kind: 'mem64', size: 0x4000, prefetchable: true, handler: new Regs(2) });
  f.registerBar(4, { kind: 'mem64', size: 2 ** 33, handler: new Regs(4) });
  assert.equal(f.readConfig(BAR(0), 4), 0x0);
  assert.equal(f.readConfig(BAR(1), 4), 0x1, 'I/O space indicator');
  assert.equal(f.readConfig(BAR(2), 4), 0xc, '64-bit, prefetchable');
  for (let i = 0; i < 6; i++) f.writeConfig(BAR(i), 4, 0xffffffff);
  assert.equal(f.readConfig(BAR(0), 4), 0xfffff000);
  assert.equal(f.readConfig(BAR(1), 4), 0xffffffe1);
  assert.equal(f.readConfig(BAR(2), 4), 0xffffc00c);
  assert.equal(f.readConfig(BAR(3), 4), 0xffffffff, 'upper half of the 64-bit BAR');
  assert.equal(f.readConfig(BAR(4), 4), 0x4, 'an 8 GiB BAR: no writable bits in the low half');
  assert.equal(f.readConfig(BAR(5), 4), 0xfffffffe);
  assert.equal(f.readConfig(PCI_CFG.BAR0 + 24, 4), 0, 'CardBus CIS pointer');
});

test('BAR registration rejects impossible BARs', () => {
  const f = new PciFunction(ids);
  const handler = new Regs(0);
  assert.throws(() => f.registerBar(5, { kind: 'mem64', size: 0x1000, handler }), RangeError);
  assert.throws(() => f.registerBar(0, { kind: 'mem32', size: 0x1800, handler }), RangeError);
  assert.throws(() => f.registerBar(0, { kind: 'mem32', size: 8, handler }), RangeError);
  assert.throws(() => f.registerBar(0, { kind: 'io', size: 512, handler }), RangeError);
  f.registerBar(0, { kind: 'mem64', size: 0x1000, handler });
  assert.throws(() => f.registerBar(1, { kind: 'mem32', size: 0x1000, handler }), /already/);
  assert.throws(() => f.registerBar(0, { kind: 'mem32', size: 0x1000, handler }), /already/);
});

test('BARs are mapped while programmed and decoding, move with their register, and unmap when decoding stops', () => {
  const { bus, spaces } = newBus();
  const f = new PciFunction(ids);
  const regs = new Regs(7);
  const io = new Regs(3);
  f.registerBar(0, { kind: 'mem32', size: 0x1000, handler: regs });
  f.registerBar(1, { kind: 'io', size: 0x20, handler: io });
  f.registerBar(2, { kind: 'mem64', size: 0x4000, handler: new Regs(2) });
  bus.plug(f, 2);
  f.writeConfig(BAR(0), 4, 0x40000000);
  f.writeConfig(BAR(1), 4, 0x1000);
  assert.equal(spaces.mem.list().length, 0, 'programmed but decoding is off');
  f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY | PCI_COMMAND.IO);
  assert.equal(spaces.mem.read(0x40000010, 4), 0x7010);
  assert.equal(spaces.io.read(0x1004, 2), 0x3004);
  assert.equal(f.barAddress(0), 0x40000000);
  assert.equal(f.barAddress(2), null, 'BAR 2 holds 0: not mapped');
  spaces.mem.write(0x40000020, 4, 0xabcd);
  assert.deepEqual(regs.writes, [[0x20, 4, 0xabcd]]);

  // Moving the BAR moves the region.
  f.writeConfig(BAR(0), 4, 0x40200000);
  assert.equal(spaces.mem.read(0x40000010, 4), BUS_ERROR);
  assert.equal(spaces.mem.read(0x40200010, 4), 0x7010);
  // Sizing with decoding on: the all-ones value is not an address (its region would end at 4 GiB).
  f.writeConfig(BAR(0), 4, 0xffffffff);
  assert.equal(f.barAddress(0), null);
  assert.equal(spaces.mem.list().length, 0);
  f.writeConfig(BAR(0), 4, 0x40200000);

  // A 64-bit BAR above 4 GiB, written a half at a time.
  f.writeConfig(BAR(2), 4, 0x8000);
  f.writeConfig(BAR(3), 4, 0x4);
  assert.equal(f.barAddress(2), 0x4_0000_8000);
  assert.equal(spaces.mem.read(0x4_0000_8000 + 0x40, 4), 0x2040);

  // Memory decoding off: both memory BARs go, the I/O BAR stays.
  f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.IO);
  assert.equal(spaces.mem.list().length, 0);
  assert.equal(spaces.io.read(0x1004, 2), 0x3004);
  f.writeConfig(PCI_CFG.COMMAND, 2, 0);
  assert.equal(spaces.io.list().length, 0);
  f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY);
  assert.equal(spaces.mem.read(0x40200010, 4), 0x7010, 'back where the register says');

  // A 64-bit address beyond what a number holds exactly is never mapped.
  f.writeConfig(BAR(3), 4, 0xffffffff);
  assert.equal(f.barAddress(2), null);
});

test('overlapping BARs: the second waits until the place is free, and nothing throws', () => {
  const { bus, spaces } = newBus();
  const a = new PciFunction(ids);
  const b = new PciFunction(ids);
  a.registerBar(0, { kind: 'mem32', size: 0x1000, handler: new Regs(1) });
  b.registerBar(0, { kind: 'mem32', size: 0x2000, handler: new Regs(2) });
  bus.plug(a, 1);
  bus.plug(b, 2);
  for (const f of [a, b]) {
    f.writeConfig(BAR(0), 4, 0x40000000);
    f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY);
  }
  assert.equal(spaces.mem.read(0x40000000, 4), 0x1000, 'a got there first');
  assert.equal(spaces.mem.read(0x40001000, 4), BUS_ERROR, 'b is not mapped at all');
  a.writeConfig(BAR(0), 4, 0x50000000);
  assert.equal(spaces.mem.read(0x40001000, 4), 0x2000 + 0x1000, 'b took the place a left');
  assert.equal(spaces.mem.read(0x50000000, 4), 0x1000);
});

/** Follows the capability list from 0x34: [offset, id] pairs. */
function capabilities(read: (off: number, size: number) => number): [number, number][] {
  const out: [number, number][] = [];
  if (!(read(PCI_CFG.STATUS, 2) & PCI_STATUS.CAP_LIST)) return out;
  for (let p = read(PCI_CFG.CAPABILITIES_POINTER, 1) & ~3; p !== 0 && out.length < 48; p = read(p + 1, 1) & ~3) {
    out.push([p, read(p, 1)]);
  }
  return out;
}

test('capability list: linked from 0x34 in order, Status says it exists, contents read-only unless made writable', () => {
  const f = new PciFunction(ids);
  assert.deepEqual(capabilities((o, s) => f.readConfig(o, s)), []);
  const a = f.addCapability(0x09, 16);
  const b = f.addCapability(0x05, 10);
  const c = f.addCapability(0x09, 20);
  assert.deepEqual([a, b, c], [0x40, 0x50, 0x5c]);
  assert.deepEqual(capabilities((o, s) => f.readConfig(o, s)), [[0x40, 9], [0x50, 5], [0x5c, 9]]);
  f.config[a + 4] = 0x11;
  f.setWritable(a + 8, 2, 0x0ff0);
  f.writeConfig(a, 4, 0);
  f.writeConfig(a + 4, 4, 0xffffffff);
  f.writeConfig(a + 8, 4, 0xffffffff);
  assert.equal(f.readConfig(a, 2), 0x5009, 'ID and next pointer stay');
  assert.equal(f.readConfig(a + 4, 4), 0x11);
  assert.equal(f.readConfig(a + 8, 4), 0x0ff0);
  assert.throws(() => f.addCapability(0x09, 200), RangeError);
});

test('INTx: swizzled to the host lines, shared as a wired OR, masked by Interrupt Disable, shown in Status', () => {
  const { bus, lines } = newBus();
  const a = new PciFunction(ids); // INTA# on device 1 -> line 1
  const b = new PciFunction({ ...ids, interruptPin: 4 }); // INTD# on device 2 -> line (2 + 3) % 4 = 1
  const c = new PciFunction({ ...ids, interruptPin: 2 }); // INTB# on device 3 -> line 0
  bus.plug(a, 1);
  bus.plug(b, 2);
  bus.plug(c, 3);
  a.setIntx(true);
  assert.deepEqual(lines.map((l) => l.level), [false, true, false, false]);
  assert.ok(a.readConfig(PCI_CFG.STATUS, 2) & PCI_STATUS.INTERRUPT);
  b.setIntx(true);
  a.setIntx(false);
  assert.ok(lines[1]!.level, 'b still holds the shared line');
  assert.equal(a.readConfig(PCI_CFG.STATUS, 2) & PCI_STATUS.INTERRUPT, 0);
  b.setIntx(true);
  b.setIntx(false);
  assert.ok(!lines[1]!.level);
  assert.equal(lines[1]!.sets, 2, 'one rising and one falling edge');
  c.setIntx(true);
  assert.ok(lines[0]!.level);
  c.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.INTX_DISABLE);
  assert.ok(!lines[0]!.level, 'Interrupt Disable takes the pin off the bus');
  assert.ok(c.readConfig(PCI_CFG.STATUS, 2) & PCI_STATUS.INTERRUPT, 'the status bit still shows it');
  c.writeConfig(PCI_CFG.COMMAND, 2, 0);
  assert.ok(lines[0]!.level);
});

test('bus: empty addresses read all ones, functions 1-7 need function 0, multi-function devices say so', () => {
  const { bus } = newBus();
  assert.equal(bus.readConfig(4, 0, 0, 4), 0xffffffff);
  assert.equal(bus.readConfig(4, 0, 0, 2), 0xffff);
  assert.equal(bus.readConfig(40, 0, 0, 4), 0xffffffff, 'no device 40');
  const f1 = new PciFunction({ ...ids, deviceId: 1 });
  bus.plug(f1, 4, 1);
  assert.equal(bus.readConfig(4, 1, 0, 4), 0xffffffff, 'function 1 is hidden without function 0');
  const f0 = new PciFunction(ids);
  bus.plug(f0, 4, 0);
  assert.equal(bus.readConfig(4, 1, 0, 4), 0x00011234);
  assert.equal(bus.readConfig(4, 0, PCI_CFG.HEADER_TYPE, 1), 0x80, 'multi-function bit');
  bus.writeConfig(4, 1, PCI_CFG.INTERRUPT_LINE, 1, 9);
  assert.equal(f1.readConfig(PCI_CFG.INTERRUPT_LINE, 1), 9);
  bus.writeConfig(5, 0, PCI_CFG.INTERRUPT_LINE, 1, 9); // nobody there: dropped
  assert.throws(() => bus.plug(new PciFunction(ids), 4, 1), /in use/);
  assert.throws(() => bus.plug(new PciFunction(ids), 32), RangeError);
  assert.throws(() => bus.plug(f0, 6), /already plugged/);
});

/** An MSI target recording the messages. */
class Msis implements MsiTarget {
  sent: [number, number][] = [];
  send(addr: number, data: number): void {
    this.sent.push([addr, data]);
  }
}

function msixSetup(vectors: number) {
  const { bus, spaces, lines } = newBus();
  const f = new PciFunction(ids);
  const msis = new Msis();
  const msix = new MsixCapability(f, vectors, 2, msis);
  bus.plug(f, 1);
  const table = 0x40000000;
  f.writeConfig(BAR(2), 4, table);
  f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER);
  const entry = (v: number) => table + 16 * v;
  const program = (v: number, addr: number, data: number) => {
    spaces.mem.write(entry(v), 4, addr);
    spaces.mem.write(entry(v) + 4, 4, 0);
    spaces.mem.write(entry(v) + 8, 4, data);
  };
  const control = (v: number) => f.writeConfig(msix.offset + 2, 2, v);
  return { f, msix, msis, spaces, lines, entry, program, control, table };
}

test('MSI-X capability: table size, BIR and offsets, and the BAR it asks for', () => {
  const { f, msix, table } = msixSetup(3);
  assert.equal(msix.offset, 0x40);
  assert.deepEqual(capabilities((o, s) => f.readConfig(o, s)), [[0x40, 0x11]]);
  assert.equal(f.readConfig(0x42, 2), 2, 'Table Size is N - 1; enable and mask clear');
  assert.equal(f.readConfig(0x44, 4), 2, 'table at offset 0 of BAR 2');
  assert.equal(f.readConfig(0x48, 4), 0x800 | 2, 'PBA at 0x800 of BAR 2');
  f.writeConfig(0x42, 2, 0xffff);
  assert.equal(f.readConfig(0x42, 2), 0xc002, 'only Enable and Function Mask are writable');
  f.writeConfig(0x44, 4, 0);
  assert.equal(f.readConfig(0x44, 4), 2);
  assert.equal(f.barAddress(2), table);
  f.writeConfig(BAR(2), 4, 0xffffffff);
  assert.equal(f.readConfig(BAR(2), 4), 0xfffff000, 'a 4 KiB 32-bit BAR');
  assert.equal(new MsixCapability(new PciFunction(ids), 300, 0, new Msis()).offset, 0x40);
  assert.throws(() => new MsixCapability(new PciFunction(ids), 0, 0, new Msis()), RangeError);
});

test('MSI-X: messages when enabled and unmasked, pending bits while masked, sent on unmask', () => {
  const { msix, msis, spaces, lines, entry, program, control, table, f } = msixSetup(3);
  assert.equal(spaces.mem.read(entry(1) + 12, 4), 1, 'vectors start masked');
  program(0, 0xfee00000, 0x41);
  program(1, 0xfee01000, 0x42);
  assert.equal(spaces.mem.read(entry(1) + 8, 4), 0x42);
  msix.notify(0);
  assert.deepEqual(msis.sent, [], 'MSI-X disabled: nothing, not even pending');
  assert.ok(!msix.pending(0));

  control(0x8000);
  msix.notify(0);
  assert.ok(msix.pending(0), 'masked vector: pending');
  assert.equal(spaces.mem.read(table + 0x800, 4), 1, 'PBA bit 0');
  spaces.mem.write(table + 0x800, 4, 0); // software must not write the PBA; it is read-only
  assert.equal(spaces.mem.read(table + 0x800, 4), 1);
  spaces.mem.write(entry(0) + 12, 4, 0); // unmask
  assert.deepEqual(msis.sent, [[0xfee00000, 0x41]], 'delivered on unmask');
  assert.ok(!msix.pending(0));
  msix.notify(0);
  assert.deepEqual(msis.sent.at(-1), [0xfee00000, 0x41]);
  assert.equal(msis.sent.length, 2);

  // Function Mask masks every vector; clearing it delivers what is pending.
  spaces.mem.write(entry(1) + 12, 4, 0);
  control(0xc000);
  msix.notify(1);
  msix.notify(0);
  assert.equal(msis.sent.length, 2);
  assert.equal(spaces.mem.read(table + 0x800, 4), 3);
  assert.equal(spaces.mem.read(entry(1) + 12, 4), 0, 'the function mask leaves the vector masks alone');
  control(0x8000);
  assert.deepEqual(msis.sent.slice(2), [[0xfee00000, 0x41], [0xfee01000, 0x42]]);

  // Reserved Vector Control bits and the address's low bits read as zero.
  spaces.mem.write(entry(2) + 12, 4, 0xfffffffe);
  assert.equal(spaces.mem.read(entry(2) + 12, 4), 0);
  spaces.mem.write(entry(2), 4, 0xfee00003);
  assert.equal(spaces.mem.read(entry(2), 4), 0xfee00000);

  // Out-of-range vectors, odd accesses and table space past the last entry change nothing.
  const count = msis.sent.length;
  msix.notify(3);
  msix.notify(-1);
  msix.notify(0.5);
  assert.equal(spaces.mem.read(entry(0), 2), BUS_ERROR, 'only DWORD and QWORD accesses');
  assert.equal(spaces.mem.read(entry(3), 4), 0);
  spaces.mem.write(entry(3), 4, 1);
  assert.equal(spaces.mem.read(entry(3), 4), 0);
  assert.equal(msis.sent.length, count);

  // A 64-bit message address and a QWORD write.
  spaces.mem.write(entry(2), 8, 0x1000, 0x1);
  msix.notify(2);
  assert.deepEqual(msis.sent.at(-1), [0x1_0000_1000, 0]);

  // No Bus Master Enable: the function may not send messages.
  f.writeConfig(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY);
  msix.notify(0);
  assert.equal(msis.sent.length, count + 1);
  assert.ok(lines.every((l) => !l.level));
});

test('MSI-X enabled takes INTx off the bus', () => {
  const { f, control, lines } = msixSetup(1);
  f.setIntx(true);
  assert.ok(lines[1]!.level);
  control(0x8000);
  assert.ok(!lines[1]!.level);
  control(0);
  assert.ok(lines[1]!.level, 'the pin was still asserted');
});
