/**
 * Tests for qcow2 images (src/block/qcow2.ts) that need no QEMU: round trips over
 * every version, cluster size and refcount width, backing files, zero clusters,
 * concurrency, and malformed images: a broken header is a one-line UserError at open,
 * broken metadata met at run time an I/O error (and no further writes), never a crash.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { openSync, readFileSync, statSync, writeFileSync, writeSync, closeSync, readSync } from 'node:fs';
import { openBlockBackend, BlockIOError, type BlockBackend } from '../../src/block/block.js';
import { createQcow2, parseQcow2Header } from '../../src/block/qcow2.js';
import { hostIo } from '../../src/block/host-io.js';
import { UserError } from '../../src/system/options.js';
import { firstDifference, pattern, randomWorkload, reachedThread, tempDir } from './block-helpers.js';

const MiB = 1 << 20;

function open(file: string, readOnly = false, format?: 'raw' | 'qcow2'): Promise<BlockBackend> {
  return openBlockBackend({ file, format, readOnly, cache: 'writeback' });
}

/** Overwrites bytes of `file` at `pos`. */
function poke(file: string, pos: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, pos);
  closeSync(fd);
}

/** Reads the whole disk back, which must be `model`, then closes it. */
async function matchesAndClose(q: BlockBackend, model: Uint8Array): Promise<void> {
  const all = new Uint8Array(model.length);
  await q.read(0, all);
  assert.deepEqual(all, model);
  await q.close();
}

function peek(file: string, pos: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const fd = openSync(file, 'r');
  readSync(fd, b, 0, len, pos);
  closeSync(fd);
  return b;
}

const be32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
};
const be64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
};

/** Asserts that opening `file` fails with a one-line UserError naming it and matching `re`. */
async function refused(file: string, re: RegExp, readOnly = false): Promise<void> {
  await assert.rejects(open(file, readOnly), (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${String(e)}`);
    assert.ok(e.message.includes(file), e.message);
    assert.ok(!e.message.includes('\n'), e.message);
    assert.match(e.message, re);
    return true;
  });
}

test('qcow2: round trips for v2/v3, cluster sizes 512 B to 2 MiB, refcount widths 1 to 64 bits', async () => {
  const tmp = tempDir();
  try {
    const configs: { version: 2 | 3; clusterBits: number; refcountOrder: number }[] = [
      { version: 2, clusterBits: 16, refcountOrder: 4 },
      { version: 2, clusterBits: 9, refcountOrder: 4 },
      { version: 3, clusterBits: 21, refcountOrder: 4 },
      ...[0, 1, 2, 3, 4, 5, 6].map((refcountOrder) => ({ version: 3 as const, clusterBits: 12, refcountOrder })),
    ];
    for (const [i, c] of configs.entries()) {
      const img = tmp.path(`${i}.qcow2`);
      const raw = tmp.path(`${i}.raw`);
      const size = 6 * MiB + 512;
      await createQcow2(img, { size, ...c });
      writeFileSync(raw, new Uint8Array(size));
      let q = await open(img);
      const m = await open(raw);
      assert.equal(q.format, 'qcow2');
      assert.equal(q.size, size);
      await randomWorkload(q, m, { seed: i + 1, ops: 40, maxLen: 100 * 1024, zeroes: true });
      await q.close();
      q = await open(img, true);
      assert.equal(await firstDifference(q, m), -1, JSON.stringify(c));
      await q.close();
      await m.close();
    }
  } finally {
    tmp.remove();
  }
});

test('qcow2: reads through a backing file (relative name), copies partial clusters on write, leaves the base alone', async () => {
  const tmp = tempDir();
  try {
    const base = pattern(3 * MiB, 11);
    writeFileSync(tmp.path('base.raw'), base);
    await createQcow2(tmp.path('top.qcow2'), { size: 4 * MiB, backingFile: 'base.raw' }); // format probed
    const q = await open(tmp.path('top.qcow2'));
    const all = new Uint8Array(4 * MiB);
    await q.read(0, all);
    assert.deepEqual(all.subarray(0, 3 * MiB), base);
    assert.ok(all.subarray(3 * MiB).every((x) => x === 0), 'past the backing file: zeros');
    // A 100-byte write in the middle of a cluster keeps the rest of the cluster.
    await q.write(70000, new Uint8Array(100).fill(0xee));
    const back = new Uint8Array(65536);
    await q.read(65536, back);
    const want = base.slice(65536, 131072);
    want.fill(0xee, 70000 - 65536, 70100 - 65536);
    assert.deepEqual(back, want);
    // Zeroing whole clusters hides the backing file; a partial zeroing writes zeros.
    await q.writeZeroes(131072, 65536 * 2);
    await q.writeZeroes(1000, 24);
    await q.discard(MiB, 65536);
    await q.read(0, all);
    assert.ok(all.subarray(131072, 131072 * 2).every((x) => x === 0));
    assert.ok(all.subarray(1000, 1024).every((x) => x === 0));
    assert.deepEqual(all.subarray(0, 1000), base.subarray(0, 1000));
    assert.ok(all.subarray(MiB, MiB + 65536).every((x) => x === 0));
    assert.deepEqual(all.subarray(MiB + 65536, 3 * MiB), base.subarray(MiB + 65536));
    await q.close();
    assert.deepEqual(new Uint8Array(readFileSync(tmp.path('base.raw'))), base);
  } finally {
    tmp.remove();
  }
});

test('qcow2: a partial write to a cluster that reads as zeros writes the new bytes alone past the end of the file, the whole cluster where old data lies', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('z.qcow2');
    await createQcow2(img, { size: 4 * MiB, clusterBits: 16 });
    const q = await open(img);
    const size = () => statSync(img).size;
    // A fresh cluster at the end of the file: 4 KiB lands 8 KiB into it, nothing after.
    await q.write(0, new Uint8Array(65536).fill(0xaa)); // guest cluster 0
    const before = size();
    await q.write(3 * 65536 + 8192, new Uint8Array(4096).fill(0x55));
    assert.equal(size(), before + 8192 + 4096, 'the new cluster is the last, holding 12 KiB');
    // Guest cluster 0's host cluster freed (discard, written back by flush), then taken
    // again by a partial write elsewhere: zeros around the new bytes, not the old 0xaa.
    await q.discard(0, 65536);
    await q.flush();
    await q.write(2 * 65536 + 100, new Uint8Array(50).fill(0x77));
    const back = new Uint8Array(4 * 65536);
    await q.read(0, back);
    const want = new Uint8Array(4 * 65536);
    want.fill(0x77, 2 * 65536 + 100, 2 * 65536 + 150);
    want.fill(0x55, 3 * 65536 + 8192, 3 * 65536 + 12288);
    assert.deepEqual(back, want);
    await q.close();
    const again = await open(img, true);
    const back2 = new Uint8Array(4 * 65536);
    await again.read(0, back2);
    assert.deepEqual(back2, want, 'after reopening');
    await again.close();
  } finally {
    tmp.remove();
  }
});

test('qcow2: parallel overlapping requests complete in order of submission', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('p.qcow2');
    await createQcow2(img, { size: 2 * MiB, clusterBits: 12 });
    const q = await open(img);
    const model = new Uint8Array(2 * MiB);
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const off = (i * 7919) % (2 * MiB - 20000);
      const data = pattern(1 + ((i * 104729) % 20000), i);
      model.set(data, off);
      ops.push(q.write(off, data));
      ops.push(q.read(off, new Uint8Array(data.length)));
    }
    await Promise.all(ops);
    await matchesAndClose(q, model);
  } finally {
    tmp.remove();
  }
});

test('qcow2: a write into allocated clusters reaches the host before the call returns, an allocating one after; both land', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('n.qcow2');
    await createQcow2(img, { size: 2 * MiB });
    const q = await open(img);
    const model = new Uint8Array(2 * MiB);
    const write = (off: number, data: Uint8Array): Promise<void> => {
      model.set(data, off);
      return q.writev!(off, [data.subarray(0, 1000), data.subarray(1000)]);
    };
    await write(0, pattern(2 * 65536, 1)); // allocates clusters 0 and 1
    const before = hostIo().completed;
    const inPlace = write(65536 - 2048, pattern(4096, 2)); // across the two, in place
    assert.ok(reachedThread(before), 'the in-place write was submitted at once');
    await inPlace;
    const allocating = write(5 * 65536 + 512, pattern(4096, 3));
    assert.equal(hostIo().inFlight(), false, 'the allocating write goes after an await');
    await allocating;
    // Overlapping writes, in place and not, still complete in order of submission.
    await Promise.all([write(100, pattern(3000, 4)), write(200, pattern(70000, 5)), write(1000, pattern(500, 6))]);
    await matchesAndClose(q, model);
  } finally {
    tmp.remove();
  }
});

test('qcow2: readNow serves allocated, zero and unallocated clusters at once as read() does; not clusters left to a backing file, nor while a write holds the metadata', async () => {
  const tmp = tempDir();
  try {
    writeFileSync(tmp.path('base.raw'), pattern(MiB, 21));
    await createQcow2(tmp.path('top.qcow2'), { size: 4 * MiB, backingFile: 'base.raw' });
    const q = await open(tmp.path('top.qcow2'));
    await q.write(MiB, pattern(3 * 65536, 22)); // clusters 16-18, past the backing file
    await q.writeZeroes(MiB + 3 * 65536, 65536); // cluster 19 reads as zeros
    /** readNow into three uneven views of one buffer: the bytes, or null if it could not. */
    const now = (off: number, len: number): Uint8Array | null => {
      const dst = new Uint8Array(len);
      const cut = [0, 777, Math.floor(len / 2), len];
      return q.readNow!(off, cut.slice(1).map((end, i) => dst.subarray(cut[i], end))) ? dst : null;
    };
    const off = MiB + 1000;
    const len = 5 * 65536; // allocated, zero, and unallocated past the backing file
    const want = new Uint8Array(len);
    await q.read(off, want);
    assert.deepEqual(now(off, len), want);
    assert.equal(now(4096, 4096), null, 'the backing file holds these bytes');
    const allocating = q.write(2 * MiB, pattern(65536, 23));
    assert.equal(now(MiB, 4096), null, 'a write is allocating clusters');
    await allocating;
    assert.deepEqual(now(MiB, 4096), pattern(3 * 65536, 22).subarray(0, 4096));
    await q.close();
  } finally {
    tmp.remove();
  }
});

test('qcow2: requests outside the disk are I/O errors; read-only images refuse writes', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('b.qcow2');
    await createQcow2(img, { size: MiB });
    const q = await open(img);
    for (const [off, len] of [[-1, 1], [MiB, 1], [MiB - 1, 2], [2 ** 60, 512], [NaN, 0]]) {
      await assert.rejects(q.read(off, new Uint8Array(len)), BlockIOError);
      await assert.rejects(q.write(off, new Uint8Array(len)), BlockIOError);
    }
    await assert.rejects(q.writeZeroes(0, 2 ** 62), BlockIOError);
    await assert.rejects(q.discard(512, MiB), BlockIOError);
    await q.close();
    const ro = await open(img, true);
    await assert.rejects(ro.write(0, new Uint8Array(512)), BlockIOError);
    await assert.rejects(ro.writeZeroes(0, 512), BlockIOError);
    await ro.close();
  } finally {
    tmp.remove();
  }
});

test('qcow2: broken or unsupported headers are one-line UserErrors naming the file', async () => {
  const tmp = tempDir();
  try {
    let n = 0;
    /** A fresh image with `bytes` written at `pos`. */
    const broken = async (pos: number, bytes: Uint8Array, version: 2 | 3 = 3) => {
      const f = tmp.path(`h${n++}.qcow2`);
      await createQcow2(f, { size: 16 * MiB, version });
      poke(f, pos, bytes);
      return f;
    };
    // Without the magic a probe says raw; forcing qcow2 must refuse the file.
    const f0 = await broken(0, be32(0x12345678));
    const probed = await open(f0, true);
    assert.equal(probed.format, 'raw');
    await probed.close();
    await assert.rejects(open(f0, false, 'qcow2'), (e: unknown) => e instanceof UserError && /not a qcow2 image/.test(e.message));
    await refused(await broken(4, be32(4)), /unsupported qcow2 version 4/);
    await refused(await broken(20, be32(30)), /cluster size/);
    await refused(await broken(20, be32(8)), /cluster size/);
    await refused(await broken(32, be32(1)), /encrypted/);
    await refused(await broken(36, be32(0)), /L1 table too small/);
    await refused(await broken(36, be32(0x7fffffff)), /L1 table too large/);
    await refused(await broken(40, be64(1000n)), /L1 table offset/);
    await refused(await broken(48, be64(0n)), /refcount table offset/);
    await refused(await broken(56, be32(100000)), /refcount table size/);
    await refused(await broken(24, be64(1n << 60n)), /too large/);
    await refused(await broken(72, be64(1n << 10n)), /unsupported qcow2 feature\(s\): bit 10/);
    await refused(await broken(72, be64(1n << 2n)), /external data file/);
    await refused(await broken(72, be64(1n << 4n)), /extended L2/);
    await refused(await broken(96, be32(7)), /refcount width/);
    await refused(await broken(100, be32(100)), /header length/);
    await refused(await broken(112, Uint8Array.of(0, 0, 0, 9, 0xff, 0xff, 0xff, 0)), /header extension/);
    // zstd compression (bit 3 and compression_type 1).
    const z = await broken(72, be64(1n << 3n));
    poke(z, 104, Uint8Array.of(1));
    await refused(z, /zstd/);
    // Dirty and corrupt images open read-only only.
    for (const [pos, bytes, re] of [[72, be64(1n), /dirty/], [72, be64(2n), /corrupt/]] as const) {
      const f = await broken(pos, bytes);
      await refused(f, re);
      await (await open(f, true)).close();
    }
    // A corrupt L1 entry.
    const l1 = await broken(0, be32(0x514649fb));
    const l1off = Number(new DataView(peek(l1, 40, 8).buffer).getBigUint64(0));
    poke(l1, l1off, be64(0x12345n));
    await refused(l1, /corrupt L1 table entry 0/, true);
    // Too short to hold a header.
    writeFileSync(tmp.path('short.qcow2'), Uint8Array.of(0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3));
    await refused(tmp.path('short.qcow2'), /too short/);
    // Backing files: missing, json:, an unknown format, itself.
    await createQcow2(tmp.path('nob.qcow2'), { size: MiB, backingFile: 'gone.raw' });
    await refused(tmp.path('nob.qcow2'), /backing file: could not open disk image .*gone\.raw/);
    await createQcow2(tmp.path('json.qcow2'), { size: MiB, backingFile: 'json:{"file":"x"}' });
    await refused(tmp.path('json.qcow2'), /json:/);
    await createQcow2(tmp.path('vmdk.qcow2'), { size: MiB, backingFile: 'x.vmdk', backingFormat: 'vmdk' as 'raw' });
    await refused(tmp.path('vmdk.qcow2'), /backing file format 'vmdk'/);
    await createQcow2(tmp.path('self.qcow2'), { size: MiB, backingFile: 'self.qcow2' });
    await refused(tmp.path('self.qcow2'), /backing chain deeper/, true);
  } finally {
    tmp.remove();
  }
});

test('qcow2: parseQcow2Header reads the fields; unknown auto-clear bits are cleared on a read-write open', async () => {
  const tmp = tempDir();
  try {
    const f = tmp.path('a.qcow2');
    await createQcow2(f, { size: 10 * MiB, clusterBits: 12, refcountOrder: 3 });
    const h = parseQcow2Header(peek(f, 0, 4096), f);
    assert.equal(h.version, 3);
    assert.equal(h.clusterBits, 12);
    assert.equal(h.size, 10 * MiB);
    assert.equal(h.refcountOrder, 3);
    assert.equal(h.l1Size, Math.ceil((10 * MiB) / (4096 * 512)));
    poke(f, 88, be64(3n));
    await (await open(f, true)).close();
    assert.deepEqual(peek(f, 88, 8), be64(3n));
    await (await open(f)).close();
    assert.deepEqual(peek(f, 88, 8), be64(0n));
  } finally {
    tmp.remove();
  }
});

test('qcow2: corrupt L2 entries and compressed data are I/O errors at run time, and stop further writes', async () => {
  const tmp = tempDir();
  try {
    const cases: [string, bigint][] = [
      ['reserved bits', (1n << 63n) | 0x10000n | 0x2n],
      ['unaligned', (1n << 63n) | 0x10200n],
      ['offset 0 copied', 1n << 63n],
      ['garbage compressed', (1n << 62n) | 0x100000n | (3n << 54n)],
    ];
    for (const [name, entry] of cases) {
      const f = tmp.path(`${name.replace(/ /g, '-')}.qcow2`);
      await createQcow2(f, { size: 4 * MiB });
      let q = await open(f);
      await q.write(0, pattern(65536 * 3, 1)); // allocates an L2 table and clusters 0-2
      await q.close();
      const l1off = Number(new DataView(peek(f, 40, 8).buffer).getBigUint64(0));
      const l2off = Number(new DataView(peek(f, l1off, 8).buffer).getBigUint64(0) & 0x00fffffffffffe00n);
      poke(f, l2off + 8, be64(entry)); // guest cluster 1
      poke(f, 0x100000, pattern(2048, 9)); // what "compressed" points at: not deflate
      q = await open(f);
      const buf = new Uint8Array(65536);
      await q.read(0, buf); // cluster 0 is fine
      assert.deepEqual(buf, pattern(65536 * 3, 1).subarray(0, 65536));
      await assert.rejects(q.read(65536, buf), BlockIOError, name);
      if (name !== 'garbage compressed') await assert.rejects(q.write(0, buf), /corrupt metadata/, name);
      await q.close();
    }
  } finally {
    tmp.remove();
  }
});
