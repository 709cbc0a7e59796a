/**
 * Tests for the modern virtio-pci transport (src/hw/virtio/virtio-pci.ts), driven end to
 * end the way Linux's virtio_pci_modern driver does it: through ECAM and the GPEX memory
 * windows, enumerating and placing the BARs, finding the virtio capabilities, then
 * device initialization (Virtio 1.2, 3.1.1 and 4.1.5.1), notifications, and interrupts
 * both by MSI-X and by INTx with the ISR.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { PCI_CFG, PCI_COMMAND, PCI_STATUS, type MsiTarget } from '../../src/hw/pci/pci.js';
import { GpexHost, type GpexLayout } from '../../src/hw/pci/pci-host-gpex.js';
import {
  VirtioPciTransport, VIRTIO_PCI_CAP, VIRTIO_PCI_COMMON as C, VIRTIO_MSI_NO_VECTOR,
} from '../../src/hw/virtio/virtio-pci.js';
import {
  VIRTIO_ID, VIRTIO_STATUS as S, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type VirtioActivation, type VirtioDevice,
} from '../../src/hw/virtio/virtio.js';
import { SplitVirtqueue, readFromChain, writeToChain } from '../../src/hw/virtio/virtqueue.js';
import { FakeGuestRam, MockSplitQueue } from './virtio-driver-mock.js';
import { RecordingLine as Line } from './device-helpers.js';

const LAYOUT: GpexLayout = {
  ecam: { base: 0x30000000, size: 0x10000000 },
  pio: { base: 0x3000000, size: 0x10000 },
  mmio32: { base: 0x40000000, size: 0x40000000 },
  mmio64: { base: 0x4_0000_0000, size: 0x4_0000_0000 },
};
const SLOT = 2;
const DEVICE_FEATURES = (1n << 0n) | (1n << 5n);
const ALL_FEATURES = DEVICE_FEATURES | (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_INDIRECT_DESC);
/** What the test driver accepts: no EVENT_IDX, so every used buffer interrupts (the mock leaves used_event at 0). */
const DRIVER_FEATURES = ALL_FEATURES & ~(1n << VIRTIO_F_EVENT_IDX);

/** A trivial device: copies what each request carries into its writable buffers. */
class EchoDevice implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.CONSOLE;
  readonly queueMaxSizes = [16, 8];
  readonly features = DEVICE_FEATURES;
  readonly configSize = 8;
  readonly cfg = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  activation: VirtioActivation | null = null;
  activations = 0;
  notified: number[] = [];
  resets = 0;

  readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.cfg[offset + i]!;
    return v;
  }
  writeConfig(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.cfg[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  }
  activate(a: VirtioActivation): void {
    this.activation = a;
    this.activations++;
  }
  queueNotify(index: number): void {
    this.notified.push(index);
    const a = this.activation!;
    const q = a.queues[index]!;
    for (let c = q.pop(); c; c = q.pop()) {
      const data = new Uint8Array(c.readableLength);
      readFromChain(a.mem, c, 0, data);
      q.pushUsed(c.head, writeToChain(a.mem, c, 0, data));
    }
  }
  reset(): void {
    this.resets++;
    this.activation = null;
  }
}

class Msis implements MsiTarget {
  sent: [number, number][] = [];
  send(addr: number, data: number): void {
    this.sent.push([addr, data]);
  }
}

interface VirtioCap { type: number; bar: number; offset: number; length: number; at: number }

/** The driver's side: PCI enumeration and the virtio-pci modern registers. */
class Driver {
  readonly bars: number[] = [];
  caps: VirtioCap[] = [];
  msixCap = 0;
  notifyMultiplier = 0;

  constructor(readonly sys: AddressSpace, readonly slot: number) {}

  cfgRead(off: number, size: number): number {
    return this.sys.read(LAYOUT.ecam.base + (this.slot << 15) + off, size);
  }
  cfgWrite(off: number, size: number, v: number): void {
    this.sys.write(LAYOUT.ecam.base + (this.slot << 15) + off, size, v);
  }

  /** Sizes every BAR and places it (32-bit ones from 0x40000000, 64-bit ones from 4 GiB), then walks the capabilities. */
  probe(): void {
    let mem32 = LAYOUT.mmio32.base;
    let mem64 = LAYOUT.mmio64.base;
    for (let i = 0; i < 6; i++) {
      const off = PCI_CFG.BAR0 + 4 * i;
      this.cfgWrite(off, 4, 0xffffffff);
      const probe = this.cfgRead(off, 4);
      if (probe === 0) continue;
      const is64 = (probe & 0x6) === 0x4;
      const size = 2 ** 32 - ((probe & ~0xf) >>> 0);
      const addr = is64 ? mem64 : mem32;
      if (is64) mem64 += Math.max(size, 0x1000);
      else mem32 += Math.max(size, 0x1000);
      this.cfgWrite(off, 4, addr % 2 ** 32);
      if (is64) this.cfgWrite(off + 4, 4, Math.floor(addr / 2 ** 32));
      this.bars[i] = addr;
      if (is64) i++;
    }
    this.cfgWrite(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER);
    for (let p = this.cfgRead(PCI_CFG.CAPABILITIES_POINTER, 1); p !== 0; p = this.cfgRead(p + 1, 1)) {
      const id = this.cfgRead(p, 1);
      if (id === 0x11) this.msixCap = p;
      if (id !== 0x09) continue;
      const cap = { type: this.cfgRead(p + 3, 1), bar: this.cfgRead(p + 4, 1), offset: this.cfgRead(p + 8, 4), length: this.cfgRead(p + 12, 4), at: p };
      this.caps.push(cap);
      if (cap.type === VIRTIO_PCI_CAP.NOTIFY_CFG) this.notifyMultiplier = this.cfgRead(p + 16, 4);
    }
  }

  /** Guest-physical address of the structure of `type`. */
  where(type: number): number {
    const cap = this.caps.find((c) => c.type === type)!;
    return this.bars[cap.bar]! + cap.offset;
  }
  common(off: number, size: number): number {
    return this.sys.read(this.where(VIRTIO_PCI_CAP.COMMON_CFG) + off, size);
  }
  setCommon(off: number, size: number, v: number): void {
    this.sys.write(this.where(VIRTIO_PCI_CAP.COMMON_CFG) + off, size, v);
  }
  status(): number {
    return this.common(C.DEVICE_STATUS, 1);
  }
  setStatus(v: number): void {
    this.setCommon(C.DEVICE_STATUS, 1, v);
  }
  readIsr(): number {
    return this.sys.read(this.where(VIRTIO_PCI_CAP.ISR_CFG), 1);
  }

  deviceFeatures(): bigint {
    this.setCommon(C.DEVICE_FEATURE_SELECT, 4, 0);
    const lo = this.common(C.DEVICE_FEATURE, 4);
    this.setCommon(C.DEVICE_FEATURE_SELECT, 4, 1);
    return (BigInt(this.common(C.DEVICE_FEATURE, 4)) << 32n) | BigInt(lo);
  }
  writeDriverFeatures(f: bigint): void {
    this.setCommon(C.DRIVER_FEATURE_SELECT, 4, 0);
    this.setCommon(C.DRIVER_FEATURE, 4, Number(f & 0xffffffffn));
    this.setCommon(C.DRIVER_FEATURE_SELECT, 4, 1);
    this.setCommon(C.DRIVER_FEATURE, 4, Number(f >> 32n));
  }

  /** MSI-X table entry `v`: message address 0xfee00000 + v * 0x1000, data 0x40 + v, unmasked. */
  programVector(v: number): void {
    const e = this.bars[1]! + 16 * v;
    this.sys.write(e, 4, 0xfee00000 + v * 0x1000);
    this.sys.write(e + 4, 4, 0);
    this.sys.write(e + 8, 4, 0x40 + v);
    this.sys.write(e + 12, 4, 0);
  }

  /** 3.1.1 and 4.1.5.1.3 as Linux does them; with `msix`, config on vector 0 and queue i on vector i + 1. */
  init(queues: (MockSplitQueue | null)[], opts: { msix: boolean; features?: bigint }): void {
    this.setStatus(0);
    this.setStatus(S.ACKNOWLEDGE);
    this.setStatus(S.ACKNOWLEDGE | S.DRIVER);
    this.writeDriverFeatures(opts.features ?? DRIVER_FEATURES);
    this.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    assert.ok(this.status() & S.FEATURES_OK, 'device accepted the features');
    if (opts.msix) {
      this.cfgWrite(this.msixCap + 2, 2, 0x8000);
      for (let v = 0; v <= queues.length; v++) this.programVector(v);
      this.setCommon(C.CONFIG_MSIX_VECTOR, 2, 0);
      assert.equal(this.common(C.CONFIG_MSIX_VECTOR, 2), 0);
    }
    queues.forEach((q, i) => {
      if (!q) return;
      this.setCommon(C.QUEUE_SELECT, 2, i);
      assert.ok(this.common(C.QUEUE_SIZE, 2) >= q.size);
      this.setCommon(C.QUEUE_SIZE, 2, q.size);
      const split = (off: number, a: number) => {
        this.setCommon(off, 4, a % 2 ** 32);
        this.setCommon(off + 4, 4, Math.floor(a / 2 ** 32));
      };
      split(C.QUEUE_DESC, q.desc);
      split(C.QUEUE_DRIVER, q.driver);
      split(C.QUEUE_DEVICE, q.device);
      if (opts.msix) {
        this.setCommon(C.QUEUE_MSIX_VECTOR, 2, i + 1);
        assert.equal(this.common(C.QUEUE_MSIX_VECTOR, 2), i + 1);
      }
      this.setCommon(C.QUEUE_ENABLE, 2, 1);
    });
    this.setStatus(this.status() | S.DRIVER_OK);
  }

  notify(index: number): void {
    this.setCommon(C.QUEUE_SELECT, 2, index);
    const off = this.common(C.QUEUE_NOTIFY_OFF, 2);
    this.sys.write(this.where(VIRTIO_PCI_CAP.NOTIFY_CFG) + off * this.notifyMultiplier, 2, index);
  }
}

function setup(device = new EchoDevice()) {
  const lines = [new Line(), new Line(), new Line(), new Line()];
  const host = new GpexHost(lines);
  const sys = new AddressSpace();
  for (const r of host.regions(LAYOUT)) sys.addRegion(r);
  const ram = new FakeGuestRam();
  const msis = new Msis();
  const transport = new VirtioPciTransport(device, { mem: ram.mem, msi: msis });
  host.bus.plug(transport, SLOT);
  const drv = new Driver(sys, SLOT);
  drv.probe();
  // INTA# of device 2 reaches host line (2 + 1 - 1) % 4.
  return { device, transport, drv, ram, msis, intx: lines[2]!, lines };
}

test('PCI identity, BARs and the virtio capabilities', () => {
  const { drv } = setup();
  assert.equal(drv.cfgRead(0, 4), 0x10431af4, '1af4:1043, virtio console');
  assert.equal(drv.cfgRead(PCI_CFG.REVISION_ID, 4), 0x07800001, 'revision 1, class communication/other');
  assert.equal(drv.cfgRead(0x2c, 4), 0x11001af4);
  assert.equal(drv.cfgRead(PCI_CFG.INTERRUPT_PIN, 1), 1, 'INTA#');
  assert.ok(drv.cfgRead(PCI_CFG.STATUS, 2) & PCI_STATUS.CAP_LIST);
  assert.deepEqual(drv.bars.map((a, i) => [i, a]).filter(([, a]) => a !== undefined), [[1, 0x40000000], [4, 0x4_0000_0000]]);
  // BAR 4: 64-bit prefetchable, 16 KiB; BAR 1: 32-bit, 4 KiB.
  drv.cfgWrite(0x20, 4, 0xffffffff);
  assert.equal(drv.cfgRead(0x20, 4), 0xffffc00c);
  drv.cfgWrite(0x20, 4, 0);
  drv.cfgWrite(0x14, 4, 0xffffffff);
  assert.equal(drv.cfgRead(0x14, 4), 0xfffff000);
  drv.cfgWrite(0x14, 4, 0x40000000);
  assert.deepEqual(drv.caps.map(({ type, bar, offset, length }) => [type, bar, offset, length]), [
    [VIRTIO_PCI_CAP.COMMON_CFG, 4, 0x0000, 0x1000],
    [VIRTIO_PCI_CAP.ISR_CFG, 4, 0x1000, 0x1000],
    [VIRTIO_PCI_CAP.DEVICE_CFG, 4, 0x2000, 0x1000],
    [VIRTIO_PCI_CAP.NOTIFY_CFG, 4, 0x3000, 0x1000],
    [VIRTIO_PCI_CAP.PCI_CFG, 4, 0, 0],
  ]);
  assert.deepEqual(drv.caps.map((c) => drv.cfgRead(c.at + 2, 1)), [16, 16, 16, 20, 20], 'cap_len');
  assert.equal(drv.notifyMultiplier, 4);
  assert.ok(drv.msixCap > 0);
  assert.equal(drv.cfgRead(drv.msixCap + 2, 2), 2, 'three vectors: config and one per queue');
  assert.equal(drv.common(C.NUM_QUEUES, 2), 2);
  assert.equal(drv.common(C.CONFIG_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
});

test('driver init with MSI-X: features, queues, DRIVER_OK activates, notify reaches the device, used buffers send the queue vector', () => {
  const { device, drv, ram, msis, intx } = setup();
  assert.equal(drv.deviceFeatures(), ALL_FEATURES);
  drv.setCommon(C.QUEUE_SELECT, 2, 1);
  assert.equal(drv.common(C.QUEUE_SIZE, 2), 8, 'queue_size starts at the maximum');
  const q0 = new MockSplitQueue(ram, 8);
  const q1 = new MockSplitQueue(ram, 4);
  drv.init([q0, q1], { msix: true });
  assert.equal(drv.status(), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  const a = device.activation!;
  assert.equal(device.activations, 1);
  assert.equal(a.features, DRIVER_FEATURES);
  assert.equal(a.mem, ram.mem);
  assert.deepEqual(a.queues.map((q) => [q.index, q.size, q instanceof SplitVirtqueue]), [[0, 8, true], [1, 4, true]]);

  // Queue 0 at the addresses the driver gave: the chain is found, the used ring written.
  const chain = q0.addChain([{ readable: 'hello' }, { writable: 16 }]);
  drv.notify(0);
  assert.deepEqual(device.notified, [0]);
  assert.deepEqual(q0.takeUsed(), [{ id: chain.head, len: 5 }]);
  assert.equal(Buffer.from(q0.readBuffer(chain.buffers[1]!, 5)).toString(), 'hello');
  assert.deepEqual(msis.sent, [[0xfee01000, 0x41]], 'queue 0 has vector 1');
  const c1 = q1.addChain([{ readable: 'x' }, { writable: 1 }]);
  drv.notify(1);
  assert.deepEqual(q1.takeUsed(), [{ id: c1.head, len: 1 }]);
  assert.deepEqual(msis.sent.at(-1), [0xfee02000, 0x42]);

  // A configuration change: the config vector, and the ISR's config bit (set with MSI-X too).
  a.interrupt.config();
  assert.deepEqual(msis.sent.at(-1), [0xfee00000, 0x40]);
  assert.equal(drv.common(C.CONFIG_GENERATION, 1), 1);
  assert.equal(drv.readIsr(), 2);
  assert.equal(drv.readIsr(), 0);
  assert.ok(!intx.level && intx.sets === 0, 'no INTx while MSI-X is enabled');

  // Masking the queue's vector: the message waits in the PBA and goes on unmask.
  drv.sys.write(drv.bars[1]! + 16 + 12, 4, 1);
  q0.addChain([{ readable: 'again' }, { writable: 8 }]);
  drv.notify(0);
  assert.equal(msis.sent.length, 3);
  assert.equal(drv.sys.read(drv.bars[1]! + 0x800, 4), 0b10, 'vector 1 pending');
  drv.sys.write(drv.bars[1]! + 16 + 12, 4, 0);
  assert.deepEqual(msis.sent.at(-1), [0xfee01000, 0x41]);

  // A queue without a vector sends nothing.
  drv.setCommon(C.QUEUE_SELECT, 2, 1);
  drv.setCommon(C.QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
  q1.addChain([{ readable: 'y' }, { writable: 1 }]);
  drv.notify(1);
  assert.equal(q1.takeUsed().length, 1);
  assert.equal(msis.sent.length, 4);
});

test('INTx: without MSI-X a used buffer sets ISR bit 0 and raises INTA#, reading the ISR clears both', () => {
  const { device, drv, ram, intx, lines } = setup();
  const q0 = new MockSplitQueue(ram, 8);
  drv.init([q0, null], { msix: false });
  assert.equal(device.activation!.queues[1]!.size, 0, 'queue 1 not enabled: a disabled queue');
  q0.addChain([{ readable: 'ping' }, { writable: 4 }]);
  drv.notify(0);
  assert.equal(q0.takeUsed().length, 1);
  assert.ok(intx.level);
  assert.deepEqual(lines.map((l) => l.level), [false, false, true, false]);
  assert.ok(drv.cfgRead(PCI_CFG.STATUS, 2) & PCI_STATUS.INTERRUPT);
  assert.equal(drv.readIsr(), 1);
  assert.ok(!intx.level);
  assert.equal(drv.cfgRead(PCI_CFG.STATUS, 2) & PCI_STATUS.INTERRUPT, 0);
  assert.equal(drv.readIsr(), 0);

  device.activation!.interrupt.config();
  assert.ok(intx.level);
  assert.equal(drv.readIsr(), 2);
  assert.ok(!intx.level);
  // Interrupt Disable in the Command register holds INTA# off the bus; the ISR still tells.
  drv.cfgWrite(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER | PCI_COMMAND.INTX_DISABLE);
  device.activation!.interrupt.queue(0);
  assert.ok(!intx.level);
  assert.equal(drv.readIsr(), 1);
});

test('feature negotiation: FEATURES_OK needs VERSION_1 and only offered bits, then the features freeze', () => {
  const { drv, device } = setup();
  const tryFeatures = (f: bigint) => {
    drv.setStatus(0);
    drv.setStatus(S.ACKNOWLEDGE | S.DRIVER);
    drv.writeDriverFeatures(f);
    drv.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    return (drv.status() & S.FEATURES_OK) !== 0;
  };
  assert.ok(!tryFeatures(DEVICE_FEATURES), 'no VERSION_1: a legacy driver');
  assert.ok(!tryFeatures(ALL_FEATURES | (1n << 40n)), 'a bit the device does not offer');
  assert.ok(tryFeatures(1n << VIRTIO_F_VERSION_1));
  drv.writeDriverFeatures(ALL_FEATURES);
  drv.setCommon(C.DRIVER_FEATURE_SELECT, 4, 1);
  assert.equal(drv.common(C.DRIVER_FEATURE, 4), 1, 'frozen at VERSION_1');
  drv.setCommon(C.DEVICE_FEATURE_SELECT, 4, 2);
  assert.equal(drv.common(C.DEVICE_FEATURE, 4), 0, 'no feature bits past 63');
  drv.setStatus(drv.status() | S.DRIVER_OK);
  assert.equal(device.activation!.features, 1n << VIRTIO_F_VERSION_1);
  assert.ok(device.resets >= 3);
});

test('queue registers: out-of-range queues and vectors, frozen once enabled, wrong widths ignored', () => {
  const { drv, ram, device } = setup();
  drv.setCommon(C.QUEUE_SELECT, 2, 2);
  assert.equal(drv.common(C.QUEUE_SELECT, 2), 2);
  assert.equal(drv.common(C.QUEUE_SIZE, 2), 0, 'no queue 2');
  drv.setCommon(C.QUEUE_ENABLE, 2, 1);
  assert.equal(drv.common(C.QUEUE_ENABLE, 2), 0);
  drv.setCommon(C.QUEUE_SELECT, 2, 1);
  assert.equal(drv.common(C.QUEUE_NOTIFY_OFF, 2), 1);
  drv.setCommon(C.QUEUE_MSIX_VECTOR, 2, 3);
  assert.equal(drv.common(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR, 'only vectors 0-2 exist');
  drv.setCommon(C.CONFIG_MSIX_VECTOR, 2, 0x1234);
  assert.equal(drv.common(C.CONFIG_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);
  drv.setCommon(C.QUEUE_SIZE, 4, 2); // a 32-bit write to a 16-bit field
  assert.equal(drv.common(C.QUEUE_SIZE, 2), 8);
  drv.setCommon(C.QUEUE_DESC, 2, 0x1000); // half of a 32-bit half
  assert.equal(drv.common(C.QUEUE_DESC, 4), 0);
  drv.setCommon(C.QUEUE_DESC, 4, 0x1000);
  drv.setCommon(C.QUEUE_DESC + 4, 4, 0x2);
  assert.equal(drv.common(C.QUEUE_DESC, 4), 0x1000);
  assert.equal(drv.common(C.QUEUE_DESC + 4, 4), 0x2);
  drv.setCommon(C.QUEUE_ENABLE, 2, 1);
  drv.setCommon(C.QUEUE_DESC, 4, 0x3000);
  drv.setCommon(C.QUEUE_SIZE, 2, 4);
  drv.setCommon(C.QUEUE_ENABLE, 2, 0);
  assert.equal(drv.common(C.QUEUE_DESC, 4), 0x1000, 'frozen while enabled');
  assert.equal(drv.common(C.QUEUE_SIZE, 2), 8);
  assert.equal(drv.common(C.QUEUE_ENABLE, 2), 1, 'a queue cannot be disabled by writing 0');
  assert.equal(drv.common(0x3c, 4), 0, 'past the fields');

  // Notifications before DRIVER_OK, for queues that do not exist, or of the wrong width go nowhere.
  drv.notify(0);
  const notify = drv.where(VIRTIO_PCI_CAP.NOTIFY_CFG);
  drv.sys.write(notify + 8, 2, 2);
  drv.sys.write(notify + 2, 2, 0);
  drv.sys.write(notify, 1, 0);
  assert.deepEqual(device.notified, []);
  const q0 = new MockSplitQueue(ram, 8);
  drv.init([q0], { msix: false });
  drv.sys.write(notify + 8, 2, 2);
  drv.sys.write(notify + 4, 2, 1); // queue 1 exists but is not enabled
  drv.sys.write(notify, 4, 0); // a 32-bit notification (VIRTIO_F_NOTIFICATION_DATA style) is fine
  assert.deepEqual(device.notified, [0]);
});

test('DRIVER_OK with a bad queue layout, or without FEATURES_OK, sets DEVICE_NEEDS_RESET; reset restores everything', () => {
  const { drv, ram, device, intx, transport } = setup();
  const q = new MockSplitQueue(ram, 8);
  drv.setStatus(S.ACKNOWLEDGE | S.DRIVER);
  drv.writeDriverFeatures(ALL_FEATURES);
  drv.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  drv.setCommon(C.QUEUE_SELECT, 2, 0);
  drv.setCommon(C.QUEUE_SIZE, 2, 6); // not a power of 2
  for (const [off, a] of [[C.QUEUE_DESC, q.desc], [C.QUEUE_DRIVER, q.driver], [C.QUEUE_DEVICE, q.device]] as const) {
    drv.setCommon(off, 4, a);
  }
  drv.setCommon(C.QUEUE_ENABLE, 2, 1);
  drv.setStatus(drv.status() | S.DRIVER_OK);
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET);
  assert.match(transport.needsResetReason!, /queue 0: queue size 6/);
  assert.equal(device.activation, null);
  assert.equal(drv.readIsr(), 2, 'a configuration change tells the driver');
  drv.setStatus(0xff & ~S.DEVICE_NEEDS_RESET);
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET, 'the driver cannot clear it');

  drv.setStatus(0);
  assert.equal(drv.status(), 0);
  assert.equal(transport.needsResetReason, null);
  drv.setCommon(C.QUEUE_SELECT, 2, 0);
  assert.equal(drv.common(C.QUEUE_SIZE, 2), 16);
  assert.equal(drv.common(C.QUEUE_ENABLE, 2), 0);
  assert.equal(drv.common(C.QUEUE_DESC, 4), 0);
  assert.equal(drv.common(C.QUEUE_MSIX_VECTOR, 2), VIRTIO_MSI_NO_VECTOR);

  drv.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET);
  assert.match(transport.needsResetReason!, /without FEATURES_OK/);
  assert.ok(intx.level);

  // A live device reset: the old queues stop touching memory and interrupts go nowhere.
  drv.init([q], { msix: false });
  drv.readIsr();
  const old = device.activation!;
  drv.setStatus(0);
  assert.equal(device.activation, null);
  q.addChain([{ readable: 'z' }, { writable: 1 }]);
  assert.equal(old.queues[0]!.pop(), null, 'detached');
  old.interrupt.queue(0);
  old.interrupt.config();
  old.needsReset();
  assert.ok(!intx.level);
  assert.equal(drv.status(), 0);
});

test('device configuration window and the configuration generation', () => {
  const { drv, device } = setup();
  const dev = drv.where(VIRTIO_PCI_CAP.DEVICE_CFG);
  assert.equal(drv.sys.read(dev, 4), 0x04030201);
  assert.equal(drv.sys.read(dev + 6, 2), 0x0807);
  assert.equal(drv.sys.read(dev + 8, 4), 0xffffffff, 'past the device\'s 8 bytes');
  drv.sys.write(dev + 4, 2, 0xbeef);
  drv.sys.write(dev + 8, 4, 0x12345678);
  assert.deepEqual([...device.cfg], [1, 2, 3, 4, 0xef, 0xbe, 7, 8]);
  drv.init([], { msix: false });
  const gen = drv.common(C.CONFIG_GENERATION, 1);
  device.activation!.interrupt.config();
  assert.equal(drv.common(C.CONFIG_GENERATION, 1), gen + 1);
});

test('PCI_CFG capability: a window through config space onto the BARs', () => {
  const { drv, device } = setup();
  const cap = drv.caps.find((c) => c.type === VIRTIO_PCI_CAP.PCI_CFG)!.at;
  const access = (bar: number, offset: number, length: number) => {
    drv.cfgWrite(cap + 4, 1, bar);
    drv.cfgWrite(cap + 8, 4, offset);
    drv.cfgWrite(cap + 12, 4, length);
  };
  access(4, 0x2000, 4);
  assert.equal(drv.cfgRead(cap + 16, 4), 0x04030201, 'device config through the window');
  access(4, C.DEVICE_STATUS, 1);
  drv.cfgWrite(cap + 16, 4, S.ACKNOWLEDGE);
  assert.equal(drv.status(), S.ACKNOWLEDGE);
  assert.equal(drv.cfgRead(cap + 16, 1), S.ACKNOWLEDGE);
  access(4, 0x2004, 2);
  drv.cfgWrite(cap + 16, 4, 0xffffbeef);
  assert.deepEqual([...device.cfg.subarray(4, 6)], [0xef, 0xbe], 'only cap.length bytes are written');
  access(1, 0, 4);
  drv.cfgWrite(cap + 16, 4, 0xfee00000);
  assert.equal(drv.sys.read(drv.bars[1]!, 4), 0xfee00000, 'the MSI-X table in BAR 1');

  // Invalid windows do nothing: a length of 3, a misaligned offset, past the BAR, a BAR that does not exist.
  for (const [bar, offset, length] of [[4, 0x2000, 3], [4, 0x2001, 2], [4, 0x4000, 4], [4, 0xfffffffc, 4], [2, 0, 4], [200, 0, 4]]) {
    access(bar!, offset!, length!);
    drv.cfgWrite(cap + 16, 4, 0);
    drv.cfgRead(cap + 16, 4);
  }
  assert.deepEqual([...device.cfg], [1, 2, 3, 4, 0xef, 0xbe, 7, 8]);
  assert.equal(drv.status(), S.ACKNOWLEDGE);
});
