/**
 * Tests for the virtio input devices (src/hw/virtio/virtio-input.ts, Virtio 1.2 section
 * 5.8): the configuration space the driver questions, and event delivery through the
 * virtio driver mock.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { VIRTIO_ID } from '../../src/hw/virtio/virtio.js';
import { VirtioInput, VIRTIO_INPUT_CFG, VIRTIO_INPUT_MAX_PENDING, type VirtioInputKind } from '../../src/hw/virtio/virtio-input.js';
import { ABS, ABS_MAX, BTN, EV, QCODE_TO_LINUX, DOM_CODE_TO_LINUX, REL } from '../../src/ui/input-keys.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';

/** What the driver reads after selecting `sel`/`subsel`: the size byte and the union's first `size` bytes. */
function ask(d: VirtioInput, sel: number, subsel = 0): Uint8Array {
  d.writeConfig(0, 1, sel);
  d.writeConfig(1, 1, subsel);
  const size = d.readConfig(2, 1);
  return Uint8Array.from({ length: size }, (_, i) => d.readConfig(8 + i, 1));
}

const bit = (bits: Uint8Array, n: number): boolean => ((bits[n >> 3] ?? 0) & (1 << (n & 7))) !== 0;

function setup(kind: VirtioInputKind = 'keyboard') {
  const ram = new FakeGuestRam(1 << 16);
  const evq = new MockSplitQueue(ram, 64);
  const stq = new MockSplitQueue(ram, 8);
  const dev = new VirtioInput(kind);
  const { interrupt, needsReset } = activateDevice(dev, ram, [evq, stq], VIRTIO_F_VERSION_1_BIT);
  return { ram, evq, stq, dev, interrupt, needsReset };
}

/** Posts `n` 8-byte event buffers, as the Linux driver does at probe. */
function post(q: MockSplitQueue, n: number) {
  return Array.from({ length: n }, () => q.addChain([{ writable: 8 }]));
}

function events(q: MockSplitQueue, chains: ReturnType<typeof post>): Array<[number, number, number]> {
  const used = q.takeUsed();
  return used.map((u) => {
    const c = chains.find((x) => x.head === u.id)!;
    assert.equal(u.len, 8);
    const b = Buffer.from(q.readBuffer(c.buffers[0]!));
    return [b.readUInt16LE(0), b.readUInt16LE(2), b.readInt32LE(4)];
  });
}

test('identity: device ID 18, an event and a status queue, 136 bytes of configuration, no features', () => {
  const d = new VirtioInput('keyboard');
  assert.equal(d.deviceId, VIRTIO_ID.INPUT);
  assert.equal(d.queueMaxSizes.length, 2);
  assert.equal(d.configSize, 136);
  assert.equal(d.features, 0n);
});

test('configuration: names, ids and serial as QEMU gives them; unknown selectors have size 0', () => {
  const kbd = new VirtioInput('keyboard', 'kbd0');
  assert.equal(Buffer.from(ask(kbd, VIRTIO_INPUT_CFG.ID_NAME)).toString(), 'QEMU Virtio Keyboard');
  assert.equal(Buffer.from(ask(kbd, VIRTIO_INPUT_CFG.ID_SERIAL)).toString(), 'kbd0');
  const ids = Buffer.from(ask(kbd, VIRTIO_INPUT_CFG.ID_DEVIDS));
  assert.deepEqual([0, 2, 4, 6].map((o) => ids.readUInt16LE(o)), [6, 0x0627, 1, 1]);
  assert.equal(Buffer.from(ask(new VirtioInput('tablet'), VIRTIO_INPUT_CFG.ID_NAME)).toString(), 'QEMU Virtio Tablet');
  assert.equal(ask(new VirtioInput('mouse'), VIRTIO_INPUT_CFG.ID_SERIAL).length, 0, 'no serial= given');
  assert.equal(ask(kbd, 0x55).length, 0);
  assert.equal(ask(kbd, VIRTIO_INPUT_CFG.ID_NAME, 1).length, 0, 'ID_NAME has no subsel 1');
  assert.equal(ask(kbd, VIRTIO_INPUT_CFG.UNSET).length, 0);
  // Only select and subsel are writable; stray reads and writes elsewhere do nothing.
  kbd.writeConfig(2, 1, 0xff);
  kbd.writeConfig(100, 4, 0xffffffff);
  assert.equal(kbd.readConfig(2, 1), 0);
  assert.equal(kbd.readConfig(200, 4), 0);
  assert.equal(kbd.readConfig(135, 4), 0, 'a read crossing the end');
});

test('configuration: event bits of a keyboard (keys, autorepeat, LEDs), a mouse and a tablet (axes and their range)', () => {
  const kbd = new VirtioInput('keyboard');
  const keys = ask(kbd, VIRTIO_INPUT_CFG.EV_BITS, EV.KEY);
  for (const q of ['a', 'z', 'ret', 'esc', 'f12', 'shift', 'up']) assert.ok(bit(keys, QCODE_TO_LINUX.get(q)!), q);
  assert.ok(!bit(keys, BTN.LEFT));
  assert.equal(ask(kbd, VIRTIO_INPUT_CFG.EV_BITS, EV.REP).length, 1, 'EV_REP is there');
  assert.ok(bit(ask(kbd, VIRTIO_INPUT_CFG.EV_BITS, EV.LED), 1), 'caps lock LED');
  assert.equal(ask(kbd, VIRTIO_INPUT_CFG.EV_BITS, EV.REL).length, 0);
  const mouse = new VirtioInput('mouse');
  assert.ok(bit(ask(mouse, VIRTIO_INPUT_CFG.EV_BITS, EV.KEY), BTN.LEFT));
  const rel = ask(mouse, VIRTIO_INPUT_CFG.EV_BITS, EV.REL);
  assert.ok(bit(rel, REL.X) && bit(rel, REL.Y) && bit(rel, REL.WHEEL));
  assert.ok(bit(ask(mouse, VIRTIO_INPUT_CFG.PROP_BITS), 0), 'INPUT_PROP_POINTER');
  const tablet = new VirtioInput('tablet');
  const abs = ask(tablet, VIRTIO_INPUT_CFG.EV_BITS, EV.ABS);
  assert.ok(bit(abs, ABS.X) && bit(abs, ABS.Y));
  const info = Buffer.from(ask(tablet, VIRTIO_INPUT_CFG.ABS_INFO, ABS.Y));
  assert.deepEqual([0, 4, 8, 12, 16].map((o) => info.readUInt32LE(o)), [0, ABS_MAX, 0, 0, 0]);
  assert.equal(ask(tablet, VIRTIO_INPUT_CFG.ABS_INFO, 5).length, 0);
  assert.equal(ask(mouse, VIRTIO_INPUT_CFG.ABS_INFO, ABS.X).length, 0);
});

test('events go into the posted buffers, each batch closed by a SYN_REPORT, with an interrupt', () => {
  const { evq, dev, interrupt, needsReset } = setup();
  const chains = post(evq, 8);
  dev.queueNotify(0);
  assert.equal(evq.usedIdx(), 0, 'nothing to say yet');
  const a = QCODE_TO_LINUX.get('a')!;
  assert.ok(dev.send([{ type: EV.KEY, code: a, value: 1 }]));
  dev.send([{ type: EV.KEY, code: a, value: 0 }]);
  assert.deepEqual(events(evq, chains), [[EV.KEY, a, 1], [EV.SYN, 0, 0], [EV.KEY, a, 0], [EV.SYN, 0, 0]]);
  assert.ok(interrupt.count(0) > 0);
  assert.equal(needsReset(), null);
});

test('events wait for buffers; events a device does not report are not sent to it', () => {
  const { evq, dev } = setup('tablet');
  dev.send([{ type: EV.ABS, code: ABS.X, value: 100 }, { type: EV.ABS, code: ABS.Y, value: 200 }, { type: EV.KEY, code: 30, value: 1 }]);
  assert.ok(dev.send([{ type: EV.KEY, code: 30, value: 1 }]), 'a key only: nothing for a tablet, nothing queued');
  const chains = post(evq, 2);
  dev.queueNotify(0);
  assert.deepEqual(events(evq, chains), [[EV.ABS, ABS.X, 100], [EV.ABS, ABS.Y, 200]]);
  const more = post(evq, 4);
  dev.queueNotify(0);
  assert.deepEqual(events(evq, more), [[EV.SYN, 0, 0]]);
});

test(`at most ${VIRTIO_INPUT_MAX_PENDING} events wait: a batch that does not fit is dropped whole`, () => {
  const { evq, dev } = setup('mouse');
  let sent = 0;
  while (dev.send([{ type: EV.REL, code: REL.X, value: 1 }])) sent++;
  assert.equal(sent, VIRTIO_INPUT_MAX_PENDING / 2);
  const chains = post(evq, 4);
  dev.queueNotify(0);
  assert.equal(events(evq, chains).length, 4);
});

test('a buffer too short for an event gets what fits; status events are consumed; reset forgets waiting events', () => {
  const { evq, stq, dev } = setup();
  const short = evq.addChain([{ writable: 4 }]);
  dev.send([{ type: EV.KEY, code: 30, value: 1 }]);
  assert.deepEqual(evq.takeUsed(), [{ id: short.head, len: 4 }]);
  const led = stq.addChain([{ readable: Buffer.from([0x11, 0, 1, 0, 1, 0, 0, 0]) }]);
  dev.queueNotify(1);
  assert.deepEqual(stq.takeUsed(), [{ id: led.head, len: 0 }]);
  dev.send([{ type: EV.KEY, code: 30, value: 0 }]);
  dev.reset();
  dev.queueNotify(0);
  assert.equal(evq.usedIdx(), 1);
  assert.equal(dev.send([{ type: EV.KEY, code: 30, value: 1 }]), false, 'no driver: dropped');
  assert.equal(new VirtioInput('keyboard').send([{ type: EV.KEY, code: 30, value: 1 }]), false);
});

test('key names: QEMU qcodes and DOM codes reach the same Linux key codes', () => {
  assert.equal(QCODE_TO_LINUX.get('a'), 30);
  assert.equal(DOM_CODE_TO_LINUX.get('KeyA'), 30);
  assert.equal(QCODE_TO_LINUX.get('1'), 2);
  assert.equal(DOM_CODE_TO_LINUX.get('Digit0'), 11);
  assert.equal(QCODE_TO_LINUX.get('ret'), DOM_CODE_TO_LINUX.get('Enter'));
  assert.equal(QCODE_TO_LINUX.get('f11'), 87);
  assert.equal(DOM_CODE_TO_LINUX.get('F10'), 68);
  assert.equal(QCODE_TO_LINUX.get('m'), 50);
});

test('snapshots keep the configuration selection', () => {
  const dev = new VirtioInput('tablet');
  ask(dev, VIRTIO_INPUT_CFG.ABS_INFO, ABS.X);
  const fresh = new VirtioInput('tablet');
  fresh.prepareLoad(dev.saveState())(null);
  assert.equal(fresh.readConfig(2, 1), 20, 'ABS_INFO still selected');
  assert.equal(fresh.readConfig(8 + 4, 4), ABS_MAX);
});
