/**
 * Tests for split virtqueues (src/hw/virtio/virtqueue.ts, Virtio 1.2 section 2.7): ring
 * mechanics driven through the driver mock, and every malformed-ring case, which must
 * stop the queue and report it without throwing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../../src/hw/virtio/virtio.js';
import {
  SplitVirtqueue, DisabledVirtqueue, splitQueueLayoutError, readFromChain, writeToChain,
  VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT, VIRTQ_AVAIL_F_NO_INTERRUPT,
} from '../../src/hw/virtio/virtqueue.js';
import { FakeGuestRam, MockSplitQueue } from './virtio-driver-mock.js';

const VERSION_1 = 1n << VIRTIO_F_VERSION_1;
const INDIRECT = 1n << VIRTIO_F_INDIRECT_DESC;
const EVENT_IDX = 1n << VIRTIO_F_EVENT_IDX;

function setup(size = 8, features = VERSION_1 | INDIRECT) {
  const ram = new FakeGuestRam(1 << 16);
  const mq = new MockSplitQueue(ram, size);
  let interrupts = 0;
  const errors: string[] = [];
  const vq = new SplitVirtqueue(ram.mem, 0, mq.layout, features, {
    interrupt: () => interrupts++,
    malformed: (r) => errors.push(r),
  });
  return { ram, mq, vq, errors, interrupts: () => interrupts };
}

test('layout checks: power-of-2 size within the maximum, aligned areas inside RAM', () => {
  const ram = new FakeGuestRam(1 << 16);
  const good = new MockSplitQueue(ram, 16).layout;
  assert.equal(splitQueueLayoutError(ram.mem, good), null);
  assert.equal(splitQueueLayoutError(ram.mem, good, 16), null);
  const bad = (change: Partial<typeof good>, max?: number) => splitQueueLayoutError(ram.mem, { ...good, ...change }, max);
  assert.match(bad({ size: 0 })!, /size/);
  assert.match(bad({ size: 12 })!, /size/);
  assert.match(bad({ size: 65536 })!, /size/);
  assert.match(bad({}, 8)!, /size/);
  assert.match(bad({ desc: good.desc + 8 })!, /descriptor table .* aligned/);
  assert.match(bad({ driver: good.driver + 1 })!, /available ring .* aligned/);
  assert.match(bad({ device: good.device + 2 })!, /used ring .* aligned/);
  assert.match(bad({ desc: 0x1000 })!, /descriptor table .* not in RAM/);
  assert.match(bad({ device: ram.end - 16 })!, /used ring .* not in RAM/);
  assert.match(bad({ driver: ram.base + 2 ** 32 })!, /available ring .* not in RAM/);
  assert.match(bad({ desc: 2 ** 64 })!, /descriptor table .* not in RAM/);
  assert.throws(() => new SplitVirtqueue(ram.mem, 0, { ...good, size: 3 }, 0n, { interrupt() {}, malformed() {} }), RangeError);
});

test('a chain of readable and writable buffers, its used element and the interrupt', () => {
  const { ram, mq, vq, interrupts } = setup();
  assert.equal(vq.pop(), null);
  const c = mq.addChain([{ readable: 'head' }, { readable: 'er' }, { writable: 10 }, { writable: 6 }]);
  const chain = vq.pop()!;
  assert.equal(chain.head, c.head);
  assert.deepEqual(chain.buffers, c.buffers);
  assert.equal(chain.readableLength, 6);
  assert.equal(chain.writableLength, 16);
  assert.equal(vq.pop(), null);

  const got = new Uint8Array(6);
  assert.equal(readFromChain(ram.mem, chain, 0, got), 6);
  assert.equal(Buffer.from(got).toString(), 'header');
  assert.equal(writeToChain(ram.mem, chain, 0, Buffer.from('0123456789abcdef!')), 16);
  vq.pushUsed(chain.head, 16);
  assert.deepEqual(mq.takeUsed(), [{ id: c.head, len: 16 }]);
  assert.equal(Buffer.from(mq.readBuffer(c.buffers[2]!)).toString(), '0123456789');
  assert.equal(Buffer.from(mq.readBuffer(c.buffers[3]!)).toString(), 'abcdef');
  assert.equal(interrupts(), 1);
  assert.equal(ram.getU16(mq.device), 0, 'used flags untouched');
});

test('chains are followed through the next field, in any order of table slots', () => {
  const { ram, mq, vq } = setup();
  const a = ram.alloc(4), b = ram.alloc(4), w = ram.alloc(4);
  mq.setDesc(5, { addr: a, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  mq.setDesc(2, { addr: b, len: 3, flags: VIRTQ_DESC_F_NEXT, next: 7 });
  mq.setDesc(7, { addr: w, len: 4, flags: VIRTQ_DESC_F_WRITE, next: 5 }); // next ignored without NEXT
  mq.offer(5);
  const chain = vq.pop()!;
  assert.deepEqual(chain.buffers, [
    { addr: a, len: 4, writable: false }, { addr: b, len: 3, writable: false }, { addr: w, len: 4, writable: true }]);
});

test('indirect tables, alone or after direct descriptors; WRITE on the table descriptor is ignored', () => {
  const { ram, mq, vq } = setup();
  const c = mq.addChain([{ readable: 'abc' }, { writable: 8 }, { writable: 8 }], { indirect: true });
  const chain = vq.pop()!;
  assert.equal(chain.head, c.head);
  assert.deepEqual(chain.buffers, c.buffers);
  assert.equal(chain.writableLength, 16);

  // Two direct readable descriptors, then one pointing at a table of one writable buffer.
  const r1 = ram.alloc(2), r2 = ram.alloc(2), w = ram.alloc(32), table = ram.alloc(16);
  mq.setDesc(0, { addr: w, len: 32, flags: VIRTQ_DESC_F_WRITE }, table);
  mq.setDesc(3, { addr: r1, len: 2, flags: VIRTQ_DESC_F_NEXT, next: 4 });
  mq.setDesc(4, { addr: r2, len: 2, flags: VIRTQ_DESC_F_NEXT, next: 6 });
  mq.setDesc(6, { addr: table, len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE });
  mq.offer(3);
  const mixed = vq.pop()!;
  assert.deepEqual(mixed.buffers.map((b) => [b.addr, b.writable]), [[r1, false], [r2, false], [w, true]]);
});

test('16-bit indices wrap around: more than 65536 chains through a queue of 4', () => {
  const { ram, mq, vq, errors } = setup(4);
  const w = ram.alloc(1), r = ram.alloc(1);
  for (let i = 0; i < 65536 + 100; i++) {
    // Two outstanding chains each time, so the ring position and the idx wrap at different points.
    mq.addChain([{ writable: 1, addr: w }]);
    mq.addChain([{ readable: 'x', addr: r }]);
    const a = vq.pop()!, b = vq.pop()!;
    assert.equal(vq.pop(), null);
    vq.pushUsed(b.head, 0);
    vq.pushUsed(a.head, 1);
    const used = mq.takeUsed();
    assert.deepEqual(used, [{ id: b.head, len: 0 }, { id: a.head, len: 1 }]);
  }
  assert.equal(mq.usedIdx(), (2 * (65536 + 100)) & 0xffff);
  assert.deepEqual(errors, []);
});

test('NO_INTERRUPT suppresses used buffer notifications when EVENT_IDX is not negotiated', () => {
  const { mq, vq, interrupts } = setup();
  mq.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  mq.addChain([{ writable: 1 }]);
  vq.pushUsed(vq.pop()!.head, 1);
  assert.equal(interrupts(), 0);
  mq.setAvailFlags(0);
  mq.addChain([{ writable: 1 }]);
  vq.pushUsed(vq.pop()!.head, 1);
  assert.equal(interrupts(), 1);
});

test('EVENT_IDX: interrupt exactly when the used idx passes used_event; NO_INTERRUPT is ignored', () => {
  const { mq, vq, interrupts } = setup(8, VERSION_1 | EVENT_IDX);
  mq.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  mq.setUsedEvent(2);
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    mq.addChain([{ writable: 1 }]);
    vq.pushUsed(vq.pop()!.head, 1);
    mq.takeUsed();
    seen.push(interrupts());
  }
  // Elements written at used idx 0,1,2,3,4,5: only the one at 2 (= used_event) notifies.
  assert.deepEqual(seen, [0, 0, 1, 1, 1, 1]);
  mq.setUsedEvent(6);
  mq.addChain([{ writable: 1 }]);
  vq.pushUsed(vq.pop()!.head, 1);
  assert.equal(interrupts(), 2);
});

test('EVENT_IDX: avail_event asks for a notification on the next buffer the device has not seen', () => {
  const { mq, vq } = setup(8, VERSION_1 | EVENT_IDX);
  assert.equal(vq.pop(), null);
  assert.equal(mq.availEvent(), 0);
  mq.addChain([{ writable: 1 }]);
  mq.addChain([{ writable: 1 }]);
  vq.pop();
  assert.equal(mq.availEvent(), 1);
  vq.pop();
  assert.equal(vq.pop(), null);
  assert.equal(mq.availEvent(), 2);
});

test('readFromChain / writeToChain honour offsets, direction and the end of the chain', () => {
  const { ram, mq, vq } = setup();
  mq.addChain([{ readable: 'abc' }, { readable: 'defg' }, { writable: 2 }, { writable: 5 }]);
  const chain = vq.pop()!;
  const dst = new Uint8Array(10);
  assert.equal(readFromChain(ram.mem, chain, 2, dst), 5);
  assert.equal(Buffer.from(dst.subarray(0, 5)).toString(), 'cdefg');
  assert.equal(readFromChain(ram.mem, chain, 7, dst), 0);
  assert.equal(writeToChain(ram.mem, chain, 1, Buffer.from('XYZ')), 3);
  assert.equal(writeToChain(ram.mem, chain, 5, Buffer.from('0123456')), 2);
  const w = chain.buffers.filter((b) => b.writable);
  assert.deepEqual([...ram.read(w[0]!.addr, 2)], [0, 'X'.charCodeAt(0)]);
  assert.equal(Buffer.from(ram.read(w[1]!.addr, 5)).toString('latin1'), 'YZ\u000001');
  // The readable buffers were not written.
  assert.equal(Buffer.from(ram.read(chain.buffers[0]!.addr, 3)).toString(), 'abc');
});

/** Each case corrupts a fresh queue (of 8, INDIRECT_DESC negotiated unless said) and expects `reason`. */
const malformed: { name: string; reason: RegExp; features?: bigint; corrupt(mq: MockSplitQueue, ram: FakeGuestRam): void }[] = [
  { name: 'head index out of range', reason: /head 8 out of range/, corrupt: (mq) => mq.offer(8) },
  { name: 'next index out of range', reason: /next index 9/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_NEXT, next: 9 });
    mq.offer(0);
  } },
  { name: 'a loop', reason: /longer than the queue size/, corrupt: (mq, ram) => {
    const b = ram.alloc(1);
    mq.setDesc(0, { addr: b, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    mq.setDesc(1, { addr: b, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    mq.offer(0);
  } },
  { name: 'a descriptor chained to itself', reason: /longer than the queue size/, corrupt: (mq, ram) => {
    mq.setDesc(3, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_NEXT, next: 3 });
    mq.offer(3);
  } },
  { name: 'a loop inside an indirect table', reason: /longer than the queue size/, corrupt: (mq, ram) => {
    const t = ram.alloc(32);
    mq.setDesc(0, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 }, t);
    mq.setDesc(1, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_NEXT, next: 0 }, t);
    mq.setDesc(0, { addr: t, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'an indirect chain longer than the queue size', reason: /longer than the queue size/, corrupt: (mq, ram) => {
    const t = ram.alloc(16 * 9);
    for (let i = 0; i < 9; i++) mq.setDesc(i, { addr: ram.alloc(1), len: 1, flags: i < 8 ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 }, t);
    mq.setDesc(0, { addr: t, len: 16 * 9, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'a buffer outside RAM', reason: /buffer at 0x1000 .* not in RAM/, corrupt: (mq) => {
    mq.setDesc(0, { addr: 0x1000, len: 4 });
    mq.offer(0);
  } },
  { name: 'a buffer running past the end of RAM', reason: /not in RAM/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.end - 4, len: 5, flags: VIRTQ_DESC_F_WRITE });
    mq.offer(0);
  } },
  { name: 'a 64-bit buffer address', reason: /not in RAM/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: (1n << 63n) + BigInt(ram.base), len: 4 });
    mq.offer(0);
  } },
  { name: 'a readable buffer after a writable one', reason: /readable descriptor after a writable one/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 });
    mq.setDesc(1, { addr: ram.alloc(1), len: 1 });
    mq.offer(0);
  } },
  { name: 'an indirect descriptor without INDIRECT_DESC', reason: /without VIRTIO_F_INDIRECT_DESC/, features: VERSION_1,
    corrupt: (mq) => mq.addChain([{ writable: 4 }], { indirect: true }) },
  { name: 'a nested indirect table', reason: /inside an indirect table/, corrupt: (mq, ram) => {
    const t = ram.alloc(16);
    mq.setDesc(0, { addr: t, len: 16, flags: VIRTQ_DESC_F_INDIRECT }, t);
    mq.setDesc(0, { addr: t, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'INDIRECT together with NEXT', reason: /indirect descriptor with NEXT/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.alloc(16), len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 });
    mq.offer(0);
  } },
  { name: 'an empty indirect table', reason: /indirect table of 0 bytes/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.alloc(16), len: 0, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'an indirect table that is not a multiple of 16 bytes', reason: /indirect table of 24 bytes/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.alloc(32), len: 24, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'an indirect table outside RAM', reason: /indirect table at .* not in RAM/, corrupt: (mq, ram) => {
    mq.setDesc(0, { addr: ram.end - 16, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  { name: 'a next index past the end of an indirect table', reason: /next index 2/, corrupt: (mq, ram) => {
    const t = ram.alloc(32);
    mq.setDesc(0, { addr: ram.alloc(1), len: 1, flags: VIRTQ_DESC_F_NEXT, next: 2 }, t);
    mq.setDesc(0, { addr: t, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    mq.offer(0);
  } },
  // The device has consumed one chain (idx 1) when the corruption happens.
  { name: 'an available idx more than the queue size ahead', reason: /available index jumped from 1 to 10/, corrupt: (mq) => mq.setAvailIdx(10) },
  { name: 'an available idx that went backwards', reason: /available index jumped from 1 to 0/, corrupt: (mq) => mq.setAvailIdx(0) },
];

for (const m of malformed) {
  test(`malformed ring: ${m.name} stops the queue and is reported once`, () => {
    const { ram, mq, vq, errors } = setup(8, m.features ?? VERSION_1 | INDIRECT);
    // A good chain first: the queue works until the driver breaks it.
    mq.addChain([{ writable: 1 }]);
    vq.pushUsed(vq.pop()!.head, 1);
    mq.takeUsed();
    m.corrupt(mq, ram);
    let before = ram.snapshot();
    assert.equal(vq.pop(), null);
    assert.equal(errors.length, 1, `errors: ${errors.join('; ')}`);
    assert.match(errors[0]!, m.reason);
    assert.equal(vq.isBroken, true);
    assert.deepEqual(ram.changedBytes(before), [], 'nothing written to guest memory');
    mq.addChain([{ writable: 1 }]);
    before = ram.snapshot();
    assert.equal(vq.pop(), null, 'a broken queue hands out nothing more');
    assert.equal(errors.length, 1);
    assert.deepEqual(ram.changedBytes(before), []);
  });
}

test('pushUsed rejects a head the device cannot have popped (a device bug, not a guest error)', () => {
  const { vq } = setup();
  assert.throws(() => vq.pushUsed(8, 0), RangeError);
  assert.throws(() => new DisabledVirtqueue(1).pushUsed(0), RangeError);
  assert.equal(new DisabledVirtqueue(1).pop(), null);
});

test('a detached queue (device reset) neither reads the rings nor writes the used ring', () => {
  const { ram, mq, vq, interrupts } = setup();
  mq.addChain([{ writable: 1 }]);
  const chain = vq.pop()!;
  mq.addChain([{ writable: 1 }]);
  vq.detach();
  const before = ram.snapshot();
  assert.equal(vq.pop(), null);
  vq.pushUsed(chain.head, 1);
  assert.deepEqual(ram.changedBytes(before), []);
  assert.equal(interrupts(), 0);
});
