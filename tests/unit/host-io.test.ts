/**
 * Tests for the block I/O thread, the reads served from the host's page cache without it,
 * and the main loop's polling (src/block/host-io.ts, src/block/host-io-thread.ts,
 * src/block/nowait-read.ts, src/block/file.ts, src/system/io-poll.ts): which requests the
 * thread serves, that reads and writes match the file, short reads at the end of the file,
 * more requests than the thread has slots, and pollIoBriefly's contract.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import koffi from 'koffi';
import { HostFile } from '../../src/block/file.js';
import { HOST_IO_MAX_BYTES, HOST_IO_SLOTS, hostIo } from '../../src/block/host-io.js';
import { addPolledIo, pollIoBriefly } from '../../src/system/io-poll.js';
import { pattern, reachedThread, tempDir } from './block-helpers.js';

/** Drops the file's pages from the host's page cache (posix_fadvise DONTNEED after a sync), so that a read must wait for the disk. */
function evict(path: string): void {
  const fadvise = koffi.load('libc.so.6').func('int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)') as
    (fd: number, offset: number, len: number, advice: number) => number;
  const fd = openSync(path, 'r');
  try {
    fdatasyncSync(fd);
    assert.equal(fadvise(fd, 0, 0, 4 /* POSIX_FADV_DONTNEED */), 0);
  } finally {
    closeSync(fd);
  }
}

const linux = process.platform === 'linux';

test('block I/O: the thread serves writes up to its slot size, libuv the larger ones from plain memory; reads the page cache holds are served at once; all match the file', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('disk.img');
    writeFileSync(path, new Uint8Array(1 << 20));
    const f = await HostFile.open(path, false);
    const cases: [number, number][] = [[1, 7], [4096, 4096], [5000, 123457], [HOST_IO_MAX_BYTES, 300001], [HOST_IO_MAX_BYTES + 1, 600000]];
    for (const [i, [len, pos]] of cases.entries()) {
      const onThread = len <= HOST_IO_MAX_BYTES;
      const data = pattern(len, i + 1);
      let before = hostIo().completed;
      await f.write(data, pos);
      assert.equal(hostIo().completed - before, onThread ? 1 : 0, `write of ${len} bytes on the thread: ${onThread}`);
      assert.deepEqual(new Uint8Array(readFileSync(path).subarray(pos, pos + len)), data);
      const back = new Uint8Array(len);
      before = hostIo().completed;
      await f.read(back, pos);
      // Just written, so cached: read with RWF_NOWAIT on Linux; elsewhere as the write went.
      assert.equal(hostIo().completed - before, !linux && onThread ? 1 : 0, `read of ${len} bytes on the thread`);
      assert.deepEqual(back, data);
    }
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('block I/O: a write of several buffers (views of shared memory and plain ones, an empty one) lands as their concatenation, on the thread up to its slot size and through libuv above', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('disk.img');
    writeFileSync(path, new Uint8Array(1 << 20));
    const f = await HostFile.open(path, false);
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 19));
    for (const [i, total] of [4096, HOST_IO_MAX_BYTES, HOST_IO_MAX_BYTES + 4096, 3 * HOST_IO_MAX_BYTES].entries()) {
      const data = pattern(total, i + 11);
      // Far apart and out of order in the shared buffer, as guest pages are.
      const a = shared.subarray(520000, 520000 + 1000);
      const c = shared.subarray(10, 10 + total - 1000 - 512);
      a.set(data.subarray(0, 1000));
      const b = data.slice(1000, 1512);
      c.set(data.subarray(1512));
      const pos = 4096 * (i + 1) + 512;
      const before = hostIo().completed;
      await f.writev([a, new Uint8Array(0), b, c], pos);
      assert.equal(hostIo().completed - before, total <= HOST_IO_MAX_BYTES ? 1 : 0, `write of ${total} bytes on the thread`);
      assert.deepEqual(new Uint8Array(readFileSync(path).subarray(pos, pos + total)), data);
    }
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('block I/O: a write larger than a slot, all from shared memory (scattered views, an empty one), goes to the thread at once and lands in order', { skip: !linux && 'the thread calls pwritev through koffi (libc.so.6)' }, async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('disk.img');
    writeFileSync(path, new Uint8Array(4 << 20));
    const f = await HostFile.open(path, false);
    const shared = new Uint8Array(new SharedArrayBuffer(2 << 20));
    const total = (1 << 20) + 1000;
    const data = pattern(total, 31);
    // 4 KiB views in reverse order through the shared buffer, as a guest's pages may be.
    const views: Uint8Array[] = [];
    for (let at = 0, page = 400; at < total; at += 4096, page--) {
      const v = shared.subarray(page * 4096, page * 4096 + Math.min(4096, total - at));
      v.set(data.subarray(at, at + v.length));
      views.push(v, shared.subarray(0, 0));
    }
    const before = hostIo().completed;
    const write = f.writev(views, 12345);
    assert.ok(reachedThread(before), 'submitted before the call returned');
    await write;
    assert.equal(hostIo().completed - before, 1, 'on the thread');
    assert.deepEqual(new Uint8Array(readFileSync(path).subarray(12345, 12345 + total)), data);
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('block I/O: a cached read at once fills buffers scattered over shared memory and plain buffers, in file order', { skip: !linux && 'RWF_NOWAIT is a Linux flag' }, async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('scatter.img');
    const content = pattern(1 << 20, 7);
    writeFileSync(path, content);
    const f = await HostFile.open(path, true);
    const ram = new Uint8Array(new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true }).buffer);
    const plain = new Uint8Array(3 * 4096);
    // Guest pages out of order and apart, a plain buffer's middle (its own base), sizes that are not pages,
    // and first an empty view (guest RAM is first seen through it).
    const dsts = [ram.subarray(5 * 4096, 5 * 4096), ram.subarray(40 * 4096, 41 * 4096), ram.subarray(3 * 4096, 4 * 4096 + 100), plain.subarray(4096, 8192),
      ram.subarray(17 * 4096 + 1, 17 * 4096 + 513), ...Array.from({ length: 200 }, (_, i) => ram.subarray((300 - (i % 50)) * 4096 + i * 16, (300 - (i % 50)) * 4096 + i * 16 + 16))];
    for (const pos of [0, 123457]) {
      ram.fill(0xee);
      plain.fill(0xee);
      assert.equal(f.readNow(dsts, pos), true, 'just written: cached');
      let at = pos;
      for (const [i, d] of dsts.entries()) {
        assert.deepEqual(d, content.subarray(at, at + d.length), `buffer ${i}`);
        at += d.length;
      }
      assert.ok(plain.subarray(0, 4096).every((b) => b === 0xee) && plain.subarray(8192).every((b) => b === 0xee), 'nothing outside the views');
    }
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('block I/O: a read the page cache cannot serve at once goes to the thread (up to its slot size) or libuv', { skip: !linux && 'RWF_NOWAIT and posix_fadvise are Linux calls' }, async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('cold.img');
    const content = pattern(1 << 20, 42);
    writeFileSync(path, content);
    const f = await HostFile.open(path, true);
    for (const [len, pos] of [[4096, 8192], [HOST_IO_MAX_BYTES, 300001], [HOST_IO_MAX_BYTES + 1, 600000]] as const) {
      evict(path);
      const back = new Uint8Array(len);
      const before = hostIo().completed;
      await f.read(back, pos);
      assert.equal(hostIo().completed - before, len <= HOST_IO_MAX_BYTES ? 1 : 0, `read of ${len} bytes on the thread`);
      assert.deepEqual(back, content.subarray(pos, pos + len));
    }
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('block I/O thread: a read past the end of the file is zero-filled; a read-only file refuses writes', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('short.img');
    const content = pattern(1000, 9);
    writeFileSync(path, content);
    const f = await HostFile.open(path, true);
    const back = new Uint8Array(4096).fill(0xaa);
    const before = hostIo().completed;
    await f.read(back, 500);
    assert.equal(hostIo().completed - before, 1);
    assert.deepEqual(back.subarray(0, 500), content.subarray(500));
    assert.ok(back.subarray(500).every((b) => b === 0));
    await assert.rejects(f.write(new Uint8Array(16), 0), /read-only/);
    await f.close();
    assert.deepEqual(new Uint8Array(readFileSync(path)), content);
  } finally {
    tmp.remove();
  }
});

test('block I/O thread: more requests at once than it has slots all complete, the rest through libuv', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('many.img');
    const n = HOST_IO_SLOTS * 3;
    writeFileSync(path, new Uint8Array(n * 4096));
    const f = await HostFile.open(path, false);
    const before = hostIo().completed;
    await Promise.all(Array.from({ length: n }, (_, i) => f.write(pattern(4096, 100 + i), i * 4096)));
    const served = hostIo().completed - before;
    assert.ok(served >= HOST_IO_SLOTS && served <= n, `the thread served ${served} of ${n} writes`);
    const file = readFileSync(path);
    const backs = Array.from({ length: n }, () => new Uint8Array(4096));
    await Promise.all(backs.map((b, i) => f.read(b, i * 4096)));
    for (let i = 0; i < n; i++) {
      assert.deepEqual(new Uint8Array(file.subarray(i * 4096, (i + 1) * 4096)), pattern(4096, 100 + i), `write ${i} in the file`);
      assert.deepEqual(backs[i], pattern(4096, 100 + i), `read ${i}`);
    }
    await f.close();
  } finally {
    tmp.remove();
  }
});

test('pollIoBriefly: nothing in flight returns at once; polls until something completes, or for at most the time given', () => {
  let polls = 0;
  let inFlight = false;
  let completeAt = Infinity;
  const stop = addPolledIo({ inFlight: () => inFlight, poll: () => (++polls >= completeAt ? 1 : 0) });
  try {
    pollIoBriefly(1000);
    assert.equal(polls, 0, 'not polled with nothing in flight');
    inFlight = true;
    completeAt = 5;
    pollIoBriefly(60_000);
    assert.equal(polls, 5, 'returned at the first completion');
    completeAt = Infinity;
    const t0 = performance.now();
    pollIoBriefly(2);
    assert.ok(performance.now() - t0 >= 2, 'polled until the time was up');
  } finally {
    stop();
  }
});
