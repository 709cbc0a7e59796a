/**
 * Tests for the virtio-mmio transport (src/hw/virtio/virtio-mmio.ts, Virtio 1.2 section
 * 4.2): identification registers, feature negotiation, the driver initialization
 * sequence end to end, queue setup checks, interrupts, reset and DEVICE_NEEDS_RESET.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  VIRTIO_STATUS as S, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC,
  type VirtioActivation, type VirtioDevice,
} from '../../src/hw/virtio/virtio.js';
import { VirtioMmioTransport, VirtioMmioSlot, VIRTIO_MMIO as R, VIRTIO_MMIO_INT } from '../../src/hw/virtio/virtio-mmio.js';
import { VirtioRng } from '../../src/hw/virtio/virtio-rng.js';
import { VIRTQ_DESC_F_NEXT } from '../../src/hw/virtio/virtqueue.js';
import { RecordingLine } from './device-helpers.js';
import { FakeGuestRam, MockSplitQueue, MmioDriver } from './virtio-driver-mock.js';

const TRANSPORT = (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_F_EVENT_IDX) | (1n << VIRTIO_F_INDIRECT_DESC);

/** A device that records what the transport does to it; 2 queues, feature bit 5, 8 bytes of config. */
class SpyDevice implements VirtioDevice {
  readonly deviceId = 42;
  readonly queueMaxSizes = [16, 8];
  readonly features = 1n << 5n;
  readonly configSize = 8;
  config = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  activation: VirtioActivation | null = null;
  notified: number[] = [];
  resets = 0;
  configWrites: [number, number, number][] = [];
  readConfig(offset: number, size: number): number {
    return Buffer.from(this.config).readUIntLE(offset, size);
  }
  writeConfig(offset: number, size: number, value: number): void {
    this.configWrites.push([offset, size, value]);
  }
  activate(a: VirtioActivation): void {
    this.activation = a;
  }
  queueNotify(index: number): void {
    this.notified.push(index);
  }
  reset(): void {
    this.resets++;
    this.activation = null;
  }
}

function setup<D extends VirtioDevice>(device: D) {
  const ram = new FakeGuestRam(1 << 16);
  const irq = new RecordingLine();
  const t = new VirtioMmioTransport(device, ram.mem, irq);
  return { ram, irq, t, drv: new MmioDriver(t), device };
}

test('an empty slot identifies itself with DeviceID 0 and ignores writes', () => {
  for (const slot of [new VirtioMmioSlot(), new VirtioMmioTransport(null, new FakeGuestRam(4096).mem, new RecordingLine())]) {
    const drv = new MmioDriver(slot);
    assert.equal(drv.read(R.MAGIC_VALUE), 0x74726976);
    assert.equal(drv.read(R.VERSION), 2);
    assert.equal(drv.read(R.DEVICE_ID), 0);
    assert.equal(drv.read(R.VENDOR_ID), 0x554d4551);
    drv.write(R.STATUS, S.ACKNOWLEDGE);
    assert.equal(drv.status(), 0);
    assert.equal(drv.deviceFeatures(), 0n);
    assert.equal(drv.read(R.QUEUE_NUM_MAX), 0);
    assert.equal(slot.read(R.CONFIG, 4), 0);
  }
});

test('identification, features offered (device bits plus VERSION_1, EVENT_IDX, INDIRECT_DESC), queue sizes', () => {
  const { drv, t } = setup(new SpyDevice());
  assert.equal(drv.read(R.DEVICE_ID), 42);
  assert.equal(drv.deviceFeatures(), TRANSPORT | (1n << 5n));
  drv.write(R.DEVICE_FEATURES_SEL, 2);
  assert.equal(drv.read(R.DEVICE_FEATURES), 0);
  for (const [sel, max] of [[0, 16], [1, 8], [2, 0], [0xffffffff, 0]]) {
    drv.write(R.QUEUE_SEL, sel!);
    assert.equal(drv.read(R.QUEUE_NUM_MAX), max);
    assert.equal(drv.read(R.QUEUE_READY), 0);
  }
  // No shared memory regions.
  assert.equal(drv.read(R.SHM_LEN_LOW), 0xffffffff);
  assert.equal(drv.read(R.SHM_LEN_HIGH), 0xffffffff);
  // Only aligned 32-bit register accesses count.
  assert.equal(t.read(R.MAGIC_VALUE, 2), 0);
  assert.equal(t.read(R.MAGIC_VALUE + 1, 4), 0);
});

test('FEATURES_OK is refused for features not offered and without VERSION_1; features freeze once accepted', () => {
  const { drv, device } = setup(new SpyDevice());
  const base = S.ACKNOWLEDGE | S.DRIVER;
  drv.write(R.STATUS, base);
  drv.writeDriverFeatures(TRANSPORT | (1n << 6n));
  drv.write(R.STATUS, base | S.FEATURES_OK);
  assert.equal(drv.status(), base, 'bit 6 was not offered');
  drv.writeDriverFeatures(1n << 5n);
  drv.write(R.STATUS, base | S.FEATURES_OK);
  assert.equal(drv.status(), base, 'VERSION_1 is required');
  drv.writeDriverFeatures((1n << VIRTIO_F_VERSION_1) | (1n << 5n));
  drv.write(R.STATUS, base | S.FEATURES_OK);
  assert.equal(drv.status(), base | S.FEATURES_OK);
  drv.writeDriverFeatures(TRANSPORT | (1n << 6n));
  // The earlier features stay: activate and look.
  drv.write(R.STATUS, base | S.FEATURES_OK | S.DRIVER_OK);
  assert.equal(device.activation!.features, (1n << VIRTIO_F_VERSION_1) | (1n << 5n));
});

test('the driver initialization sequence end to end: rng request, interrupt, acknowledgement', () => {
  const { ram, irq, drv } = setup(new VirtioRng());
  const q = new MockSplitQueue(ram, 8);
  drv.init([q]);
  assert.equal(drv.status(), S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  drv.write(R.QUEUE_SEL, 0);
  assert.equal(drv.read(R.QUEUE_READY), 1);
  const c = q.addChain([{ writable: 32 }]);
  assert.equal(irq.level, false);
  drv.notify(0);
  assert.equal(irq.sets, 1);
  assert.deepEqual(q.takeUsed(), [{ id: c.head, len: 32 }]);
  assert.notDeepEqual([...q.readBuffer(c.buffers[0]!)], new Array(32).fill(0));
  assert.equal(irq.level, true);
  assert.equal(drv.read(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT.VRING);
  drv.write(R.INTERRUPT_ACK, VIRTIO_MMIO_INT.CONFIG);
  assert.equal(irq.level, true, 'acknowledging another bit leaves the used buffer bit');
  // Another used buffer before the acknowledgement asserts the line again (an edge for edge-triggered consumers).
  q.setUsedEvent(1); // EVENT_IDX was negotiated: ask for the next one
  q.addChain([{ writable: 8 }]);
  drv.notify(0);
  assert.equal(irq.sets, 2);
  assert.equal(drv.ackInterrupt(), VIRTIO_MMIO_INT.VRING);
  assert.equal(irq.level, false);
  assert.equal(drv.read(R.INTERRUPT_STATUS), 0);
});

test('queues left disabled are handed to the device as empty queues of size 0', () => {
  const { ram, drv, device } = setup(new SpyDevice());
  drv.init([null, new MockSplitQueue(ram, 8)]);
  const a = device.activation!;
  assert.equal(a.mem, ram.mem);
  assert.deepEqual(a.queues.map((q) => [q.index, q.size]), [[0, 0], [1, 8]]);
  assert.equal(a.queues[0]!.pop(), null);
  drv.notify(1);
  drv.notify(0);
  drv.notify(7);
  assert.deepEqual(device.notified, [1], 'notifications only for enabled queues');
});

test('queue registers are frozen while the queue is enabled and once DRIVER_OK is set', () => {
  const { ram, drv, device } = setup(new SpyDevice());
  const q0 = new MockSplitQueue(ram, 16);
  drv.write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
  drv.writeDriverFeatures(TRANSPORT);
  drv.write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  drv.setupQueue(0, q0);
  drv.write(R.QUEUE_NUM, 3); // ignored: queue 0 is ready
  drv.write(R.QUEUE_DESC_LOW, 0x1234);
  drv.write(R.STATUS, drv.status() | S.DRIVER_OK);
  drv.write(R.QUEUE_SEL, 1);
  drv.write(R.QUEUE_READY, 1); // ignored: the device is live
  assert.equal(drv.read(R.QUEUE_READY), 0);
  assert.equal(drv.status() & S.DEVICE_NEEDS_RESET, 0);
  assert.equal(device.activation!.queues[0]!.size, 16);
  assert.equal(device.activation!.queues[1]!.size, 0);
});

test('bad queue setups at DRIVER_OK: DEVICE_NEEDS_RESET with a configuration interrupt, no activation', () => {
  const cases: [string, (q: MockSplitQueue, drv: MmioDriver) => void, RegExp][] = [
    ['size not a power of 2', (_q, drv) => drv.write(R.QUEUE_NUM, 12), /size 12/],
    ['size above QueueNumMax', (_q, drv) => drv.write(R.QUEUE_NUM, 32), /size 32/],
    ['size 0', (_q, drv) => drv.write(R.QUEUE_NUM, 0), /size 0/],
    ['misaligned descriptor table', (q, drv) => drv.write(R.QUEUE_DESC_LOW, q.desc + 4), /descriptor table .* aligned/],
    ['used ring outside RAM', (_q, drv) => drv.write(R.QUEUE_DEVICE_LOW, 0x100), /used ring .* not in RAM/],
    ['available ring above 4 GiB', (_q, drv) => drv.write(R.QUEUE_DRIVER_HIGH, 1), /available ring .* not in RAM/],
  ];
  for (const [name, spoil, reason] of cases) {
    const { ram, irq, drv, t, device } = setup(new SpyDevice());
    const q = new MockSplitQueue(ram, 16);
    drv.write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
    drv.writeDriverFeatures(TRANSPORT);
    drv.write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    drv.write(R.QUEUE_SEL, 0);
    drv.setupQueue(0, q);
    drv.write(R.QUEUE_READY, 0);
    spoil(q, drv);
    drv.write(R.QUEUE_READY, 1);
    const gen = drv.read(R.CONFIG_GENERATION);
    drv.write(R.STATUS, drv.status() | S.DRIVER_OK);
    assert.equal(device.activation, null, name);
    assert.ok(drv.status() & S.DEVICE_NEEDS_RESET, name);
    assert.match(t.needsResetReason!, reason, name);
    assert.equal(drv.read(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT.CONFIG, name);
    assert.equal(irq.level, true, name);
    assert.notEqual(drv.read(R.CONFIG_GENERATION), gen, name);
    // A reset recovers.
    drv.init([q]);
    assert.equal(drv.status() & S.DEVICE_NEEDS_RESET, 0, name);
    assert.equal(t.needsResetReason, null);
    assert.ok(device.activation, name);
  }
});

test('DRIVER_OK without FEATURES_OK puts the device in DEVICE_NEEDS_RESET', () => {
  const { drv, device, t } = setup(new SpyDevice());
  drv.write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
  assert.equal(device.activation, null);
  assert.equal(drv.status(), S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK | S.DEVICE_NEEDS_RESET);
  assert.match(t.needsResetReason!, /FEATURES_OK/);
  // The driver cannot clear DEVICE_NEEDS_RESET, nor set it.
  drv.write(R.STATUS, S.ACKNOWLEDGE);
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET);
  const fresh = setup(new SpyDevice());
  fresh.drv.write(R.STATUS, S.ACKNOWLEDGE | S.DEVICE_NEEDS_RESET);
  assert.equal(fresh.drv.status(), S.ACKNOWLEDGE);
});

test('a malformed ring sets DEVICE_NEEDS_RESET and raises a configuration change interrupt', () => {
  const { ram, irq, drv, t } = setup(new VirtioRng());
  const q = new MockSplitQueue(ram, 8);
  drv.init([q]);
  q.setDesc(0, { addr: ram.alloc(4), len: 4, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  q.offer(0);
  drv.notify(0);
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET);
  assert.match(t.needsResetReason!, /queue 0: chain from head 0 longer than the queue size/);
  assert.equal(drv.read(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT.CONFIG);
  assert.equal(irq.level, true);
  drv.ackInterrupt();
  assert.equal(irq.level, false);
  // Reset and initialize again: the device works.
  const q2 = new MockSplitQueue(ram, 8);
  drv.init([q2]);
  q2.addChain([{ writable: 4 }]);
  drv.notify(0);
  assert.equal(q2.takeUsed().length, 1);
});

test('the device can report DEVICE_NEEDS_RESET and configuration changes; ConfigGeneration moves', () => {
  const { ram, irq, drv, device } = setup(new SpyDevice());
  drv.init([new MockSplitQueue(ram, 16)]);
  const a = device.activation!;
  const gen = drv.read(R.CONFIG_GENERATION);
  a.interrupt.config();
  assert.equal(drv.read(R.CONFIG_GENERATION), gen + 1);
  assert.equal(drv.ackInterrupt(), VIRTIO_MMIO_INT.CONFIG);
  a.interrupt.queue(0);
  assert.equal(drv.read(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT.VRING);
  drv.ackInterrupt();
  a.needsReset();
  assert.ok(drv.status() & S.DEVICE_NEEDS_RESET);
  assert.equal(drv.read(R.INTERRUPT_STATUS), VIRTIO_MMIO_INT.CONFIG);
  assert.equal(irq.level, true);
});

test('reset (status 0) clears status, interrupts and queues; the old activation goes dead', () => {
  const { ram, irq, drv, device } = setup(new SpyDevice());
  const q = new MockSplitQueue(ram, 16);
  drv.init([q]);
  const a = device.activation!;
  const vq = a.queues[0]!;
  q.addChain([{ writable: 4 }]);
  const chain = vq.pop()!;
  a.interrupt.queue(0);
  assert.equal(irq.level, true);
  drv.write(R.STATUS, 0);
  assert.equal(device.resets, 2, 'init reset once, then this one');
  assert.equal(drv.status(), 0);
  assert.equal(drv.read(R.INTERRUPT_STATUS), 0);
  assert.equal(irq.level, false);
  drv.write(R.QUEUE_SEL, 0);
  assert.equal(drv.read(R.QUEUE_READY), 0);
  // The device kept references past the reset (a bug, or an I/O completing late): they do nothing.
  const usedRing = () => ram.read(q.device, 6 + 8 * 16);
  const before = usedRing();
  vq.pushUsed(chain.head, 4);
  q.addChain([{ writable: 4 }]);
  assert.equal(vq.pop(), null);
  a.interrupt.queue(0);
  a.interrupt.config();
  a.needsReset();
  assert.deepEqual(usedRing(), before, 'the used ring is untouched');
  assert.equal(drv.status(), 0);
  assert.equal(irq.level, false);
});

test('configuration space: bounds and natural alignment checked by the transport', () => {
  const { t, device } = setup(new SpyDevice());
  assert.equal(t.read(R.CONFIG, 1), 1);
  assert.equal(t.read(R.CONFIG + 2, 2), 0x0403);
  assert.equal(t.read(R.CONFIG + 4, 4), 0x08070605);
  assert.equal(t.read(R.CONFIG + 1, 2), 0, 'misaligned');
  assert.equal(t.read(R.CONFIG + 8, 1), 0, 'past the end');
  assert.equal(t.read(R.CONFIG + 6, 4), 0, 'straddles the end');
  assert.equal(t.read(0xfff, 1), 0);
  t.write(R.CONFIG + 4, 4, 0xdeadbeef);
  t.write(R.CONFIG + 6, 4, 1);
  t.write(R.CONFIG + 3, 2, 1);
  t.write(R.CONFIG + 8, 1, 1);
  assert.deepEqual(device.configWrites, [[4, 4, 0xdeadbeef]]);
});
