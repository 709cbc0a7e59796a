/**
 * Tests for the in-memory raw disk of the browser (src/block/memory.ts): round trips,
 * the range checks on every request, read-only, write zeroes, the copy it hands out,
 * the checks on the image the user gives, and a guest write through virtio-blk.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { MemoryBackend, MAX_MEMORY_DISK_BYTES, memoryDiskProblem } from '../../src/block/memory.js';
import { BlockIOError } from '../../src/block/block.js';
import { VirtioBlk, VIRTIO_BLK_S, VIRTIO_BLK_T } from '../../src/hw/virtio/virtio-blk.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT } from './virtio-driver-mock.js';
import { pattern } from './block-helpers.js';

test('memory disk: round trip at unaligned offsets, write zeroes, discard, flush; bytes() is a copy', async () => {
  const b = new MemoryBackend(new Uint8Array(64 << 10));
  assert.equal(b.format, 'raw');
  assert.equal(b.size, 64 << 10);
  const data = pattern(5000, 3);
  await b.write(777, data);
  const back = new Uint8Array(5000);
  await b.read(777, back);
  assert.deepEqual(back, data);
  // writev: the buffers one after the other (an empty one among them).
  await b.writev(6000, [data.subarray(0, 10), new Uint8Array(0), data.subarray(10, 4000)]);
  await b.read(6000, back.subarray(0, 4000));
  assert.deepEqual(back.subarray(0, 4000), data.subarray(0, 4000));
  await b.writeZeroes(1000, 100);
  await b.discard(0, 512);
  await b.flush();
  const copy = b.bytes();
  assert.deepEqual(copy.subarray(1000, 1100), new Uint8Array(100));
  assert.deepEqual(copy.subarray(777, 1000), data.subarray(0, 223));
  copy.fill(0xff);
  await b.read(777, back.subarray(0, 10));
  assert.deepEqual(back.subarray(0, 10), data.subarray(0, 10), 'changing the copy leaves the disk alone');
  await b.close();
});

test('memory disk: every request outside the disk, or malformed, is a BlockIOError', async () => {
  const size = 8192;
  const b = new MemoryBackend(new Uint8Array(size));
  const bad: [number, number][] = [[-1, 1], [size, 1], [size - 1, 2], [0.5, 1], [Number.MAX_SAFE_INTEGER, 1], [NaN, 1], [0, size + 1]];
  for (const [off, len] of bad) {
    await assert.rejects(b.read(off, new Uint8Array(len)), BlockIOError, `read ${off} ${len}`);
    await assert.rejects(b.write(off, new Uint8Array(len)), BlockIOError, `write ${off} ${len}`);
    await assert.rejects(b.writev(off, [new Uint8Array(len)]), BlockIOError, `writev ${off} ${len}`);
    await assert.rejects(b.writeZeroes(off, len), BlockIOError, `zeroes ${off} ${len}`);
    await assert.rejects(b.discard(off, len), BlockIOError, `discard ${off} ${len}`);
  }
  await assert.rejects(b.writeZeroes(0, -1), BlockIOError);
  await b.read(size - 1, new Uint8Array(1));
  await b.read(size, new Uint8Array(0));
  assert.deepEqual(b.bytes(), new Uint8Array(size), 'nothing was written');
});

test('memory disk: read-only refuses every change', async () => {
  const b = new MemoryBackend(new Uint8Array(1024).fill(7), true);
  await assert.rejects(b.write(0, new Uint8Array(1)), BlockIOError);
  await assert.rejects(b.writeZeroes(0, 512), BlockIOError);
  await assert.rejects(b.discard(0, 512), BlockIOError);
  assert.deepEqual(b.bytes(), new Uint8Array(1024).fill(7));
});

test('memory disk: the image is checked (empty, too large, partial sector, qcow2), one line each', () => {
  const problem = (size: number, head = new Uint8Array(4)) => memoryDiskProblem(size, head);
  assert.match(problem(0)!, /empty/);
  assert.match(problem(MAX_MEMORY_DISK_BYTES + 512)!, /at most .* fit in memory/);
  assert.match(problem(1000)!, /512-byte sectors/);
  assert.match(problem(4096, Uint8Array.of(0x51, 0x46, 0x49, 0xfb))!, /qcow2 .*qemu-img convert -O raw/);
  assert.equal(problem(MAX_MEMORY_DISK_BYTES), null);
  assert.equal(problem(512), null);
  assert.throws(() => new MemoryBackend(new Uint8Array(0)), { name: 'RangeError', message: /empty/ });
  assert.throws(() => new MemoryBackend(new Uint8Array(513)), RangeError);
  for (const p of [problem(0), problem(1000), problem(MAX_MEMORY_DISK_BYTES + 512)]) assert.doesNotMatch(p!, /\n/);
});

test('memory disk under virtio-blk: a guest write lands in bytes(), a read returns what the user gave', async () => {
  const image = new Uint8Array(16 << 10);
  image.set(new TextEncoder().encode('from the host'), 1024);
  const disk = new MemoryBackend(image);
  const ram = new FakeGuestRam(1 << 20);
  const q = new MockSplitQueue(ram, 16);
  const dev = new VirtioBlk(disk, { queueSize: 16 });
  activateDevice(dev, ram, [q], VIRTIO_F_VERSION_1_BIT | dev.features);
  const hdr = (type: number, sector: number) => {
    const h = new Uint8Array(16);
    new DataView(h.buffer).setUint32(0, type, true);
    new DataView(h.buffer).setBigUint64(8, BigInt(sector), true);
    return h;
  };
  const data = new TextEncoder().encode('vireo-disk-test\n'.padEnd(512, '\0'));
  const w = q.addChain([{ readable: hdr(VIRTIO_BLK_T.OUT, 10) }, { readable: data }, { writable: 1 }]);
  const r = q.addChain([{ readable: hdr(VIRTIO_BLK_T.IN, 2) }, { writable: 512 }, { writable: 1 }]);
  const beyond = q.addChain([{ readable: hdr(VIRTIO_BLK_T.IN, 32) }, { writable: 512 }, { writable: 1 }]);
  dev.queueNotify(0);
  await dev.drain();
  assert.equal(q.takeUsed().length, 3);
  const status = (c: typeof w) => q.readBuffer(c.buffers[c.buffers.length - 1]!)[0];
  assert.equal(status(w), VIRTIO_BLK_S.OK);
  assert.equal(status(r), VIRTIO_BLK_S.OK);
  assert.equal(status(beyond), VIRTIO_BLK_S.IOERR, 'sector 32 is past the 16 KiB disk');
  assert.equal(new TextDecoder().decode(q.readBuffer(r.buffers[1]!).subarray(0, 13)), 'from the host');
  assert.deepEqual(disk.bytes().subarray(5120, 5632), data);
});
