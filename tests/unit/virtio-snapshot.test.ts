/**
 * Snapshots of virtio devices (saveState / prepareLoad of the transports, the core and the
 * devices): a state saved on one transport loads into a fresh one over the same guest RAM,
 * which goes on serving the rings from where the first left off, on virtio-mmio and on
 * virtio-pci (BARs, MSI-X, INTx); the load itself sends no interrupt. Malformed or foreign
 * states are refused with a SnapshotError and leave the target as it was. Device state:
 * virtio-serial's ports and waiting control messages, virtio-net's MAC. The virt machine
 * refuses a snapshot of other virtio devices, or with a bad virtio field, before it changes
 * anything, and refuses to save a machine with virtio-9p.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { PCI_CFG, PCI_COMMAND, type MsiTarget } from '../../src/hw/pci/pci.js';
import { GpexHost, type GpexLayout } from '../../src/hw/pci/pci-host-gpex.js';
import { VirtioMmioTransport, VIRTIO_MMIO } from '../../src/hw/virtio/virtio-mmio.js';
import { VirtioPciTransport, VIRTIO_PCI_COMMON as C, VIRTIO_PCI_LAYOUT as L } from '../../src/hw/virtio/virtio-pci.js';
import { VIRTIO_STATUS as S, VIRTIO_F_VERSION_1 } from '../../src/hw/virtio/virtio.js';
import { VirtioRng } from '../../src/hw/virtio/virtio-rng.js';
import { VirtioNet } from '../../src/hw/virtio/virtio-net.js';
import { VirtioSerial, VIRTIO_CONSOLE as E } from '../../src/hw/virtio/virtio-console.js';
import { Chardev } from '../../src/chardev/chardev.js';
import { NetBackendBase } from '../../src/net/net.js';
import { SnapshotError, type DeviceState } from '../../src/migration/vmstate.js';
import { VirtMachine } from '../../src/hw/riscv/virt.js';
import { loadVirtState, saveVirtState } from '../../src/hw/riscv/virt-snapshot.js';
import { NullChardev } from '../../src/chardev/null.js';
import { Virtio9p } from '../../src/hw/virtio/virtio-9p.js';
import { Fsdev } from '../../src/fsdev/fsdev.js';
import type { VmOptions } from '../../src/system/options.js';
import type { PlannedDevice } from '../../src/system/backends.js';
import { FakeGuestRam, MmioDriver, MockSplitQueue } from './virtio-driver-mock.js';
import { RecordingLine as Line } from './device-helpers.js';

/** A state as it comes back from a snapshot file (JSON). */
const roundTrip = (s: DeviceState): DeviceState => JSON.parse(JSON.stringify(s)) as DeviceState;
const microtasks = () => new Promise((r) => setImmediate(r));
const isSnapshotError = (re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof SnapshotError, String(e));
  assert.match(e.message, re);
  return true;
};

/** Posts one 16-byte entropy request. */
const request = (q: MockSplitQueue) => q.addChain([{ writable: 16 }]);

function mmioRng(ram: FakeGuestRam) {
  const irq = new Line();
  const t = new VirtioMmioTransport(new VirtioRng(), ram.mem, irq);
  return { irq, t, d: new MmioDriver(t) };
}

test('virtio-mmio: a saved transport loads into a fresh one, which serves the ring from where the first left off', async () => {
  const ram = new FakeGuestRam();
  const q = new MockSplitQueue(ram, 4);
  const a = mmioRng(ram);
  a.d.init([q], 1n << VIRTIO_F_VERSION_1); // no EVENT_IDX: every used buffer interrupts
  // Ten requests through a queue of 4: the indices wrap around the ring.
  for (let i = 0; i < 10; i++) {
    request(q);
    a.d.notify(0);
    assert.equal(q.takeUsed().length, 1);
  }
  a.d.ackInterrupt();
  // One more served but not acknowledged, and one the driver posted without notifying yet.
  request(q);
  a.d.notify(0);
  assert.equal(q.takeUsed().length, 1);
  const pending = request(q);
  a.d.write(VIRTIO_MMIO.QUEUE_SEL, 0);
  const saved = roundTrip(a.t.saveState());

  const b = mmioRng(ram);
  const restore = b.t.prepareLoad(saved);
  restore();
  assert.equal(b.irq.sets, 0, 'the load drives no interrupt');
  assert.equal(q.usedIdx(), 11, 'nothing served during the load');
  assert.equal(b.d.status(), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(b.d.read(VIRTIO_MMIO.INTERRUPT_STATUS), 1, 'the unacknowledged used buffer');
  assert.equal(b.d.read(VIRTIO_MMIO.QUEUE_READY), 1);

  // Once the load is over the device looks at its queue: the request posted before the save.
  await microtasks();
  assert.deepEqual(q.takeUsed(), [{ id: pending.head, len: 16 }]);
  assert.equal(b.d.status() & S.DEVICE_NEEDS_RESET, 0, 'the ring indices went on from 11, not 0');
  assert.equal(b.irq.level, true);
  b.d.ackInterrupt();
  assert.equal(b.irq.level, false);
  const next = request(q);
  b.d.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: next.head, len: 16 }]);
  assert.equal(b.irq.level, true);
});

test('virtio-mmio: a device the driver has not started loads as it was, and starts when the driver sets DRIVER_OK', () => {
  const ram = new FakeGuestRam();
  const q = new MockSplitQueue(ram, 8);
  const a = mmioRng(ram);
  a.d.write(VIRTIO_MMIO.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  a.d.writeDriverFeatures(1n << VIRTIO_F_VERSION_1);
  a.d.write(VIRTIO_MMIO.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  a.d.setupQueue(0, q);
  const b = mmioRng(ram);
  b.t.prepareLoad(roundTrip(a.t.saveState()))();
  b.d.write(VIRTIO_MMIO.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  const c = request(q);
  b.d.notify(0);
  assert.deepEqual(q.takeUsed(), [{ id: c.head, len: 16 }]);
});

test('virtio-mmio: malformed or foreign states are refused and leave the transport as it was', async () => {
  const ram = new FakeGuestRam();
  const q = new MockSplitQueue(ram, 8);
  const a = mmioRng(ram);
  a.d.init([q], 1n << VIRTIO_F_VERSION_1);
  request(q);
  a.d.notify(0);
  q.takeUsed();
  const good = roundTrip(a.t.saveState());
  const target = mmioRng(ram);
  const tq = new MockSplitQueue(ram, 8);
  target.d.init([tq], 1n << VIRTIO_F_VERSION_1);
  const before = roundTrip(target.t.saveState());

  const outside = [...good.queueAddr as number[]];
  outside[0] = ram.end; // the descriptor table past the end of RAM
  const net = new VirtioMmioTransport(new VirtioNet(new (class extends NetBackendBase {
    send(): void {}
    close(): void {}
  })()), ram.mem, new Line());
  for (const [what, s, re] of [
    ['status', { ...good, status: 256 }, /bad field 'status'/],
    ['a queue too many', { ...good, queueSize: [8, 8] }, /bad field 'queueSize'/],
    ['features', { ...good, driverFeatures: String(1n << 40n | 1n << VIRTIO_F_VERSION_1) }, /features this device does not offer/],
    ['not a number', { ...good, driverFeatures: 'lots' }, /bad field 'driverFeatures'/],
    ['ring outside RAM', { ...good, queueAddr: outside }, /queue 0: descriptor table .* is not in RAM/],
    ['held buffers', { ...good, nextAvail: [3] }, /queue 0 holds buffers/],
    ['live without DRIVER_OK', { ...good, status: S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK }, /bad field 'live'/],
    ['needs reset without a reason', { ...good, status: (good.status as number) | S.DEVICE_NEEDS_RESET }, /bad field 'needsReset'/],
    ['no device state', { ...good, device: 1 }, /bad field 'device'/],
    ['interrupt status', { ...good, interruptStatus: 4 }, /bad field 'interruptStatus'/],
    ['another device', roundTrip(net.saveState()), /bad field/],
  ] as const) {
    assert.throws(() => target.t.prepareLoad(s as DeviceState), isSnapshotError(re), what);
  }
  await microtasks();
  assert.deepEqual(roundTrip(target.t.saveState()), before, 'untouched');
  assert.equal(target.irq.sets, 0);
  const c = request(tq);
  target.d.notify(0);
  assert.deepEqual(tq.takeUsed(), [{ id: c.head, len: 16 }], 'and still serving');
});

const LAYOUT: GpexLayout = {
  ecam: { base: 0x30000000, size: 0x10000000 },
  pio: { base: 0x3000000, size: 0x10000 },
  mmio32: { base: 0x40000000, size: 0x40000000 },
  mmio64: { base: 0x4_0000_0000, size: 0x4_0000_0000 },
};
const SLOT = 3;
const MSIX_BAR = 0x4000_0000;
const VIRTIO_BAR = 0x4_0000_0000;

class Msis implements MsiTarget {
  sent: [number, number][] = [];
  send(addr: number, data: number): void {
    this.sent.push([addr, data]);
  }
}

/** A virtio-rng function on a GPEX bus, and a driver that programs it as Linux does (BARs placed by hand). */
function pciRng(ram: FakeGuestRam) {
  const lines = [new Line(), new Line(), new Line(), new Line()];
  const host = new GpexHost(lines);
  const sys = new AddressSpace();
  for (const r of host.regions(LAYOUT)) sys.addRegion(r);
  const msis = new Msis();
  const t = new VirtioPciTransport(new VirtioRng(), { mem: ram.mem, msi: msis });
  host.bus.plug(t, SLOT);
  const cfg = (off: number, size: number, v?: number) => {
    const a = LAYOUT.ecam.base + (SLOT << 15) + off;
    if (v === undefined) return sys.read(a, size);
    sys.write(a, size, v);
    return 0;
  };
  const common = (off: number, size: number, v?: number) => {
    if (v === undefined) return sys.read(VIRTIO_BAR + L.COMMON + off, size);
    sys.write(VIRTIO_BAR + L.COMMON + off, size, v);
    return 0;
  };
  const start = (q: MockSplitQueue, msix: boolean) => {
    cfg(PCI_CFG.BAR0 + 4 * L.MSIX_BAR, 4, MSIX_BAR);
    cfg(PCI_CFG.BAR0 + 4 * L.BAR, 4, VIRTIO_BAR % 2 ** 32);
    cfg(PCI_CFG.BAR0 + 4 * L.BAR + 4, 4, VIRTIO_BAR / 2 ** 32);
    cfg(PCI_CFG.COMMAND, 2, PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER);
    common(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER);
    common(C.DRIVER_FEATURE_SELECT, 4, 1);
    common(C.DRIVER_FEATURE, 4, 1); // VERSION_1
    common(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    if (msix) {
      cfg(t.msix.offset + 2, 2, 0x8000);
      for (let v = 0; v < 2; v++) {
        sys.write(MSIX_BAR + 16 * v, 4, 0xfee00000);
        sys.write(MSIX_BAR + 16 * v + 8, 4, 0x40 + v);
        sys.write(MSIX_BAR + 16 * v + 12, 4, 0);
      }
      common(C.CONFIG_MSIX_VECTOR, 2, 0);
    }
    common(C.QUEUE_SELECT, 2, 0);
    common(C.QUEUE_SIZE, 2, q.size);
    for (const [off, a] of [[C.QUEUE_DESC, q.desc], [C.QUEUE_DRIVER, q.driver], [C.QUEUE_DEVICE, q.device]] as const) common(off, 4, a);
    if (msix) common(C.QUEUE_MSIX_VECTOR, 2, 1);
    common(C.QUEUE_ENABLE, 2, 1);
    common(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  };
  const notify = () => sys.write(VIRTIO_BAR + L.NOTIFY, 2, 0);
  const readIsr = () => sys.read(VIRTIO_BAR + L.ISR, 1);
  return { lines, host, sys, msis, t, cfg, common, start, notify, readIsr };
}

test('virtio-pci: BARs, MSI-X vectors and the queue come back on a fresh bus; the load sends no message', async () => {
  const ram = new FakeGuestRam();
  const q = new MockSplitQueue(ram, 8);
  const a = pciRng(ram);
  a.start(q, true);
  for (let i = 0; i < 3; i++) {
    request(q);
    a.notify();
  }
  assert.equal(q.takeUsed().length, 3);
  assert.deepEqual(a.msis.sent, [[0xfee00000, 0x41], [0xfee00000, 0x41], [0xfee00000, 0x41]]);
  const pending = request(q);
  const hostState = roundTrip(a.host.bridge.saveState());
  const saved = roundTrip(a.t.saveState());

  const b = pciRng(ram);
  const restore = [b.host.bridge.prepareLoad(hostState), b.t.prepareLoad(saved)];
  assert.equal(b.common(C.DEVICE_STATUS, 1), 0xff, 'nothing there before the load: the BAR is not mapped');
  for (const r of restore) r();
  assert.deepEqual(b.msis.sent, []);
  assert.equal(b.common(C.DEVICE_STATUS, 1), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK, 'the BAR decodes where it was');
  assert.equal(b.cfg(PCI_CFG.COMMAND, 2), PCI_COMMAND.MEMORY | PCI_COMMAND.BUS_MASTER);
  assert.equal(b.common(C.CONFIG_MSIX_VECTOR, 2), 0);
  assert.equal(b.common(C.QUEUE_MSIX_VECTOR, 2), 1);
  assert.equal(b.common(C.QUEUE_ENABLE, 2), 1);
  assert.equal(b.sys.read(MSIX_BAR + 16 + 8, 4), 0x41, 'the MSI-X table');

  await microtasks();
  assert.deepEqual(q.takeUsed(), [{ id: pending.head, len: 16 }]);
  assert.deepEqual(b.msis.sent, [[0xfee00000, 0x41]]);
  const next = request(q);
  b.notify();
  assert.deepEqual(q.takeUsed(), [{ id: next.head, len: 16 }]);

  // Another device's function state: its identity (device ID) is read-only.
  const other = new VirtioPciTransport(new VirtioNet(new (class extends NetBackendBase {
    send(): void {}
    close(): void {}
  })()), { mem: ram.mem, msi: new Msis() });
  assert.throws(() => other.prepareLoad(saved), isSnapshotError(/read-only config byte 0x2 differs/));
});

test('virtio-pci: an INTx level raised before the save is restored without driving the line, and clears as usual', () => {
  const ram = new FakeGuestRam();
  const q = new MockSplitQueue(ram, 8);
  const a = pciRng(ram);
  a.start(q, false);
  request(q);
  a.notify();
  const line = a.lines[(SLOT + 1 - 1) % 4]!;
  assert.equal(line.level, true, 'INTA# asserted until the ISR is read');
  const hostState = roundTrip(a.host.bridge.saveState());
  const saved = roundTrip(a.t.saveState());

  const b = pciRng(ram);
  b.host.bridge.prepareLoad(hostState)();
  b.t.prepareLoad(saved)();
  const line2 = b.lines[(SLOT + 1 - 1) % 4]!;
  assert.equal(line2.sets, 0, 'the interrupt controller has its own saved view of the line');
  // The bus counted the level: reading the ISR takes the line down.
  assert.equal(b.readIsr(), 1);
  assert.deepEqual([line2.sets, line2.level], [1, false]);
  request(q);
  b.notify();
  assert.equal(line2.level, true);
});

/** A chardev whose host side is connected or not. */
class PortChardev extends Chardev {
  out = '';
  constructor(public up: boolean) {
    super();
  }
  override get connected(): boolean {
    return this.up;
  }
  write(d: Uint8Array): void {
    this.out += Buffer.from(d).toString();
  }
}

/** virtio-serial with max_ports 2 (MULTIPORT) on virtio-mmio: port 0 a console, port 1 named. */
function serial(ram: FakeGuestRam, hostUp: boolean) {
  const chr = [new PortChardev(true), new PortChardev(hostUp)];
  const dev = new VirtioSerial({ maxPorts: 2, ports: [{ id: 0, chr: chr[0]!, console: true }, { id: 1, chr: chr[1]!, console: false, name: 'p1' }] });
  const t = new VirtioMmioTransport(dev, ram.mem, new Line());
  return { chr, t, d: new MmioDriver(t) };
}

test('virtio-serial: port states and the control messages waiting for buffers come back; a host side that changed is announced', async () => {
  const ram = new FakeGuestRam();
  const qs = Array.from({ length: 6 }, () => new MockSplitQueue(ram, 8));
  const a = serial(ram, true);
  a.d.init(qs);
  const ctl = (id: number, event: number, value: number) => {
    const m = Buffer.alloc(8);
    m.writeUInt32LE(id, 0);
    m.writeUInt16LE(event, 4);
    m.writeUInt16LE(value, 6);
    qs[3]!.addChain([{ readable: m }]);
  };
  ctl(0xffffffff, E.DEVICE_READY, 1);
  ctl(1, E.PORT_READY, 1);
  ctl(1, E.PORT_OPEN, 1);
  a.d.notify(3);
  const saved = roundTrip(a.t.saveState());

  // The new machine's port 1 has nobody on its host side.
  const b = serial(ram, false);
  b.t.prepareLoad(saved)();
  await microtasks();
  const ctlBufs = Array.from({ length: 6 }, () => qs[2]!.addChain([{ writable: 64 }]));
  b.d.notify(2);
  const got = qs[2]!.takeUsed().map((u) => {
    const m = Buffer.from(qs[2]!.readBuffer(ctlBufs.find((c) => c.head === u.id)!.buffers[0]!, u.len));
    return [m.readUInt32LE(0), m.readUInt16LE(4), m.readUInt16LE(6), m.subarray(8).toString()];
  });
  assert.deepEqual(got, [
    [0, E.DEVICE_ADD, 1, ''], [1, E.DEVICE_ADD, 1, ''], // waiting since DEVICE_READY
    [1, E.PORT_NAME, 1, 'p1\0'], [1, E.PORT_OPEN, 1, ''], // since PORT_READY
    [1, E.PORT_OPEN, 0, ''], // the host side went away with the old machine
  ]);
  // Port 1 is open on the guest side: what the guest writes goes to the chardev.
  qs[5]!.addChain([{ readable: 'after-load' }]);
  b.chr[1]!.up = true;
  b.d.notify(5);
  assert.equal(b.chr[1]!.out, 'after-load');

  const other = new VirtioMmioTransport(new VirtioSerial({ maxPorts: 2, ports: [{ id: 1, chr: null, console: false }] }), ram.mem, new Line());
  assert.throws(() => other.prepareLoad(saved), isSnapshotError(/virtio-serial ports .* are not this machine's/));
});

test('virtio-net: the saved MAC comes back, and the back end is told the guest was restored', () => {
  let restored = 0;
  const backend = () => new (class extends NetBackendBase {
    send(): void {}
    close(): void {}
    guestRestored(): void {
      restored++;
    }
  })();
  const a = new VirtioNet(backend(), Uint8Array.of(2, 0, 0, 0, 0, 7));
  const b = new VirtioNet(backend());
  b.prepareLoad(roundTrip(a.saveState()))(null);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => b.readConfig(i, 1)), [2, 0, 0, 0, 0, 7]);
  assert.equal(b.readConfig(6, 2), 1, 'link up');
  assert.equal(restored, 1);
  assert.throws(() => b.prepareLoad({ mac: [1, 2, 3], status: 1 }), isSnapshotError(/bad field 'mac'/));
});

const vmOpts: VmOptions = {
  machine: 'virt', memBytes: 64 * 2 ** 20, smp: 1, bios: { kind: 'none' }, serial: { kind: 'null' },
  nographic: true, noReboot: false, accel: { names: ['tcg'], thread: 'single' }, drives: [], netdevs: [], devices: [],
};
const virt = (devices: PlannedDevice[]) => new VirtMachine(vmOpts, new NullChardev(), devices);

/** A virt machine state with its JSON header changed by `edit`. */
function editHeader(state: Uint8Array, edit: (h: { virtio: Record<string, DeviceState> }) => void): Uint8Array {
  const len = Buffer.from(state).readUInt32LE(0);
  const h = JSON.parse(Buffer.from(state.subarray(4, 4 + len)).toString()) as { virtio: Record<string, DeviceState> };
  edit(h);
  const json = Buffer.from(JSON.stringify(h));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length);
  return Buffer.concat([head, json, state.subarray(4 + len)]);
}

test('virt: a snapshot of other virtio devices, or with a bad virtio field, is refused before the machine changes', () => {
  const saved = virt([{ device: new VirtioRng(), pci: false }]);
  saved.cpus.ram[0] = 0x55;
  const state = saveVirtState(saved);
  assert.deepEqual(Object.keys(JSON.parse(Buffer.from(state.subarray(4, 4 + Buffer.from(state).readUInt32LE(0))).toString()).virtio as object),
    ['virtio-rng-device@10001000']);

  const onPci = virt([{ device: new VirtioRng(), pci: true }]);
  onPci.cpus.ram[0] = 0xaa;
  assert.throws(() => loadVirtState(onPci, 's', state),
    isSnapshotError(/^snapshot 's' was taken with virtio devices virtio-rng-device@10001000; this machine has virtio-rng-pci@00:01\.0$/));
  assert.throws(() => loadVirtState(virt([]), 's', state), isSnapshotError(/this machine has none$/));
  assert.equal(onPci.cpus.ram[0], 0xaa, 'RAM untouched');

  const same = virt([{ device: new VirtioRng(), pci: false }]);
  same.cpus.ram[0] = 0xaa;
  const bad = editHeader(state, (h) => { h.virtio['virtio-rng-device@10001000']!.queueSelect = -1; });
  assert.throws(() => loadVirtState(same, 's', bad), isSnapshotError(/^snapshot 's': virtio-rng-device@10001000: bad field 'queueSelect'$/));
  assert.equal(same.cpus.ram[0], 0xaa, 'RAM untouched');
  loadVirtState(same, 's', state);
  assert.equal(same.cpus.ram[0], 0x55);
});

test('virt: a machine with virtio-9p is not saved', async () => {
  const fsdev = await Fsdev.open({ id: 'fs0', path: tmpdir(), securityModel: 'none', readOnly: false });
  const m = virt([{ device: new VirtioRng(), pci: false }, { device: new Virtio9p(fsdev, 'host0'), pci: true }]);
  assert.throws(() => saveVirtState(m, false), isSnapshotError(/^snapshots of machines with virtio-9p are not supported/));
  fsdev.close();
});
