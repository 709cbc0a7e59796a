/**
 * Tests for the virtio entropy device (src/hw/virtio/virtio-rng.ts, Virtio 1.2 section
 * 5.4), driven through the virtio driver mock.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { VIRTIO_ID, VIRTIO_F_INDIRECT_DESC } from '../../src/hw/virtio/virtio.js';
import { VirtioRng, VIRTIO_RNG_MAX_REQUEST } from '../../src/hw/virtio/virtio-rng.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';

function setup(ramSize = 1 << 16) {
  const ram = new FakeGuestRam(ramSize);
  const q = new MockSplitQueue(ram, 16);
  const rng = new VirtioRng();
  const { interrupt, needsReset } = activateDevice(rng, ram, [q], VIRTIO_F_VERSION_1_BIT | (1n << VIRTIO_F_INDIRECT_DESC));
  return { ram, q, rng, interrupt, needsReset };
}

const allZero = (b: Uint8Array) => b.every((x) => x === 0);

test('identity: device ID 4, one queue, no features, no configuration space', () => {
  const rng = new VirtioRng();
  assert.equal(rng.deviceId, VIRTIO_ID.RNG);
  assert.equal(rng.queueMaxSizes.length, 1);
  assert.equal(rng.features, 0n);
  assert.equal(rng.configSize, 0);
});

test('fills every writable buffer of each posted chain and reports the length', () => {
  const { q, rng, interrupt, needsReset } = setup();
  const a = q.addChain([{ writable: 64 }]);
  const b = q.addChain([{ writable: 16 }, { writable: 48 }], { indirect: true });
  rng.queueNotify(0);
  assert.deepEqual(q.takeUsed(), [{ id: a.head, len: 64 }, { id: b.head, len: 64 }]);
  for (const buf of [...a.buffers, ...b.buffers]) assert.ok(!allZero(q.readBuffer(buf)));
  assert.notDeepEqual(q.readBuffer(a.buffers[0]!), q.readBuffer(b.buffers[1]!));
  assert.equal(interrupt.count(0), 2);
  assert.equal(needsReset(), null);
});

test('readable buffers are left alone; a chain with nothing writable comes back with length 0', () => {
  const { q, rng } = setup();
  const a = q.addChain([{ readable: new Uint8Array(8) }, { writable: 8 }]);
  const b = q.addChain([{ readable: new Uint8Array(8) }]);
  rng.queueNotify(0);
  assert.deepEqual(q.takeUsed(), [{ id: a.head, len: 8 }, { id: b.head, len: 0 }]);
  assert.ok(allZero(q.readBuffer(a.buffers[0]!)));
  assert.ok(allZero(q.readBuffer(b.buffers[0]!)));
});

test(`a request is filled up to ${VIRTIO_RNG_MAX_REQUEST} bytes; the rest of the buffer is untouched`, () => {
  const { q, rng } = setup(1 << 18);
  const c = q.addChain([{ writable: VIRTIO_RNG_MAX_REQUEST - 10 }, { writable: 100 }]);
  rng.queueNotify(0);
  assert.deepEqual(q.takeUsed(), [{ id: c.head, len: VIRTIO_RNG_MAX_REQUEST }]);
  const second = q.readBuffer(c.buffers[1]!);
  assert.ok(!allZero(second.subarray(0, 10)));
  assert.ok(allZero(second.subarray(10)));
});

test('no work before activation or after reset; other queue numbers are ignored', () => {
  const rng = new VirtioRng();
  rng.queueNotify(0);
  const { q, rng: live } = setup();
  q.addChain([{ writable: 8 }]);
  live.queueNotify(1);
  assert.equal(q.usedIdx(), 0);
  live.reset();
  live.queueNotify(0);
  assert.equal(q.usedIdx(), 0);
});
