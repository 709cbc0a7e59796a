/**
 * Tests for the block layer's common part and raw images (src/block/block.ts,
 * src/block/raw.ts, src/block/file.ts): probing, round trips, read-only, write
 * zeroes, discard, flush, range checks and open errors.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { openBlockBackend, checkRange, BlockIOError } from '../../src/block/block.js';
import { UserError } from '../../src/system/options.js';
import { pattern, tempDir } from './block-helpers.js';

const MiB = 1 << 20;

test('raw: probed, round trip at unaligned offsets, visible in the file', async () => {
  const tmp = tempDir();
  try {
    const f = tmp.path('disk.img');
    writeFileSync(f, new Uint8Array(MiB));
    const b = await openBlockBackend({ file: f, readOnly: false, cache: 'writeback' });
    assert.equal(b.format, 'raw');
    assert.equal(b.size, MiB);
    assert.equal(b.readOnly, false);
    const data = pattern(70000, 1);
    await b.write(12345, data);
    const back = new Uint8Array(70000);
    await b.read(12345, back);
    assert.deepEqual(back, data);
    await b.flush();
    await b.close();
    assert.deepEqual(new Uint8Array(readFileSync(f).subarray(12345, 12345 + 70000)), data);
  } finally {
    tmp.remove();
  }
});

test('raw: read-only refuses writes, write-zeroes and discard, and leaves the file alone', async () => {
  const tmp = tempDir();
  try {
    const f = tmp.path('ro.img');
    const orig = pattern(64 * 1024, 2);
    writeFileSync(f, orig);
    const b = await openBlockBackend({ file: f, format: 'raw', readOnly: true, cache: 'writeback' });
    assert.equal(b.readOnly, true);
    await assert.rejects(b.write(0, new Uint8Array(512)), BlockIOError);
    await assert.rejects(b.writeZeroes(0, 512), BlockIOError);
    await assert.rejects(b.discard(0, 512), BlockIOError);
    const back = new Uint8Array(512);
    await b.read(512, back);
    assert.deepEqual(back, orig.subarray(512, 1024));
    await b.flush();
    await b.close();
    assert.deepEqual(new Uint8Array(readFileSync(f)), orig);
  } finally {
    tmp.remove();
  }
});

test('raw: write-zeroes really zeroes (beyond one zero chunk); discard keeps the data readable', async () => {
  const tmp = tempDir();
  try {
    const f = tmp.path('z.img');
    const orig = pattern(4 * MiB, 3);
    writeFileSync(f, orig);
    const b = await openBlockBackend({ file: f, readOnly: false, cache: 'unsafe' });
    assert.equal(b.discardGranularity, 0);
    await b.writeZeroes(1000, 2 * MiB + 7);
    await b.discard(0, 4 * MiB);
    await b.flush();
    await b.close();
    const now = readFileSync(f);
    assert.deepEqual(new Uint8Array(now.subarray(0, 1000)), orig.subarray(0, 1000));
    assert.ok(now.subarray(1000, 1000 + 2 * MiB + 7).every((x) => x === 0));
    assert.deepEqual(new Uint8Array(now.subarray(1000 + 2 * MiB + 7)), orig.subarray(1000 + 2 * MiB + 7));
  } finally {
    tmp.remove();
  }
});

test('raw: requests outside the disk, huge or not integers are I/O errors', async () => {
  const tmp = tempDir();
  try {
    const f = tmp.path('r.img');
    writeFileSync(f, new Uint8Array(8192));
    const b = await openBlockBackend({ file: f, readOnly: false, cache: 'writeback' });
    for (const [off, len] of [[-1, 1], [8192 - 511, 512], [8192, 1], [2 ** 53, 1], [NaN, 1], [0.5, 1], [Number.MAX_SAFE_INTEGER, 2]]) {
      await assert.rejects(b.read(off, new Uint8Array(len)), BlockIOError, `read ${off}+${len}`);
      await assert.rejects(b.write(off, new Uint8Array(len)), BlockIOError, `write ${off}+${len}`);
      await assert.rejects(b.writev!(off, [new Uint8Array(len)]), BlockIOError, `writev ${off}+${len}`);
    }
    await assert.rejects(b.writeZeroes(0, 2 ** 60), BlockIOError);
    await assert.rejects(b.writeZeroes(4096, -1), BlockIOError);
    await assert.rejects(b.discard(8000, 1000), BlockIOError);
    // Zero-length requests at the very end are fine.
    await b.read(8192, new Uint8Array(0));
    await b.close();
    assert.doesNotThrow(() => checkRange(10, 10, 0));
    assert.throws(() => checkRange(10, 5, 6), BlockIOError);
  } finally {
    tmp.remove();
  }
});

test('open errors are one-line UserErrors naming the file', async () => {
  const tmp = tempDir();
  try {
    mkdirSync(tmp.path('dir'));
    for (const file of [tmp.path('missing.img'), tmp.path('dir')]) {
      await assert.rejects(openBlockBackend({ file, readOnly: false, cache: 'writeback' }), (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.ok(e.message.includes(file), e.message);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
    await assert.rejects(openBlockBackend({ file: tmp.path('missing.img'), readOnly: true, cache: 'none' }), /No such file or directory/);
  } finally {
    tmp.remove();
  }
});
