/**
 * Tests for the virtio console (src/hw/virtio/virtio-console.ts, Virtio 1.2 section 5.3):
 * transmit to the chardev, receive from it (input held until the driver posts buffers),
 * configuration space and emergency write, and the device through virtio-mmio.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { VIRTIO_ID, VIRTIO_STATUS } from '../../src/hw/virtio/virtio.js';
import {
  VirtioConsole, VIRTIO_CONSOLE_MAX_TX, VIRTIO_CONSOLE_F_EMERG_WRITE, VIRTIO_CONSOLE_F_MULTIPORT, VIRTIO_CONSOLE_F_SIZE,
} from '../../src/hw/virtio/virtio-console.js';
import { VirtioMmioTransport, VIRTIO_MMIO } from '../../src/hw/virtio/virtio-mmio.js';
import { Chardev } from '../../src/chardev/chardev.js';
import { RecordingLine } from './device-helpers.js';
import { FakeGuestRam, MockSplitQueue, MmioDriver, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';

class TestChardev extends Chardev {
  out: number[] = [];
  write(data: Uint8Array): void {
    this.out.push(...data);
  }
  feed(s: string): void {
    this.receive(Buffer.from(s));
  }
  get text(): string {
    return Buffer.from(this.out).toString();
  }
}

function setup() {
  const ram = new FakeGuestRam(1 << 16);
  const rxq = new MockSplitQueue(ram, 8);
  const txq = new MockSplitQueue(ram, 8);
  const chr = new TestChardev();
  const con = new VirtioConsole(chr);
  const { interrupt, needsReset } = activateDevice(con, ram, [rxq, txq], VIRTIO_F_VERSION_1_BIT);
  const text = (c: { buffers: { addr: number; len: number }[] }, len: number) => Buffer.from(rxq.readBuffer(c.buffers[0]!, len)).toString();
  return { ram, rxq, txq, chr, con, interrupt, needsReset, text };
}

test('identity: device ID 3, receiveq and transmitq, EMERG_WRITE offered, one port', () => {
  const con = new VirtioConsole(new TestChardev());
  assert.equal(con.deviceId, VIRTIO_ID.CONSOLE);
  assert.equal(con.queueMaxSizes.length, 2);
  assert.equal(con.features, 1n << VIRTIO_CONSOLE_F_EMERG_WRITE);
  assert.equal(con.features & ((1n << VIRTIO_CONSOLE_F_SIZE) | (1n << VIRTIO_CONSOLE_F_MULTIPORT)), 0n);
  assert.equal(con.configSize, 12);
  assert.equal(con.readConfig(0, 2), 0, 'cols');
  assert.equal(con.readConfig(2, 2), 0, 'rows');
  assert.equal(con.readConfig(4, 4), 1, 'max_nr_ports');
  assert.equal(con.readConfig(8, 4), 0, 'emerg_wr reads as 0');
});

test('transmit: every readable buffer goes to the chardev in order; used length 0', () => {
  const { txq, chr, con, interrupt } = setup();
  const a = txq.addChain([{ readable: 'hello, ' }]);
  const b = txq.addChain([{ readable: 'wor' }, { readable: 'ld\n' }]);
  con.queueNotify(1);
  assert.equal(chr.text, 'hello, world\n');
  assert.deepEqual(txq.takeUsed(), [{ id: a.head, len: 0 }, { id: b.head, len: 0 }]);
  assert.equal(interrupt.count(1), 2);
});

test('transmit hands the chardev copies, not views of guest memory', () => {
  const ram = new FakeGuestRam(1 << 16);
  const txq = new MockSplitQueue(ram, 8);
  const kept: Uint8Array[] = [];
  const chr = new (class extends TestChardev {
    override write(d: Uint8Array): void {
      kept.push(d);
    }
  })();
  const c2 = new VirtioConsole(chr);
  activateDevice(c2, ram, [null, txq], VIRTIO_F_VERSION_1_BIT);
  const c = txq.addChain([{ readable: 'abc' }]);
  c2.queueNotify(1);
  ram.write(c.buffers[0]!.addr, 'xyz');
  assert.equal(Buffer.from(kept[0]!).toString(), 'abc');
});

test('receive: input waits in the chardev until the driver posts a buffer, then fills it', () => {
  const { rxq, chr, con, interrupt, text } = setup();
  chr.feed('ab');
  assert.equal(chr.pending, 2, 'held, not dropped');
  assert.equal(interrupt.count(0), 0);
  const c = rxq.addChain([{ writable: 16 }]);
  con.queueNotify(0);
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 2 }]);
  assert.equal(text(c, 2), 'ab');
  assert.equal(chr.pending, 0);
  assert.equal(interrupt.count(0), 1);
});

test('receive: input arriving while buffers are posted is delivered at once, split across buffers', () => {
  const { rxq, chr, interrupt, text } = setup();
  const a = rxq.addChain([{ writable: 4 }]);
  const b = rxq.addChain([{ writable: 4 }]);
  chr.feed('0123456789');
  assert.deepEqual(rxq.takeUsed(), [{ id: a.head, len: 4 }, { id: b.head, len: 4 }]);
  assert.equal(text(a, 4) + text(b, 4), '01234567');
  assert.equal(chr.pending, 2, 'the rest waits for the next buffer');
  const c = rxq.addChain([{ writable: 4 }]);
  chr.feed('!');
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 3 }]);
  assert.equal(text(c, 3), '89!');
  assert.equal(interrupt.count(0), 3);
});

test(`transmit sends at most ${VIRTIO_CONSOLE_MAX_TX} bytes of one chain`, () => {
  const ram = new FakeGuestRam(1 << 20);
  const txq = new MockSplitQueue(ram, 32);
  let sent = 0;
  const chr = new (class extends TestChardev {
    override write(d: Uint8Array): void {
      sent += d.length;
    }
  })();
  const con = new VirtioConsole(chr);
  activateDevice(con, ram, [null, txq], VIRTIO_F_VERSION_1_BIT);
  // 24 descriptors over the same 64 KiB: 1.5 MiB described.
  const addr = ram.alloc(65536);
  const c = txq.addChain(Array.from({ length: 24 }, () => ({ readable: new Uint8Array(65536), addr })));
  con.queueNotify(1);
  assert.equal(sent, VIRTIO_CONSOLE_MAX_TX);
  assert.deepEqual(txq.takeUsed(), [{ id: c.head, len: 0 }]);
});

test('receive: a buffer with several writable parts is filled across them', () => {
  const { rxq, chr } = setup();
  const c = rxq.addChain([{ writable: 2 }, { writable: 8 }]);
  chr.feed('abcdef');
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 6 }]);
  assert.equal(Buffer.from(rxq.readBuffer(c.buffers[0]!)).toString() + Buffer.from(rxq.readBuffer(c.buffers[1]!, 4)).toString(), 'abcdef');
});

test('emergency write outputs one byte, even before the queues are up', () => {
  const chr = new TestChardev();
  const con = new VirtioConsole(chr);
  con.writeConfig(8, 4, 0x41);
  con.writeConfig(8, 4, 0x142);
  con.writeConfig(0, 2, 0x43);
  assert.equal(chr.text, 'AB');
});

test('after reset, input is held again until a new activation', () => {
  const { ram, chr, con } = setup();
  con.reset();
  chr.feed('x');
  assert.equal(chr.pending, 1);
  const rxq = new MockSplitQueue(ram, 8);
  const c = rxq.addChain([{ writable: 4 }]);
  activateDevice(con, ram, [rxq, new MockSplitQueue(ram, 8)], VIRTIO_F_VERSION_1_BIT);
  assert.deepEqual(rxq.takeUsed(), [{ id: c.head, len: 1 }], 'delivered at activation');
});

test('end to end through virtio-mmio: echo with interrupts', () => {
  const ram = new FakeGuestRam(1 << 16);
  const chr = new TestChardev();
  const irq = new RecordingLine();
  const drv = new MmioDriver(new VirtioMmioTransport(new VirtioConsole(chr), ram.mem, irq));
  assert.equal(drv.read(VIRTIO_MMIO.DEVICE_ID), 3);
  assert.equal(drv.transport.read(VIRTIO_MMIO.CONFIG + 4, 4), 1);
  const rxq = new MockSplitQueue(ram, 8), txq = new MockSplitQueue(ram, 8);
  drv.init([rxq, txq]);
  assert.equal(drv.status() & VIRTIO_STATUS.DRIVER_OK, VIRTIO_STATUS.DRIVER_OK);
  const rx = rxq.addChain([{ writable: 64 }]);
  drv.notify(0);
  assert.equal(irq.level, false);
  chr.feed('ping');
  assert.equal(irq.level, true);
  drv.ackInterrupt();
  const [used] = rxq.takeUsed();
  const got = rxq.readBuffer(rx.buffers[0]!, used!.len);
  txq.addChain([{ readable: got }]);
  drv.notify(1);
  assert.equal(chr.text, 'ping');
  assert.equal(irq.level, true);
  assert.equal(txq.takeUsed().length, 1);
});
