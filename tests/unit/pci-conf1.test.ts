/**
 * Tests for PCI configuration mechanism #1 (src/hw/pci/pci-conf1.ts): CONFIG_ADDRESS
 * selection, byte/word/dword data accesses, disabled and foreign-bus addresses, and the
 * narrow accesses around 0xcf8 that are not CONFIG_ADDRESS.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { PciFunction, PCI_CFG } from '../../src/hw/pci/pci.js';
import { GpexHost } from '../../src/hw/pci/pci-host-gpex.js';
import { PciConf1, PCI_CONF1_PORT, PCI_CONF1_SIZE } from '../../src/hw/pci/pci-conf1.js';
import { RecordingLine as Line } from './device-helpers.js';

const addr = (bus: number, dev: number, fn: number, reg: number, enable = true) =>
  ((enable ? 0x8000_0000 : 0) | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0;

function ports() {
  const host = new GpexHost([new Line(), new Line(), new Line(), new Line()]);
  const io = new AddressSpace();
  io.addRegion({ name: 'pci-conf1', base: PCI_CONF1_PORT, size: PCI_CONF1_SIZE, handler: new PciConf1(host.bus), impl: { min: 1, max: 4 } });
  const f = new PciFunction({ vendorId: 0x1af4, deviceId: 0x1042, classCode: 0x010000 });
  host.bus.plug(f, 2, 1);
  host.bus.plug(new PciFunction({ vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000 }), 2);
  return { io, f, host };
}

test('conf1: CONFIG_ADDRESS selects a function and register; data accesses of every width', () => {
  const { io, f } = ports();
  io.write(0xcf8, 4, addr(0, 0, 0, 0));
  assert.equal(io.read(0xcf8, 4), addr(0, 0, 0, 0), 'CONFIG_ADDRESS reads back');
  assert.equal(io.read(0xcfc, 4), 0x00081b36, 'the host bridge at 00.0');
  io.write(0xcf8, 4, addr(0, 2, 1, 0));
  assert.equal(io.read(0xcfc, 4), 0x10421af4);
  assert.equal(io.read(0xcfe, 2), 0x1042);
  assert.equal(io.read(0xcfd, 1), 0x1a);
  io.write(0xcf8, 4, addr(0, 2, 1, PCI_CFG.INTERRUPT_LINE & ~3));
  io.write(0xcfc + (PCI_CFG.INTERRUPT_LINE & 3), 1, 0x2b);
  assert.equal(f.readConfig(PCI_CFG.INTERRUPT_LINE, 1), 0x2b);
  io.write(0xcf8, 4, addr(0, 2, 1, 0) | 3);
  assert.equal(io.read(0xcf8, 4), addr(0, 2, 1, 0), 'bits 1:0 are reserved');
});

test('conf1: nothing answers when disabled, on another bus, at an empty slot, or misaligned', () => {
  const { io } = ports();
  io.write(0xcf8, 4, addr(0, 2, 0, 0, false));
  assert.equal(io.read(0xcfc, 4), 0xffffffff, 'enable bit clear');
  io.write(0xcf8, 4, addr(1, 2, 0, 0));
  assert.equal(io.read(0xcfc, 4), 0xffffffff, 'bus 1 does not exist');
  io.write(0xcf8, 4, addr(0, 9, 0, 0));
  assert.equal(io.read(0xcfc, 2), 0xffff, 'empty slot');
  const { host } = ports();
  const conf = new PciConf1(host.bus);
  conf.write(0, 4, addr(0, 2, 0, 0));
  assert.equal(conf.read(5, 2), 0xffff, 'a misaligned word in CONFIG_DATA');
  assert.equal(conf.read(4, 4), 0x10411af4);
});

test('conf1: narrow accesses at 0xcf8-0xcfb leave CONFIG_ADDRESS alone', () => {
  const { io } = ports();
  io.write(0xcf8, 4, addr(0, 2, 0, 0));
  io.write(0xcf9, 1, 0x06); // PIIX reset control: not on this board
  io.write(0xcf8, 2, 0);
  assert.equal(io.read(0xcf8, 4), addr(0, 2, 0, 0));
  assert.equal(io.read(0xcf9, 1), 0xff);
  assert.equal(io.read(0xcfc, 4), 0x10411af4);
});
