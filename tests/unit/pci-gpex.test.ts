/**
 * Tests for the generic ECAM host bridge (src/hw/pci/pci-host-gpex.ts): ECAM addressing,
 * the host bridge function, the CPU windows onto PCI memory and I/O space, INTx routing,
 * and the device tree node, compared property by property with the one QEMU's riscv virt
 * machine dumps (when qemu-system-riscv64 and dtc are installed).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressSpace, type MmioHandler } from '../../src/hw/core/memory.js';
import { PciFunction, PCI_CFG, PCI_COMMAND } from '../../src/hw/pci/pci.js';
import { GpexHost, gpexFdtNode, type GpexLayout } from '../../src/hw/pci/pci-host-gpex.js';
import { RecordingLine as Line, dtsOfNode } from './device-helpers.js';

/** QEMU riscv virt's PCIe layout (hw/riscv/virt.c, with up to 16 GiB of RAM). */
const VIRT: GpexLayout = {
  ecam: { base: 0x30000000, size: 0x10000000 },
  pio: { base: 0x3000000, size: 0x10000 },
  mmio32: { base: 0x40000000, size: 0x40000000 },
  mmio64: { base: 0x4_0000_0000, size: 0x4_0000_0000 },
};
const ECAM = (bus: number, dev: number, fn: number, reg: number) => VIRT.ecam.base + (bus << 20) + (dev << 15) + (fn << 12) + reg;

function board() {
  const lines = [new Line(), new Line(), new Line(), new Line()];
  const host = new GpexHost(lines);
  const sys = new AddressSpace();
  for (const r of host.regions(VIRT)) sys.addRegion(r);
  return { host, sys, lines };
}

const echo = (tag: number): MmioHandler => ({ read: (o) => tag + o, write() {} });

test('ECAM: the host bridge at 00.0, devices by bus/device/function/register, all ones where nothing answers', () => {
  const { host, sys } = board();
  assert.equal(sys.read(ECAM(0, 0, 0, 0), 4), 0x00081b36, 'Red Hat 1b36:0008, QEMU PCIe host bridge');
  assert.equal(sys.read(ECAM(0, 0, 0, 8), 4), 0x06000000, 'class: bridge, host; revision 0');
  assert.equal(sys.read(ECAM(0, 0, 0, 0x2c), 4), 0x11001af4);
  assert.equal(sys.read(ECAM(0, 0, 0, PCI_CFG.HEADER_TYPE), 1), 0);
  assert.equal(sys.read(ECAM(0, 0, 0, PCI_CFG.INTERRUPT_PIN), 1), 0);

  const f = new PciFunction({ vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000, configSize: 4096 });
  const g = new PciFunction({ vendorId: 0x1af4, deviceId: 0x1042, classCode: 0x010000 });
  host.bus.plug(f, 3);
  host.bus.plug(g, 3, 5);
  assert.equal(sys.read(ECAM(0, 3, 0, 0), 4), 0x10411af4);
  assert.equal(sys.read(ECAM(0, 3, 0, 2), 2), 0x1041);
  assert.equal(sys.read(ECAM(0, 3, 0, 0xb), 1), 0x02);
  assert.equal(sys.read(ECAM(0, 3, 5, 0), 4), 0x10421af4);
  sys.write(ECAM(0, 3, 5, PCI_CFG.INTERRUPT_LINE), 1, 0x33);
  assert.equal(g.readConfig(PCI_CFG.INTERRUPT_LINE, 1), 0x33);
  sys.write(ECAM(0, 3, 0, 0xffc), 4, 0x12345678); // extended space: exists but read-only
  assert.equal(sys.read(ECAM(0, 3, 0, 0xffc), 4), 0);

  assert.equal(sys.read(ECAM(0, 4, 0, 0), 4), 0xffffffff, 'empty slot');
  assert.equal(sys.read(ECAM(0, 31, 7, 0), 2), 0xffff);
  assert.equal(sys.read(ECAM(0, 3, 4, 0), 4), 0xffffffff, 'missing function');
  assert.equal(sys.read(ECAM(1, 3, 0, 0), 4), 0xffffffff, 'only bus 0 exists');
  assert.equal(sys.read(ECAM(255, 31, 7, 0xffc), 4), 0xffffffff);
  assert.equal(sys.read(ECAM(0, 3, 5, 0x100), 4), 0xffffffff, 'past a conventional function\'s 256 bytes');
  assert.equal(sys.read(ECAM(0, 3, 0, 2), 4), -1, 'a misaligned access is a bus error of the ECAM region');
  assert.equal(host.ecam.read(2, 4), 0xffffffff, 'and all ones if it gets through');
  assert.equal(host.ecam.read(0, 3), 0xffffff);
  host.ecam.write(0x3c + 1, 2, 0xffff); // misaligned: dropped
  assert.equal(host.bus.readConfig(0, 0, 0x3c, 4) & 0xffff, 0);
});

test('windows: BARs programmed through ECAM answer in the 32-bit, 64-bit and I/O windows', () => {
  const { host, sys } = board();
  const f = new PciFunction({ vendorId: 0x1af4, deviceId: 0x1041, classCode: 0 });
  f.registerBar(0, { kind: 'io', size: 0x40, handler: echo(0x100) });
  f.registerBar(1, { kind: 'mem32', size: 0x1000, handler: echo(0x200) });
  f.registerBar(2, { kind: 'mem64', size: 0x4000, prefetchable: true, handler: echo(0x300) });
  host.bus.plug(f, 1);
  sys.write(ECAM(0, 1, 0, 0x10), 4, 0x1000);
  sys.write(ECAM(0, 1, 0, 0x14), 4, 0x40010000);
  sys.write(ECAM(0, 1, 0, 0x18), 4, 0x00004000);
  sys.write(ECAM(0, 1, 0, 0x1c), 4, 0x4);
  sys.write(ECAM(0, 1, 0, PCI_CFG.COMMAND), 2, PCI_COMMAND.IO | PCI_COMMAND.MEMORY);
  assert.equal(sys.read(VIRT.pio.base + 0x1000 + 4, 4), 0x104, 'PCI I/O 0x1004 at CPU 0x3001004');
  assert.equal(sys.read(0x40010008, 4), 0x208);
  assert.equal(sys.read(0x4_0000_4000 + 0x10, 4), 0x310);
  assert.equal(sys.read(0x4_0000_4000 + 0x10, 8), 0x310, 'an 8-byte access is split');
  assert.equal(sys.hi, 0x314);
  // Nothing decodes there: a master abort reads all ones (not a CPU bus error).
  assert.equal(sys.read(0x40020000, 4), 0xffffffff);
  assert.equal(sys.read(0x40020000, 1), 0xff);
  assert.equal(sys.read(VIRT.pio.base + 0x2000, 2), 0xffff);
  assert.ok(sys.write(0x50000000, 4, 1));
});

test('INTx: device d pin p raises host line (d + p - 1) mod 4', () => {
  const { host, lines } = board();
  const seen: number[] = [];
  for (let dev = 1; dev <= 4; dev++) {
    for (let pin = 1; pin <= 4; pin++) {
      const f = new PciFunction({ vendorId: 1, deviceId: 1, classCode: 0, interruptPin: pin });
      host.bus.plug(f, dev + 4 * (pin - 1));
      f.setIntx(true);
      seen.push(lines.findIndex((l) => l.level));
      f.setIntx(false);
    }
  }
  const expected = [];
  for (let dev = 1; dev <= 4; dev++) for (let pin = 1; pin <= 4; pin++) expected.push((dev + 4 * (pin - 1) + pin - 1) % 4);
  assert.deepEqual(seen, expected);
});

/** The properties of node `name` in dtc's source output, as dtc prints them. */
function nodeProps(dts: string, name: string): Map<string, string> {
  const lines = dts.split('\n');
  const start = lines.findIndex((l) => l.trim() === `${name} {`);
  assert.ok(start >= 0, `no node ${name}`);
  const props = new Map<string, string>();
  for (let i = start + 1, depth = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.endsWith('{')) depth++;
    else if (line === '};' && depth-- === 0) break;
    const m = /^([#\w,.-]+)(?: = (.*))?;$/.exec(line);
    if (m && depth === 0) props.set(m[1]!, m[2] ?? '');
  }
  return props;
}

test('device-tree node: pci-host-ecam-generic with QEMU virt\'s ranges and interrupt-map', (t) => {
  const dts = dtsOfNode(t, (f) => gpexFdtNode(f, VIRT, 0x20, 3));
  if (dts === undefined) return;
  const p = nodeProps(dts, 'pci@30000000');
  assert.equal(p.get('compatible'), '"pci-host-ecam-generic"');
  assert.equal(p.get('device_type'), '"pci"');
  assert.equal(p.get('reg'), '<0x00 0x30000000 0x00 0x10000000>');
  assert.equal(p.get('bus-range'), '<0x00 0xff>');
  assert.equal(p.get('ranges'), '<0x1000000 0x00 0x00 0x00 0x3000000 0x00 0x10000 ' +
    '0x2000000 0x00 0x40000000 0x00 0x40000000 0x00 0x40000000 0x3000000 0x04 0x00 0x04 0x00 0x04 0x00>');
  assert.equal(p.get('interrupt-map-mask'), '<0x1800 0x00 0x00 0x07>');
  assert.match(p.get('interrupt-map')!, /^<0x00 0x00 0x00 0x01 0x03 0x20 0x00 0x00 0x00 0x02 0x03 0x21 /);
  assert.match(p.get('interrupt-map')!, / 0x1800 0x00 0x00 0x04 0x03 0x22>$/);
  assert.equal(p.get('dma-coherent'), '');
  assert.equal(p.get('linux,pci-domain'), '<0x00>');
  assert.equal(p.get('#address-cells'), '<0x03>');
  assert.equal(p.get('#size-cells'), '<0x02>');
  assert.equal(p.get('#interrupt-cells'), '<0x01>');

  // QEMU's own node (its PLIC is phandle 3 with one CPU, as passed above): every property equal.
  const dtb = join(mkdtempSync(join(tmpdir(), 'vireo-gpex-')), 'qemu.dtb');
  const q = spawnSync('qemu-system-riscv64', ['-M', `virt,dumpdtb=${dtb}`, '-m', '512M', '-smp', '1', '-nographic'], { encoding: 'utf8' });
  if (q.error) return t.skip('qemu-system-riscv64 not installed (apt-get install qemu-system-misc)');
  assert.equal(q.status, 0, q.stderr);
  // dtc reads QEMU's padded blob from the file (through a pipe it stops early: EPIPE).
  const d = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', '-q', dtb], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  const theirs = nodeProps(d.stdout, 'pci@30000000');
  assert.ok(theirs.size >= 12);
  assert.deepEqual(p, theirs);
  assert.deepEqual([...p.keys()], [...theirs.keys()], 'same properties in the same order');
});
