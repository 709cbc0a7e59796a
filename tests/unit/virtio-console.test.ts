/**
 * Tests for the virtio console (src/hw/virtio/virtio-console.ts, Virtio 1.2 section 5.3):
 * transmit to the chardev, receive from it (input held until the driver posts buffers),
 * configuration space and emergency write, and the device through virtio-mmio; then
 * virtio-serial with MULTIPORT: the control-queue handshake, ports opened and closed on
 * either side, output held while the chardev is blocked, and malformed control messages.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { VIRTIO_ID, VIRTIO_STATUS } from '../../src/hw/virtio/virtio.js';
import {
  VirtioConsole, VIRTIO_CONSOLE_MAX_TX, VIRTIO_CONSOLE_F_EMERG_WRITE, VIRTIO_CONSOLE_F_MULTIPORT, VIRTIO_CONSOLE_F_SIZE,
  VirtioSerial, VIRTIO_CONSOLE, VIRTIO_CONSOLE_MAX_PENDING_CONTROL, type VirtioSerialPortConfig,
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

// ---- virtio-serial with MULTIPORT ----

/** A chardev whose host side can connect, leave and block, as a socket's does. */
class PeerChardev extends TestChardev {
  up = true;
  blocked = false;
  override get connected(): boolean {
    return this.up;
  }
  override get writeBlocked(): boolean {
    return this.blocked;
  }
  connect(up: boolean): void {
    this.up = up;
    this.setOpen(up);
  }
  unblock(): void {
    this.blocked = false;
    this.writable();
  }
}

const E = VIRTIO_CONSOLE;
const ctlMsg = (id: number, event: number, value: number): Uint8Array => {
  const m = new Uint8Array(8);
  const v = new DataView(m.buffer);
  v.setUint32(0, id, true);
  v.setUint16(4, event, true);
  v.setUint16(6, value, true);
  return m;
};

/** A device with maxPorts ports and a driver that negotiated MULTIPORT. */
function multiport(ports: VirtioSerialPortConfig[], maxPorts = 4, features = VIRTIO_F_VERSION_1_BIT | (1n << VIRTIO_CONSOLE_F_MULTIPORT)) {
  const ram = new FakeGuestRam(1 << 20);
  const dev = new VirtioSerial({ maxPorts, ports });
  const qs = dev.queueMaxSizes.map(() => new MockSplitQueue(ram, 16));
  const act = activateDevice(dev, ram, qs, features);
  const ctlBuf = ram.alloc(256);
  let outstanding = 0;
  /** Posts control receive buffers (all at one address: each message is read as soon as it is used). */
  const postCtl = (n = 1) => {
    for (let i = 0; i < n && outstanding < 8; i++, outstanding++) qs[2]!.addChain([{ writable: 256, addr: ctlBuf }]);
    dev.queueNotify(2);
  };
  /** The driver sends one control message (or raw bytes). */
  const send = (msg: Uint8Array | [number, number, number]) => {
    qs[3]!.addChain([{ readable: Array.isArray(msg) ? ctlMsg(...msg) : msg }]);
    dev.queueNotify(3);
    assert.equal(qs[3]!.takeUsed().length, 1, 'control transmit buffer returned');
  };
  /** Takes the control messages the device sent, one buffer posted for each as it goes. */
  const received = (): Array<[number, number, number, string?]> => {
    const out: Array<[number, number, number, string?]> = [];
    for (;;) {
      if (outstanding === 0) postCtl();
      const used = qs[2]!.takeUsed();
      outstanding -= used.length;
      if (used.length === 0) break;
      assert.equal(used.length, 1, 'one message per buffer, read before the next is posted');
      for (const u of used) {
        const b = ram.read(ctlBuf, u.len);
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const m: [number, number, number, string?] = [v.getUint32(0, true), v.getUint16(4, true), v.getUint16(6, true)];
        if (u.len > 8) m.push(Buffer.from(b.subarray(8)).toString('latin1'));
        out.push(m);
      }
    }
    return out;
  };
  return { ram, dev, qs, act, postCtl, send, received };
}

test('virtio-serial: MULTIPORT offered with more than one port; QEMU queue layout; max_nr_ports', () => {
  const dev = new VirtioSerial({ maxPorts: 4, ports: [] });
  assert.equal(dev.features, (1n << VIRTIO_CONSOLE_F_MULTIPORT) | (1n << VIRTIO_CONSOLE_F_EMERG_WRITE));
  assert.deepEqual(dev.queueMaxSizes, [128, 128, 32, 32, 128, 128, 128, 128, 128, 128]);
  assert.equal(dev.readConfig(4, 4), 4);
  assert.equal(dev.readConfig(0, 4), 0, 'no size');
  const one = new VirtioSerial({ maxPorts: 1, ports: [] });
  assert.equal(one.features & (1n << VIRTIO_CONSOLE_F_MULTIPORT), 0n);
  assert.equal(one.queueMaxSizes.length, 2);
  assert.throws(() => new VirtioSerial({ maxPorts: 0, ports: [] }), RangeError);
  assert.throws(() => new VirtioSerial({ maxPorts: 32, ports: [] }), RangeError);
  assert.throws(() => new VirtioSerial({ maxPorts: 2, ports: [{ id: 2, chr: null, console: false }] }), RangeError);
  assert.throws(() => new VirtioSerial({ maxPorts: 2, ports: [{ id: 1, chr: null, console: false }, { id: 1, chr: null, console: false }] }), RangeError);
});

test('virtio-serial: the control handshake announces ports, consoles, names and host connections, as QEMU', () => {
  const con = new PeerChardev();
  const ser = new PeerChardev();
  ser.up = false;
  const { send, received } = multiport([
    { id: 0, chr: con, console: true },
    { id: 1, chr: ser, console: false, name: 'org.vireo.test' },
    { id: 3, chr: null, console: false },
  ]);
  assert.deepEqual(received(), [], 'nothing before DEVICE_READY');
  send([0xffffffff, E.DEVICE_READY, 1]);
  assert.deepEqual(received(), [[0, E.DEVICE_ADD, 1], [1, E.DEVICE_ADD, 1], [3, E.DEVICE_ADD, 1]]);
  send([0, E.PORT_READY, 1]);
  assert.deepEqual(received(), [[0, E.CONSOLE_PORT, 1], [0, E.PORT_OPEN, 1]]);
  send([1, E.PORT_READY, 1]);
  assert.deepEqual(received(), [[1, E.PORT_NAME, 1, 'org.vireo.test\0']], 'named; the host side is not connected');
  send([3, E.PORT_READY, 1]);
  assert.deepEqual(received(), [], 'no chardev: never open');
  ser.connect(true);
  assert.deepEqual(received(), [[1, E.PORT_OPEN, 1]]);
  ser.connect(false);
  assert.deepEqual(received(), [[1, E.PORT_OPEN, 0]]);
  con.connect(false);
  con.connect(true);
  assert.deepEqual(received(), [[0, E.PORT_OPEN, 0], [0, E.PORT_OPEN, 1]]);
});

test('virtio-serial: control messages wait for control receive buffers, in order', () => {
  const { qs, dev, ram, send } = multiport([{ id: 0, chr: new PeerChardev(), console: true }, { id: 2, chr: new PeerChardev(), console: false }]);
  send([0, E.DEVICE_READY, 1]);
  assert.equal(qs[2]!.takeUsed().length, 0);
  const a = qs[2]!.addChain([{ writable: 8 }]);
  const b = qs[2]!.addChain([{ writable: 4 }, { writable: 4 }]);
  dev.queueNotify(2);
  assert.deepEqual(qs[2]!.takeUsed(), [{ id: a.head, len: 8 }, { id: b.head, len: 8 }]);
  assert.deepEqual([...ram.read(a.buffers[0]!.addr, 8)], [...ctlMsg(0, E.DEVICE_ADD, 1)]);
  assert.deepEqual([...ram.read(b.buffers[0]!.addr, 4), ...ram.read(b.buffers[1]!.addr, 4)], [...ctlMsg(2, E.DEVICE_ADD, 1)]);
});

test('virtio-serial: a port takes input only while the guest has it open; input is held meanwhile', () => {
  const chr = new PeerChardev();
  const { qs, dev, ram, send, received } = multiport([{ id: 1, chr, console: false, name: 'p' }]);
  const rx = qs[4]!;
  const buf = rx.addChain([{ writable: 16 }]);
  dev.queueNotify(4);
  chr.feed('before');
  assert.equal(rx.takeUsed().length, 0);
  assert.equal(chr.pending, 6, 'held');
  send([0, E.DEVICE_READY, 1]);
  send([1, E.PORT_READY, 1]);
  received();
  assert.equal(rx.takeUsed().length, 0, 'added is not opened');
  send([1, E.PORT_OPEN, 1]);
  assert.deepEqual(rx.takeUsed(), [{ id: buf.head, len: 6 }]);
  assert.equal(Buffer.from(ram.read(buf.buffers[0]!.addr, 6)).toString(), 'before');
  send([1, E.PORT_OPEN, 0]);
  rx.addChain([{ writable: 16 }]);
  dev.queueNotify(4);
  chr.feed('closed');
  assert.equal(rx.takeUsed().length, 0);
  assert.equal(chr.pending, 6);
});

test('virtio-serial: output goes to its own port; discarded while the host side is away', () => {
  const a = new PeerChardev();
  const b = new PeerChardev();
  const { qs, dev } = multiport([{ id: 0, chr: a, console: true }, { id: 1, chr: b, console: false }]);
  qs[1]!.addChain([{ readable: 'to-zero' }]);
  dev.queueNotify(1);
  qs[5]!.addChain([{ readable: 'to-one' }]);
  dev.queueNotify(5);
  assert.equal(a.text, 'to-zero');
  assert.equal(b.text, 'to-one');
  b.up = false;
  qs[5]!.addChain([{ readable: 'lost' }]);
  dev.queueNotify(5);
  assert.equal(qs[5]!.takeUsed().length, 2, 'returned to the guest either way');
  assert.equal(b.text, 'to-one');
  // A port that does not exist (3): its output is returned unread.
  qs[9]!.addChain([{ readable: 'nobody' }]);
  dev.queueNotify(9);
  assert.equal(qs[9]!.takeUsed().length, 1);
});

test('virtio-serial: while the chardev is blocked, output waits in the transmit queue', () => {
  const chr = new PeerChardev();
  const { qs, dev } = multiport([{ id: 0, chr, console: true }]);
  chr.blocked = true;
  qs[1]!.addChain([{ readable: 'held' }]);
  dev.queueNotify(1);
  assert.equal(qs[1]!.takeUsed().length, 0);
  assert.equal(chr.text, '');
  chr.unblock();
  assert.equal(chr.text, 'held');
  assert.equal(qs[1]!.takeUsed().length, 1);
});

test('virtio-serial: a driver without MULTIPORT gets port 0 only, always open', () => {
  const zero = new PeerChardev();
  const one = new PeerChardev();
  const { qs, dev, ram } = multiport([{ id: 0, chr: zero, console: true }, { id: 1, chr: one, console: false }], 4, VIRTIO_F_VERSION_1_BIT);
  const c = qs[0]!.addChain([{ writable: 8 }]);
  zero.feed('in');
  assert.deepEqual(qs[0]!.takeUsed(), [{ id: c.head, len: 2 }]);
  assert.equal(Buffer.from(ram.read(c.buffers[0]!.addr, 2)).toString(), 'in');
  qs[3]!.addChain([{ readable: ctlMsg(0, E.DEVICE_READY, 1) }]);
  qs[2]!.addChain([{ writable: 8 }]);
  dev.queueNotify(3);
  dev.queueNotify(2);
  assert.equal(qs[2]!.takeUsed().length, 0, 'no control queues');
  qs[5]!.addChain([{ readable: 'x' }]);
  dev.queueNotify(5);
  assert.equal(one.text, '');
});

test('virtio-serial: reset forgets the handshake; emergency write goes to port 0', () => {
  const zero = new PeerChardev();
  const t = multiport([{ id: 0, chr: zero, console: true }]);
  t.send([0, E.DEVICE_READY, 1]);
  t.send([0, E.PORT_READY, 1]);
  t.received();
  t.dev.reset();
  zero.connect(false);
  zero.connect(true); // nobody to tell: no throw
  const qs = t.dev.queueMaxSizes.map(() => new MockSplitQueue(t.ram, 16));
  activateDevice(t.dev, t.ram, qs, VIRTIO_F_VERSION_1_BIT | (1n << VIRTIO_CONSOLE_F_MULTIPORT));
  const ctl = qs[2]!.addChain([{ writable: 64 }]);
  t.dev.queueNotify(2);
  zero.connect(false);
  assert.equal(qs[2]!.takeUsed().length, 0, 'the new driver has not readied port 0: no PORT_OPEN for it');
  const rx = qs[0]!.addChain([{ writable: 8 }]);
  zero.feed('z');
  t.dev.queueNotify(0);
  assert.equal(qs[0]!.takeUsed().length, 0, 'not open on the guest side until PORT_OPEN');
  qs[3]!.addChain([{ readable: ctlMsg(0, E.PORT_OPEN, 1) }]);
  t.dev.queueNotify(3);
  assert.deepEqual(qs[0]!.takeUsed(), [{ id: rx.head, len: 1 }]);
  qs[3]!.addChain([{ readable: ctlMsg(0, E.PORT_READY, 1) }]);
  t.dev.queueNotify(3);
  assert.deepEqual(qs[2]!.takeUsed(), [{ id: ctl.head, len: 8 }], 'CONSOLE_PORT once readied (the host side is away)');
  zero.connect(true);
  t.dev.writeConfig(8, 4, 0x21);
  assert.equal(zero.text, '!');
  zero.up = false;
  t.dev.writeConfig(8, 4, 0x22);
  assert.equal(zero.text, '!', 'not connected: dropped');
  const noZero = new VirtioSerial({ maxPorts: 2, ports: [{ id: 1, chr: new PeerChardev(), console: false }] });
  noZero.writeConfig(8, 4, 0x41); // no port 0: nothing, no throw
});

test('virtio-serial: malformed control messages are ignored and never throw', () => {
  const chr = new PeerChardev();
  const t = multiport([{ id: 1, chr, console: false, name: 'n' }]);
  t.send(new Uint8Array(4)); // too short
  t.send(new Uint8Array(0));
  t.send([99, E.PORT_READY, 1]); // no such port
  t.send([0xffffffff, E.PORT_OPEN, 1]);
  t.send([1, E.PORT_READY, 0]); // the driver failed to add it
  t.send([0, E.DEVICE_READY, 0]);
  for (const ev of [E.DEVICE_ADD, E.DEVICE_REMOVE, E.CONSOLE_PORT, E.RESIZE, E.PORT_NAME, 8, 0xffff]) t.send([1, ev, 0xffff]);
  assert.deepEqual(t.received(), []);
  // A control chain with only a writable buffer reads as empty.
  t.qs[3]!.addChain([{ writable: 8 }]);
  t.dev.queueNotify(3);
  assert.equal(t.qs[3]!.takeUsed().length, 1);
  // Out-of-range notifications.
  for (const i of [-1, 10, 1e9, 0.5, NaN]) t.dev.queueNotify(i);
  assert.equal(t.act.needsReset(), null);
});

test(`virtio-serial: at most ${VIRTIO_CONSOLE_MAX_PENDING_CONTROL} control messages wait for buffers`, () => {
  const ports = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, chr: new PeerChardev(), console: false }));
  const t = multiport(ports, 31);
  for (let i = 0; i < 100; i++) t.send([0, E.DEVICE_READY, 1]); // 3000 messages asked for
  assert.equal(t.received().length, VIRTIO_CONSOLE_MAX_PENDING_CONTROL);
});

test('virtio-serial: random control traffic from a hostile driver never throws', () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const chrs = [new PeerChardev(), new PeerChardev(), new PeerChardev()];
  const t = multiport([{ id: 0, chr: chrs[0]!, console: true }, { id: 1, chr: chrs[1]!, console: false, name: 'a' }, { id: 2, chr: chrs[2]!, console: false }]);
  const outstanding = new Map<number, number>();
  const post = (q: number, spec: Parameters<MockSplitQueue['addChain']>[0]) => {
    if ((outstanding.get(q) ?? 0) >= 8) return;
    outstanding.set(q, (outstanding.get(q) ?? 0) + 1);
    t.qs[q]!.addChain(spec);
    t.dev.queueNotify(q);
  };
  const take = () => t.qs.forEach((q, i) => outstanding.set(i, (outstanding.get(i) ?? 0) - q.takeUsed().length));
  for (let i = 0; i < 3000; i++) {
    const r = rnd(10);
    if (r < 4) t.send([rnd(6) === 0 ? 0xffffffff : rnd(5), rnd(9), rnd(3)]);
    else if (r === 4) t.received();
    else if (r === 5) post([1, 5, 7][rnd(3)]!, [{ readable: 'y'.repeat(1 + rnd(20)) }]);
    else if (r === 6) chrs[rnd(3)]!.feed('x'.repeat(rnd(40)));
    else if (r === 7) chrs[rnd(3)]!.connect(rnd(2) === 0);
    else if (r === 8) post([0, 4, 6][rnd(3)]!, [{ writable: rnd(32) }]);
    else take();
  }
  assert.equal(t.act.needsReset(), null);
  assert.ok(chrs.some((c) => c.out.length > 0), 'some output got through');
});
