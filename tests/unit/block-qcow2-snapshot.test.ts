/**
 * qcow2 internal snapshots (src/block/qcow2-snapshot.ts) without QEMU: the API (create,
 * list, apply, delete, errors), random writes interleaved with snapshot operations
 * against an in-memory model of the disk and of every snapshot, refcount overflow, and
 * malformed snapshot tables (a one-line UserError at open) or snapshot L1 tables (a
 * BlockSnapshotError that leaves the image as it was).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { BlockSnapshotError, openBlockBackend, type BlockBackend } from '../../src/block/block.js';
import { createQcow2, type Qcow2CreateOptions } from '../../src/block/qcow2.js';
import { UserError } from '../../src/system/options.js';
import { pattern, randomSnapshots, readAll, same, snaps, tempDir } from './block-helpers.js';

const MiB = 1 << 20;

function open(file: string, readOnly = false): Promise<BlockBackend> {
  return openBlockBackend({ file, readOnly, cache: 'writeback' });
}

function peek(file: string, pos: number, len: number): DataView {
  const b = new Uint8Array(len);
  const fd = openSync(file, 'r');
  readSync(fd, b, 0, len, pos);
  closeSync(fd);
  return new DataView(b.buffer);
}

function poke(file: string, pos: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, pos);
  closeSync(fd);
}

const be = (bits: 16 | 32 | 64, v: number | bigint) => {
  const b = new Uint8Array(bits / 8);
  const dv = new DataView(b.buffer);
  if (bits === 16) dv.setUint16(0, Number(v));
  else if (bits === 32) dv.setUint32(0, Number(v));
  else dv.setBigUint64(0, BigInt(v));
  return b;
};

test('qcow2 snapshots: create, list, apply and delete; ids, names, errors', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('a.qcow2');
    await createQcow2(img, { size: 4 * MiB, clusterBits: 12 });
    let q = await open(img);
    const s = snaps(q);
    assert.deepEqual(s.list(), []);
    const one = pattern(300000, 1);
    await q.write(1000, one);
    const date = new Date('2026-01-02T03:04:05.678Z');
    const a = await s.create('first', { date, vmClockNs: 90_000_000_123 });
    assert.deepEqual(a, { id: '1', name: 'first', date, vmClockNs: 90_000_000_123, vmStateSize: 0 });
    const atFirst = await readAll(q);
    await q.write(200000, pattern(400000, 2));
    await q.writeZeroes(0, 4096 * 3);
    await q.discard(1 << 20, 1 << 20);
    const atSecond = await readAll(q);
    assert.equal((await s.create('second')).id, '2');
    await q.write(0, pattern(4 * MiB, 3));
    await s.apply('first');
    await same(q, atFirst, 'after apply first');
    await s.apply('2'); // by id
    await same(q, atSecond, 'after apply 2');
    await q.close();

    // The snapshots and the reverted disk persist; a name may repeat (ids stay unique).
    q = await open(img);
    assert.deepEqual(snaps(q).list().map((x) => [x.id, x.name]), [['1', 'first'], ['2', 'second']]);
    assert.deepEqual(snaps(q).list()[0].date, date);
    await same(q, atSecond, 'after reopening');
    assert.equal((await snaps(q).create('first')).id, '3');
    await snaps(q).delete('1');
    await snaps(q).apply('first'); // now the id-3 one
    await same(q, atSecond, 'after apply of the second "first"');
    await snaps(q).delete('first');
    await snaps(q).delete('second');
    assert.deepEqual(snaps(q).list(), []);
    await same(q, atSecond, 'after deleting them all');
    assert.equal((await snaps(q).create('again')).id, '1');

    // Errors: one line, the dedicated class, the image still usable.
    const fails = async (p: Promise<unknown>, re: RegExp) => {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof BlockSnapshotError, String(e));
        assert.ok(!e.message.includes('\n') && e.message.includes(img), e.message);
        assert.match(e.message, re);
        return true;
      });
    };
    await fails(snaps(q).apply('nope'), /no snapshot 'nope'/);
    await fails(snaps(q).delete('nope'), /no snapshot 'nope'/);
    await fails(snaps(q).create(''), /invalid snapshot name/);
    await fails(snaps(q).create('x'.repeat(256)), /invalid snapshot name/);
    await fails(snaps(q).create('a\nb'), /invalid snapshot name/);
    await fails(snaps(q).create('d', { date: new Date(-1) }), /date/);
    await fails(snaps(q).create('c', { vmClockNs: -1 }), /VM clock/);
    await q.write(0, one);
    await q.close();
    const ro = await open(img, true);
    assert.equal(snaps(ro).list().length, 1);
    await fails(snaps(ro).create('x'), /read-only/);
    await fails(snaps(ro).apply('again'), /read-only/);
    await fails(snaps(ro).delete('again'), /read-only/);
    await ro.close();

    writeFileSync(tmp.path('r.raw'), new Uint8Array(4096));
    const raw = await open(tmp.path('r.raw'));
    assert.equal(raw.snapshots, undefined);
    await raw.close();
  } finally {
    tmp.remove();
  }
});

test('qcow2 snapshots: of the top image of a backing chain; requests wait for a snapshot operation', async () => {
  const tmp = tempDir();
  try {
    const base = pattern(2 * MiB, 5);
    writeFileSync(tmp.path('base.raw'), base);
    await createQcow2(tmp.path('top.qcow2'), { size: 2 * MiB, clusterBits: 16, backingFile: 'base.raw', backingFormat: 'raw' });
    const q = await open(tmp.path('top.qcow2'));
    // A write in flight when the snapshot is asked for is in it.
    await Promise.all([q.write(70000, new Uint8Array(100).fill(0xee)), snaps(q).create('s')]);
    const want = base.slice();
    want.fill(0xee, 70000, 70100);
    await q.writeZeroes(0, MiB);
    await q.write(MiB + 5, pattern(5000, 6));
    // Requests issued alongside run before or after the apply, never in the middle.
    const later = new Uint8Array(2 * MiB);
    await Promise.all([snaps(q).apply('s'), q.read(0, later)]);
    await same(q, want, 'after apply');
    assert.deepEqual(later, want);
    await q.close();
    assert.deepEqual(new Uint8Array(readFileSync(tmp.path('base.raw'))), base);
  } finally {
    tmp.remove();
  }
});

test('qcow2 snapshots: random writes and snapshot operations match a model (versions, cluster sizes, refcount widths)', async () => {
  const tmp = tempDir();
  try {
    const configs: Qcow2CreateOptions[] = [
      { size: 3 * MiB, clusterBits: 9 },
      { size: 3 * MiB + 512, clusterBits: 12, refcountOrder: 6 },
      { size: 4 * MiB, clusterBits: 12, version: 2 },
      { size: 4 * MiB, clusterBits: 16, refcountOrder: 3 },
    ];
    for (const [i, c] of configs.entries()) {
      const img = tmp.path(`${i}.qcow2`);
      await createQcow2(img, c);
      const { active, snapshots } = await randomSnapshots(img, i + 1, 150);
      // Every snapshot holds what the model says, and so did the disk before.
      const q = await open(img);
      await same(q, active, `seed ${i + 1}: at the end`);
      for (const [name, data] of snapshots) {
        await snaps(q).apply(name);
        await same(q, data, `seed ${i + 1}: snapshot ${name}`);
      }
      await q.close();
    }
  } finally {
    tmp.remove();
  }
});

test('qcow2 snapshots: a refcount that would overflow refuses the snapshot and leaves the image as it was', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('rc.qcow2');
    await createQcow2(img, { size: MiB, clusterBits: 12, refcountOrder: 1 }); // at most 3
    const q = await open(img);
    const data = pattern(MiB, 4);
    await q.write(0, data);
    await snaps(q).create('a');
    await snaps(q).create('b');
    const before = readFileSync(img);
    await assert.rejects(snaps(q).create('c'), (e: unknown) => e instanceof BlockSnapshotError && /would exceed 3 \(refcount_bits=2\)/.test(e.message));
    // Only free clusters were written: the image reads (and is) the same, and stays writable.
    assert.deepEqual(snaps(q).list().map((x) => x.name), ['a', 'b']);
    assert.deepEqual(readFileSync(img).subarray(0, before.length), before);
    await q.write(0, new Uint8Array(4096).fill(1));
    await snaps(q).delete('a');
    await snaps(q).create('c');
    await snaps(q).apply('b');
    await same(q, data, 'snapshot b');
    await q.close();
  } finally {
    tmp.remove();
  }
});

test('qcow2 snapshots: malformed snapshot tables are one-line UserErrors naming the file', async () => {
  const tmp = tempDir();
  try {
    // A 64 KiB-cluster image with two snapshots; the table is then broken in one place.
    const good = tmp.path('good.qcow2');
    await createQcow2(good, { size: 4 * MiB });
    const q = await open(good);
    await q.write(0, pattern(200000, 1));
    await snaps(q).create('one');
    await snaps(q).create('two');
    await q.close();
    const table = Number(peek(good, 64, 8).getBigUint64(0));
    const second = table + Math.ceil((40 + 24 + 1 + 3) / 8) * 8;
    let n = 0;
    /** A copy of the good image with `edits` made (and cut to `length` bytes), refused read-only and read-write. */
    const refused = async (edits: [number, Uint8Array][], re: RegExp, length?: number) => {
      const f = tmp.path(`bad${n++}.qcow2`);
      writeFileSync(f, readFileSync(good));
      for (const [pos, bytes] of edits) poke(f, pos, bytes);
      if (length !== undefined) truncateSync(f, length);
      for (const readOnly of [true, false]) {
        await assert.rejects(open(f, readOnly), (e: unknown) => {
          assert.ok(e instanceof UserError, String(e));
          assert.ok(e.message.includes(f) && !e.message.includes('\n'), e.message);
          assert.match(e.message, re);
          return true;
        });
      }
    };
    const size = readFileSync(good).length;
    await refused([[60, be(32, 65537)]], /too many snapshots/);
    await refused([[64, be(64, table + 8)]], /invalid snapshot table offset/);
    await refused([[64, be(64, 0)]], /invalid snapshot table offset/);
    await refused([[64, be(64, Math.ceil(size / 65536) * 65536 + 65536)]], /entry 0: runs past the end of the file/);
    await refused([], /entry 0: runs past the end of the file/, table + 50);
    await refused([[table + 36, be(32, 1025)]], /entry 0: too much extra data/);
    await refused([[second + 64, Uint8Array.of(0x31)]], /entry 1: duplicate id '1'/);
    await refused([[second + 65, Uint8Array.of(0xff)]], /entry 1: name is not UTF-8/);
    await refused([[second + 65, Uint8Array.of(0)]], /entry 1: name holds a NUL byte/);
    await refused([[table, be(64, 4096)]], /entry 0: L1 table offset 4096 is not cluster-aligned/);
    await refused([[table + 8, be(32, 5 << 20)]], /entry 0: L1 table too large/);
    await refused([[table, be(64, 1n << 40n)]], /entry 0: L1 table at 1099511627776 is outside the file/);
  } finally {
    tmp.remove();
  }
});

test('qcow2 snapshots: a snapshot whose L1 table is broken fails to apply or delete and leaves the image as it was', async () => {
  const tmp = tempDir();
  try {
    const img = tmp.path('l1.qcow2');
    await createQcow2(img, { size: 4 * MiB, clusterBits: 12 });
    let q = await open(img);
    const data = pattern(4 * MiB, 8);
    await q.write(0, data);
    await snaps(q).create('s');
    await q.close();
    const entry = Number(peek(img, 64, 8).getBigUint64(0));
    const l1 = Number(peek(img, entry, 8).getBigUint64(0));
    const refcountTable = Number(peek(img, 48, 8).getBigUint64(0));
    for (const [bad, re] of [
      [0x8000000000000003n, /L1 table entry 1 of snapshot 's'/],
      [1n << 40n, /L2 table at 1099511627776 is outside the file/],
      [BigInt(refcountTable), /is both metadata and an L2 table/],
      [peek(img, l1, 8).getBigUint64(0), /appears twice in one L1 table/],
    ] as const) {
      poke(img, l1 + 8, be(64, bad));
      const before = readFileSync(img);
      const what = String(re);
      const refused = (e: unknown) => e instanceof BlockSnapshotError && re.test(e.message) && e.message.includes(img);
      q = await open(img);
      await assert.rejects(snaps(q).apply('s'), refused, what);
      await q.close();
      assert.deepEqual(readFileSync(img), before, `${what}: the image is unchanged`);
      q = await open(img);
      await assert.rejects(snaps(q).delete('s'), refused, what);
      await q.close();
      assert.deepEqual(readFileSync(img), before, `${what}: the image is unchanged`);
    }
    q = await open(img, true);
    await same(q, data, 'the active disk');
    await q.close();
  } finally {
    tmp.remove();
  }
});
