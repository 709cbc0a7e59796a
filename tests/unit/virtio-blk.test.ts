/**
 * Tests for the virtio block device (src/hw/virtio/virtio-blk.ts, Virtio 1.2 section
 * 5.2), driven through the virtio driver mock: configuration, every request type, the
 * checks on guest-supplied sectors and lengths, requests in flight, resets that drop
 * completions without touching guest memory, and drain() and the snapshot state.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { VIRTIO_ID } from '../../src/hw/virtio/virtio.js';
import { VirtioBlk, VIRTIO_BLK_F, VIRTIO_BLK_S, VIRTIO_BLK_T, VIRTIO_BLK_CONFIG } from '../../src/hw/virtio/virtio-blk.js';
import { BlockIOError, checkRange, openBlockBackend, type BlockBackend } from '../../src/block/block.js';
import { MemoryBackend } from '../../src/block/memory.js';
import { RegionGuestMemory, type GuestMemory } from '../../src/hw/core/guest-memory.js';
import { createQcow2 } from '../../src/block/qcow2.js';
import { SplitVirtqueue } from '../../src/hw/virtio/virtqueue.js';
import { SnapshotError } from '../../src/migration/vmstate.js';
import { FakeGuestRam, MockSplitQueue, activateDevice, VIRTIO_F_VERSION_1_BIT, type MockChain } from './virtio-driver-mock.js';
import { pattern, tempDir } from './block-helpers.js';

/** An in-memory disk whose requests can be held until the test releases them. */
class FakeDisk implements BlockBackend {
  readonly format = 'raw';
  readonly discardGranularity = 0;
  readonly data: Uint8Array;
  readonly calls: string[] = [];
  /** While true, every request waits in `held` until released. */
  hold = false;
  fail = false;
  readonly held: (() => void)[] = [];

  constructor(readonly size: number, readonly readOnly = false) {
    this.data = new Uint8Array(size);
  }

  private async gate(call: string, offset: number, len: number): Promise<void> {
    this.calls.push(call);
    checkRange(this.size, offset, len);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    if (this.fail) throw new BlockIOError('injected failure');
  }

  releaseAll(): void {
    this.held.splice(0).forEach((r) => r());
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    await this.gate(`read ${offset} ${dst.length}`, offset, dst.length);
    dst.set(this.data.subarray(offset, offset + dst.length));
  }
  async write(offset: number, src: Uint8Array): Promise<void> {
    await this.gate(`write ${offset} ${src.length}`, offset, src.length);
    this.data.set(src, offset);
  }
  async flush(): Promise<void> {
    await this.gate('flush', 0, 0);
  }
  async discard(offset: number, len: number): Promise<void> {
    await this.gate(`discard ${offset} ${len}`, offset, len);
  }
  async writeZeroes(offset: number, len: number): Promise<void> {
    await this.gate(`zeroes ${offset} ${len}`, offset, len);
    this.data.fill(0, offset, offset + len);
  }
  async close(): Promise<void> {}
}

const SECTORS = 2048; // a 1 MiB disk
const bit = (b: bigint) => 1n << b;

function setup(disk: BlockBackend = new FakeDisk(SECTORS * 512), o: { features?: bigint; qsize?: number; ram?: number; serial?: string } = {}) {
  const ram = new FakeGuestRam(o.ram ?? 4 << 20);
  const q = new MockSplitQueue(ram, o.qsize ?? 64);
  const dev = new VirtioBlk(disk, { serial: o.serial, queueSize: o.qsize ?? 64 });
  const act = activateDevice(dev, ram, [q], o.features ?? (VIRTIO_F_VERSION_1_BIT | dev.features));
  return { ram, q, dev, disk, ...act };
}

function header(type: number, sector: bigint | number): Uint8Array {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return h;
}

/** Posts a request: header, data to write (readable), room for data to read (writable), status. */
function post(q: MockSplitQueue, type: number, sector: bigint | number, d: { out?: Uint8Array[]; inLens?: number[] } = {}): MockChain {
  return q.addChain([
    { readable: header(type, sector) },
    ...(d.out ?? []).map((b) => ({ readable: b })),
    ...(d.inLens ?? []).map((n) => ({ writable: n })),
    { writable: 1 },
  ]);
}

const statusOf = (q: MockSplitQueue, c: MockChain) => q.readBuffer(c.buffers[c.buffers.length - 1]!)[0];

/** Waits until `n` used elements arrived (the backend completes asynchronously). */
async function used(q: MockSplitQueue, n: number): Promise<{ id: number; len: number }[]> {
  const out: { id: number; len: number }[] = [];
  for (let i = 0; i < 2000 && out.length < n; i++) {
    out.push(...q.takeUsed());
    if (out.length < n) await new Promise((r) => setTimeout(r, i < 50 ? 0 : 5));
  }
  assert.equal(out.length, n, 'used elements');
  return out;
}

const ticks = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function discardSeg(sector: number | bigint, num: number, flags = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt(sector), true);
  dv.setUint32(8, num, true);
  dv.setUint32(12, flags, true);
  return b;
}

test('the default queue: 1024 descriptors, seg_max 1022 (a 1 MiB request of scattered pages goes whole)', () => {
  const dev = new VirtioBlk(new FakeDisk(SECTORS * 512));
  assert.deepEqual(dev.queueMaxSizes, [1024]);
  assert.equal(dev.readConfig(VIRTIO_BLK_CONFIG.SEG_MAX, 4), 1022);
});

test('identity and configuration space', () => {
  const dev = new VirtioBlk(new FakeDisk(SECTORS * 512 + 100), { queueSize: 128 });
  assert.equal(dev.deviceId, VIRTIO_ID.BLOCK);
  assert.deepEqual(dev.queueMaxSizes, [128]);
  for (const f of [VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.SIZE_MAX, VIRTIO_BLK_F.BLK_SIZE, VIRTIO_BLK_F.FLUSH, VIRTIO_BLK_F.DISCARD, VIRTIO_BLK_F.WRITE_ZEROES]) {
    assert.ok(dev.features & bit(f), `feature ${f}`);
  }
  assert.equal(dev.features & bit(VIRTIO_BLK_F.RO), 0n);
  const C = VIRTIO_BLK_CONFIG;
  assert.equal(dev.readConfig(C.CAPACITY, 4), SECTORS); // the partial last sector is not visible
  assert.equal(dev.readConfig(C.CAPACITY + 4, 4), 0);
  assert.equal(dev.readConfig(C.SEG_MAX, 4), 126);
  assert.equal(dev.readConfig(C.SIZE_MAX, 4), 65536);
  assert.equal(dev.readConfig(C.BLK_SIZE, 4), 512);
  assert.equal(dev.readConfig(C.BLK_SIZE, 2), 512);
  assert.equal(dev.readConfig(C.BLK_SIZE + 1, 1), 2);
  assert.equal(dev.readConfig(C.NUM_QUEUES, 2), 1);
  assert.equal(dev.readConfig(C.MAX_DISCARD_SEG, 4), 1);
  assert.equal(dev.readConfig(C.MAX_WRITE_ZEROES_SEG, 4), 1);
  assert.ok(dev.readConfig(C.MAX_DISCARD_SECTORS, 4) > 0);
  assert.ok(dev.readConfig(C.MAX_WRITE_ZEROES_SECTORS, 4) > 0);
  assert.equal(dev.readConfig(dev.configSize, 4), 0);
  assert.equal(dev.readConfig(dev.configSize - 2, 4), 0);
  dev.writeConfig(C.CAPACITY, 4, 5);
  assert.equal(dev.readConfig(C.CAPACITY, 4), SECTORS);

  const ro = new VirtioBlk(new FakeDisk(4096, true));
  assert.ok(ro.features & bit(VIRTIO_BLK_F.RO));
  assert.equal(ro.features & (bit(VIRTIO_BLK_F.DISCARD) | bit(VIRTIO_BLK_F.WRITE_ZEROES)), 0n);
});

for (const format of ['raw', 'qcow2'] as const) {
  test(`writes and reads through a ${format} image file, with data split across descriptors`, async () => {
    const tmp = tempDir();
    try {
      const f = tmp.path(`d.${format}`);
      if (format === 'raw') writeFileSync(f, new Uint8Array(SECTORS * 512));
      else await createQcow2(f, { size: SECTORS * 512, clusterBits: 12 });
      const disk = await openBlockBackend({ file: f, readOnly: false, cache: 'writeback' });
      assert.equal(disk.format, format);
      const { q, dev, needsReset } = setup(disk);
      const data = pattern(8 * 512, 1);
      const w = post(q, VIRTIO_BLK_T.OUT, 10, { out: [data.subarray(0, 1000), data.subarray(1000)] });
      dev.queueNotify(0);
      assert.deepEqual(await used(q, 1), [{ id: w.head, len: 1 }]);
      assert.equal(statusOf(q, w), VIRTIO_BLK_S.OK);
      const z = post(q, VIRTIO_BLK_T.WRITE_ZEROES, 0, { out: [discardSeg(12, 2)] });
      dev.queueNotify(0);
      await used(q, 1);
      assert.equal(statusOf(q, z), VIRTIO_BLK_S.OK);
      data.fill(0, 2 * 512, 4 * 512);
      const r = post(q, VIRTIO_BLK_T.IN, 10, { inLens: [3 * 512, 5 * 512] });
      dev.queueNotify(0);
      assert.deepEqual(await used(q, 1), [{ id: r.head, len: 8 * 512 + 1 }]);
      assert.equal(statusOf(q, r), VIRTIO_BLK_S.OK);
      const back = new Uint8Array([...q.readBuffer(r.buffers[1]!), ...q.readBuffer(r.buffers[2]!)]);
      assert.deepEqual(back, data);
      const fl = post(q, VIRTIO_BLK_T.FLUSH, 0);
      dev.queueNotify(0);
      await used(q, 1);
      assert.equal(statusOf(q, fl), VIRTIO_BLK_S.OK);
      assert.equal(needsReset(), null);
      await disk.close();
    } finally {
      tmp.remove();
    }
  });
}

test('a read the backend can do at once (readNow) goes straight into the guest buffers, split across descriptors, and completes within the notify', async () => {
  const content = pattern(SECTORS * 512, 7);
  const disk = new MemoryBackend(content.slice());
  let readCalls = 0;
  const read = disk.read.bind(disk);
  disk.read = (offset, dst) => (readCalls++, read(offset, dst));
  const { q, dev, needsReset, interrupt } = setup(disk);
  const r = post(q, VIRTIO_BLK_T.IN, 3, { inLens: [512, 4096, 1536] });
  dev.queueNotify(0);
  // Before any await: the guest takes the interrupt without going idle first.
  assert.deepEqual(q.takeUsed(), [{ id: r.head, len: 6144 + 1 }]);
  assert.equal(interrupt.count(0), 1);
  assert.equal(statusOf(q, r), VIRTIO_BLK_S.OK);
  const back = new Uint8Array([...q.readBuffer(r.buffers[1]!), ...q.readBuffer(r.buffers[2]!), ...q.readBuffer(r.buffers[3]!)]);
  assert.deepEqual(back, content.subarray(3 * 512, 3 * 512 + 6144));
  // Buffers apart in RAM, and in reverse order.
  const at = [q.ram.alloc(4096 + 64), q.ram.alloc(512 + 64)].reverse();
  const r2 = q.addChain([{ readable: header(VIRTIO_BLK_T.IN, 9) }, { writable: 512, addr: at[0]! }, { writable: 4096, addr: at[1]! }, { writable: 1 }]);
  dev.queueNotify(0);
  assert.deepEqual(await used(q, 1), [{ id: r2.head, len: 4608 + 1 }]);
  assert.equal(statusOf(q, r2), VIRTIO_BLK_S.OK);
  assert.deepEqual(new Uint8Array([...q.readBuffer(r2.buffers[1]!), ...q.readBuffer(r2.buffers[2]!)]), content.subarray(9 * 512, 9 * 512 + 4608));
  assert.equal(readCalls, 0, 'no host buffer: readNow filled the guest pages');
  // One readNow cannot do (not all in the host's cache) completes once the read is done.
  disk.readNow = () => false;
  const r3 = post(q, VIRTIO_BLK_T.IN, 5, { inLens: [1024] });
  dev.queueNotify(0);
  assert.deepEqual(q.takeUsed(), []);
  assert.deepEqual(await used(q, 1), [{ id: r3.head, len: 1024 + 1 }]);
  assert.deepEqual(q.readBuffer(r3.buffers[1]!), content.subarray(5 * 512, 5 * 512 + 1024));
  assert.equal(readCalls, 1);
  assert.equal(needsReset(), null);
});

test('a read straight into the guest buffers marks their pages dirty (for migration), an empty buffer among them too', async () => {
  const content = pattern(SECTORS * 512, 9);
  const ram = new FakeGuestRam(4 << 20);
  const dirty = new Uint8Array((4 << 20) / 4096);
  (ram as { mem: GuestMemory }).mem = new RegionGuestMemory([{ base: ram.base, bytes: ram.bytes, dirty }]);
  const q = new MockSplitQueue(ram, 64);
  const dev = new VirtioBlk(new MemoryBackend(content.slice()), { queueSize: 64 });
  activateDevice(dev, ram, [q], VIRTIO_F_VERSION_1_BIT | dev.features);
  const page = (addr: number) => (addr - ram.base) >> 12;
  const [a, empty, b] = [ram.alloc(8192, 4096), ram.alloc(8192, 4096), ram.alloc(8192, 4096)];
  const c = q.addChain([{ readable: header(VIRTIO_BLK_T.IN, 2) }, { writable: 512, addr: a }, { writable: 0, addr: empty }, { writable: 4096, addr: b }, { writable: 1 }]);
  dirty.fill(0);
  dev.queueNotify(0);
  assert.deepEqual(await used(q, 1), [{ id: c.head, len: 4608 + 1 }]);
  assert.equal(statusOf(q, c), VIRTIO_BLK_S.OK);
  assert.deepEqual(new Uint8Array([...ram.read(a, 512), ...ram.read(b, 4096)]), content.subarray(1024, 1024 + 4608));
  assert.equal(dirty[page(a)], 1);
  assert.equal(dirty[page(b)], 1, 'the page after the empty buffer');
  assert.equal(dirty[page(empty)], 0);
});

test('reads that wait for the backend reuse their bounce buffers once done, never one still in flight', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  disk.data.set(pattern(SECTORS * 512, 5));
  const seen: ArrayBufferLike[] = [];
  const read = disk.read.bind(disk);
  disk.read = (offset, dst) => (seen.push(dst.buffer), read(offset, dst));
  const { q, dev, needsReset } = setup(disk);
  const expect = (c: MockChain, sector: number, lens: number[]) => {
    assert.equal(statusOf(q, c), VIRTIO_BLK_S.OK);
    const back = new Uint8Array(lens.flatMap((_, i) => [...q.readBuffer(c.buffers[1 + i]!)]));
    assert.deepEqual(back, disk.data.subarray(sector * 512, sector * 512 + back.length));
  };
  // Two at once: two buffers.
  disk.hold = true;
  const a = post(q, VIRTIO_BLK_T.IN, 0, { inLens: [4096, 4096] });
  const b = post(q, VIRTIO_BLK_T.IN, 40, { inLens: [8192] });
  dev.queueNotify(0);
  await ticks();
  disk.hold = false;
  disk.releaseAll();
  await used(q, 2);
  expect(a, 0, [4096, 4096]);
  expect(b, 40, [8192]);
  assert.notEqual(seen[0], seen[1]);
  // Later, shorter reads of the same size class take them again; the guest gets only what it asked for.
  const c = post(q, VIRTIO_BLK_T.IN, 7, { inLens: [1536, 4608] });
  dev.queueNotify(0);
  await used(q, 1);
  expect(c, 7, [1536, 4608]);
  assert.ok(seen.slice(0, 2).includes(seen[2]!), 'a bounce buffer was reused');
  assert.equal(needsReset(), null);
});

test('guest-supplied sectors and lengths are checked: I/O error status, backend not called', async () => {
  const { q, dev, disk, needsReset } = setup(new FakeDisk(SECTORS * 512), { qsize: 32 });
  const fake = disk as FakeDisk;
  const bad = [
    post(q, VIRTIO_BLK_T.IN, SECTORS, { inLens: [512] }), // past the end
    post(q, VIRTIO_BLK_T.IN, SECTORS - 1, { inLens: [1024] }), // straddles the end
    post(q, VIRTIO_BLK_T.IN, 2n ** 64n - 1n, { inLens: [512] }), // would wrap
    post(q, VIRTIO_BLK_T.IN, 2n ** 55n, { inLens: [512] }),
    post(q, VIRTIO_BLK_T.IN, 0, { inLens: [100] }), // not whole sectors
    post(q, VIRTIO_BLK_T.OUT, 0, { out: [new Uint8Array(513)] }),
    post(q, VIRTIO_BLK_T.OUT, SECTORS, { out: [new Uint8Array(512)] }),
  ];
  // More than seg_max * size_max (30 * 64 KiB here): two 1 MiB buffers at the same address.
  const big = q.ram.alloc(1 << 20);
  bad.push(q.addChain([{ readable: header(VIRTIO_BLK_T.IN, 0) }, { writable: 1 << 20, addr: big }, { writable: 1 << 20, addr: big }, { writable: 1 }]));
  dev.queueNotify(0);
  await used(q, bad.length);
  for (const c of bad) assert.equal(statusOf(q, c), VIRTIO_BLK_S.IOERR);
  assert.deepEqual(fake.calls, []);
  // A zero-length read is fine; the last sector is readable.
  const ok = [post(q, VIRTIO_BLK_T.IN, 0), post(q, VIRTIO_BLK_T.IN, SECTORS - 1, { inLens: [512] })];
  dev.queueNotify(0);
  await used(q, 2);
  for (const c of ok) assert.equal(statusOf(q, c), VIRTIO_BLK_S.OK);
  assert.equal(needsReset(), null);
});

test('a chain without a whole header or without a status byte puts the device in NEEDS_RESET', async () => {
  for (const bufs of [
    [{ readable: new Uint8Array(8) }, { writable: 1 }],
    [{ readable: header(VIRTIO_BLK_T.IN, 0) }],
  ]) {
    const { q, dev, disk, needsReset } = setup();
    q.addChain(bufs);
    dev.queueNotify(0);
    await ticks();
    assert.equal(q.takeUsed().length, 0);
    assert.notEqual(needsReset(), null);
    // Broken until reset: later requests are not served.
    post(q, VIRTIO_BLK_T.IN, 0, { inLens: [512] });
    dev.queueNotify(0);
    await ticks();
    assert.equal(q.takeUsed().length, 0);
    assert.deepEqual((disk as FakeDisk).calls, []);
  }
});

test('GET_ID answers the serial (at most 20 bytes, NUL-padded); unknown types are UNSUPP', async () => {
  const { q, dev } = setup(undefined, { serial: 'vireo-disk-0' });
  const a = post(q, VIRTIO_BLK_T.GET_ID, 0, { inLens: [20] });
  const b = post(q, VIRTIO_BLK_T.GET_ID, 0, { inLens: [5] });
  const c = post(q, 99, 0, { inLens: [512] });
  const d = post(q, VIRTIO_BLK_T.GET_LIFETIME, 0, { inLens: [16] });
  dev.queueNotify(0);
  const u = await used(q, 4);
  assert.equal(statusOf(q, a), VIRTIO_BLK_S.OK);
  assert.deepEqual(Buffer.from(q.readBuffer(a.buffers[1]!)).toString('latin1'), 'vireo-disk-0'.padEnd(20, '\0'));
  assert.equal(u.find((e) => e.id === a.head)!.len, 21);
  assert.equal(Buffer.from(q.readBuffer(b.buffers[1]!)).toString(), 'vireo');
  assert.equal(statusOf(q, c), VIRTIO_BLK_S.UNSUPP);
  assert.equal(statusOf(q, d), VIRTIO_BLK_S.UNSUPP);
});

test('discard and write zeroes: ranges, flags, segments and negotiation are checked', async () => {
  const { q, dev, disk } = setup();
  const fake = disk as FakeDisk;
  fake.data.fill(0x55);
  const { DISCARD, WRITE_ZEROES } = VIRTIO_BLK_T;
  const cases: [MockChain, number][] = [
    [post(q, WRITE_ZEROES, 0, { out: [discardSeg(4, 8)] }), VIRTIO_BLK_S.OK],
    [post(q, WRITE_ZEROES, 0, { out: [discardSeg(100, 1, 1)] }), VIRTIO_BLK_S.OK], // unmap allowed
    [post(q, DISCARD, 0, { out: [discardSeg(0, 16)] }), VIRTIO_BLK_S.OK],
    [post(q, DISCARD, 0, { out: [discardSeg(0, 16, 1)] }), VIRTIO_BLK_S.UNSUPP], // unmap on discard
    [post(q, WRITE_ZEROES, 0, { out: [discardSeg(0, 16, 2)] }), VIRTIO_BLK_S.UNSUPP], // unknown flag
    [post(q, DISCARD, 0, { out: [discardSeg(SECTORS - 1, 2)] }), VIRTIO_BLK_S.IOERR],
    [post(q, WRITE_ZEROES, 0, { out: [discardSeg(2n ** 64n - 1n, 2)] }), VIRTIO_BLK_S.IOERR],
    [post(q, WRITE_ZEROES, 0, { out: [discardSeg(0, 0xffffffff)] }), VIRTIO_BLK_S.IOERR], // over max_write_zeroes_sectors
    [post(q, DISCARD, 0, { out: [discardSeg(0, 1), discardSeg(8, 1)] }), VIRTIO_BLK_S.UNSUPP], // two segments
    [post(q, DISCARD, 0, { out: [new Uint8Array(10)] }), VIRTIO_BLK_S.IOERR],
  ];
  dev.queueNotify(0);
  await used(q, cases.length);
  cases.forEach(([c, s], i) => assert.equal(statusOf(q, c), s, `case ${i}`));
  assert.deepEqual(fake.calls.sort(), ['discard 0 8192', 'zeroes 2048 4096', 'zeroes 51200 512']);
  assert.ok(fake.data.subarray(2048, 6144).every((x) => x === 0));
  assert.equal(fake.data[2047], 0x55);

  // Not negotiated: UNSUPP.
  const s = setup(new FakeDisk(SECTORS * 512), { features: VIRTIO_F_VERSION_1_BIT | bit(VIRTIO_BLK_F.FLUSH) });
  const x = post(s.q, DISCARD, 0, { out: [discardSeg(0, 1)] });
  const y = post(s.q, WRITE_ZEROES, 0, { out: [discardSeg(0, 1)] });
  s.dev.queueNotify(0);
  await used(s.q, 2);
  assert.equal(statusOf(s.q, x), VIRTIO_BLK_S.UNSUPP);
  assert.equal(statusOf(s.q, y), VIRTIO_BLK_S.UNSUPP);
});

test('read-only disks fail writes with IOERR and leave the data alone', async () => {
  const disk = new FakeDisk(SECTORS * 512, true);
  const { q, dev } = setup(disk);
  const w = post(q, VIRTIO_BLK_T.OUT, 0, { out: [new Uint8Array(512).fill(1)] });
  const z = post(q, VIRTIO_BLK_T.WRITE_ZEROES, 0, { out: [discardSeg(0, 1)] });
  const r = post(q, VIRTIO_BLK_T.IN, 0, { inLens: [512] });
  dev.queueNotify(0);
  await used(q, 3);
  assert.equal(statusOf(q, w), VIRTIO_BLK_S.IOERR);
  assert.equal(statusOf(q, z), VIRTIO_BLK_S.UNSUPP); // not offered on a read-only disk
  assert.equal(statusOf(q, r), VIRTIO_BLK_S.OK);
  assert.deepEqual(disk.calls, ['read 0 512']);
});

test('backend failures are IOERR; without FLUSH negotiated every write is followed by a flush', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  const { q, dev } = setup(disk, { features: VIRTIO_F_VERSION_1_BIT });
  const w = post(q, VIRTIO_BLK_T.OUT, 3, { out: [new Uint8Array(512)] });
  dev.queueNotify(0);
  await used(q, 1);
  assert.equal(statusOf(q, w), VIRTIO_BLK_S.OK);
  assert.deepEqual(disk.calls, ['write 1536 512', 'flush']);
  disk.fail = true;
  const r = post(q, VIRTIO_BLK_T.IN, 0, { inLens: [512] });
  const f = post(q, VIRTIO_BLK_T.FLUSH, 0);
  dev.queueNotify(0);
  await used(q, 2);
  assert.equal(statusOf(q, r), VIRTIO_BLK_S.IOERR);
  assert.equal(statusOf(q, f), VIRTIO_BLK_S.IOERR);
});

test('several requests are in flight at once and complete in any order', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  disk.data.set(pattern(SECTORS * 512, 4));
  const { q, dev } = setup(disk);
  disk.hold = true;
  const chains = [0, 1, 2].map((s) => post(q, VIRTIO_BLK_T.IN, s * 8, { inLens: [4096] }));
  dev.queueNotify(0);
  await ticks();
  assert.equal(disk.calls.length, 3, 'all three reached the backend');
  assert.equal(q.takeUsed().length, 0);
  // Complete the last first.
  disk.held.splice(2, 1)[0]!();
  await ticks();
  assert.deepEqual(q.takeUsed().map((u) => u.id), [chains[2]!.head]);
  disk.releaseAll();
  await ticks();
  assert.deepEqual(q.takeUsed().map((u) => u.id).sort(), [chains[0]!.head, chains[1]!.head].sort());
  for (const [i, c] of chains.entries()) assert.deepEqual(q.readBuffer(c.buffers[1]!), disk.data.subarray(i * 4096, i * 4096 + 4096));
});

test('reset drops in-flight completions without touching guest memory; new requests wait for the old I/O', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  disk.data.fill(0xaa);
  const { ram, q, dev } = setup(disk);
  disk.hold = true;
  post(q, VIRTIO_BLK_T.IN, 0, { inLens: [4096] });
  post(q, VIRTIO_BLK_T.OUT, 16, { out: [new Uint8Array(512).fill(0xbb)] });
  dev.queueNotify(0);
  await ticks();
  assert.equal(disk.held.length, 2);
  dev.reset();
  // Re-activated on a fresh queue while the old I/O still runs.
  const q2 = new MockSplitQueue(ram, 64);
  activateDevice(dev, ram, [q2], VIRTIO_F_VERSION_1_BIT | dev.features);
  const after = ram.snapshot();
  const c = post(q2, VIRTIO_BLK_T.IN, 16, { inLens: [512] });
  dev.queueNotify(0);
  await ticks();
  assert.equal(disk.calls.length, 2, 'the new request waits for the old generation');
  disk.hold = false;
  disk.held.splice(0, 1)[0]!(); // the old read completes
  await ticks();
  assert.deepEqual(ram.changedBytes(after).filter((a) => !isIn(a, q2, c)), []);
  assert.equal(q.usedIdx(), 0, 'nothing returned on the old queue');
  assert.equal(disk.calls.length, 2);
  disk.releaseAll(); // the old write completes: now the new read runs and sees it
  await used(q2, 1);
  assert.equal(statusOf(q2, c), VIRTIO_BLK_S.OK);
  assert.deepEqual(q2.readBuffer(c.buffers[1]!), new Uint8Array(512).fill(0xbb));
});

test('drain() waits for every request in flight, of old generations too and those their end lets start; saveState refuses until then', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  const { ram, q, dev } = setup(disk);
  assert.deepEqual(dev.saveState(), { capacity: String(SECTORS), halted: false });
  disk.hold = true;
  post(q, VIRTIO_BLK_T.OUT, 0, { out: [new Uint8Array(512)] });
  dev.queueNotify(0);
  await ticks();
  dev.reset();
  const q2 = new MockSplitQueue(ram, 64);
  activateDevice(dev, ram, [q2], VIRTIO_F_VERSION_1_BIT | dev.features);
  post(q2, VIRTIO_BLK_T.IN, 0, { inLens: [512] });
  dev.queueNotify(0); // waits for the old generation's write
  let drained = false;
  const drain = dev.drain().then(() => { drained = true; });
  assert.throws(() => dev.saveState(), (e) => e instanceof SnapshotError && /requests in flight/.test(e.message));
  disk.held.splice(0)[0]!(); // the old write ends: the new read starts, and is held
  await ticks();
  assert.equal(disk.held.length, 1);
  assert.equal(drained, false);
  disk.releaseAll();
  await drain;
  assert.equal(q2.usedIdx(), 1, 'drained only once the read that followed was done');
  assert.deepEqual(dev.saveState(), { capacity: String(SECTORS), halted: false });
});

test('snapshot state: another disk size is refused; a restored device serves from where it was once notified', async () => {
  const disk = new FakeDisk(SECTORS * 512);
  disk.data.fill(0x5a);
  const { ram, q, dev } = setup(disk);
  const other = new VirtioBlk(new FakeDisk(2 * SECTORS * 512));
  assert.throws(() => other.prepareLoad(dev.saveState()), (e) => e instanceof SnapshotError && /had 2048 sectors, this one has 4096/.test(e.message));
  assert.throws(() => dev.prepareLoad({ capacity: String(SECTORS) }), (e) => e instanceof SnapshotError && /bad field 'halted'/.test(e.message));
  const copy = new VirtioBlk(disk);
  const features = VIRTIO_F_VERSION_1_BIT | dev.features;
  const queue = new SplitVirtqueue(ram.mem, 0, q.layout, features, { interrupt() {}, malformed() {} });
  copy.prepareLoad(dev.saveState())({ mem: ram.mem, queues: [queue], interrupt: { queue() {}, config() {} }, features, needsReset() {} });
  const c = post(q, VIRTIO_BLK_T.IN, 0, { inLens: [512] });
  await ticks();
  assert.equal(q.usedIdx(), 0, 'restoring starts nothing');
  copy.queueNotify(0);
  await used(q, 1);
  assert.deepEqual(q.readBuffer(c.buffers[1]!), new Uint8Array(512).fill(0x5a));
});

/** True if guest address `a` is part of `q`'s rings or `c`'s buffers (what the new request may change). */
function isIn(a: number, q: MockSplitQueue, c: MockChain): boolean {
  const areas = [[q.desc, 16 * q.size], [q.driver, 6 + 2 * q.size], [q.device, 6 + 8 * q.size], ...c.buffers.map((b) => [b.addr, b.len])];
  return areas.some(([s, l]) => a >= s! && a < s! + l!);
}
