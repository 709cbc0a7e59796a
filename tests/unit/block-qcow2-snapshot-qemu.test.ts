/**
 * qcow2 internal snapshots (src/block/qcow2-snapshot.ts) against QEMU, qemu-img as the
 * oracle: snapshots made by Vireo are listed by `qemu-img snapshot -l`, read back by
 * `qemu-img convert -l snapshot.name=`, applied by `qemu-img snapshot -a` to the same
 * disk as Vireo's apply, and `qemu-img check` stays clean; snapshots made by qemu-img
 * are listed, applied and deleted by Vireo, which writes to the image meanwhile; random
 * operations match a model; a writer killed during snapshot operations and writes to
 * shared clusters leaves no corruption. Skipped, saying so, without qemu-img.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openBlockBackend, type BlockBackend } from '../../src/block/block.js';
import { needQemuImg, pattern, qemu, qemuOk, randomSnapshots, randomWorkload, readAll, rng, same, snaps, tempDir } from './block-helpers.js';

const MiB = 1 << 20;

function check(file: string): void {
  const r = qemu('qemu-img', ['check', file]);
  assert.equal(r.status, 0, `qemu-img check ${file}:\n${r.out}`);
  assert.match(r.out, /No errors were found/);
}

/** `qemu-img check` finds nothing worse than leaked clusters (exit 0: clean; 3: leaks, a harmless waste of space). */
function checkNoCorruption(file: string, what: string): void {
  const c = qemu('qemu-img', ['check', file]);
  assert.ok(c.status === 0 || c.status === 3, `${what}: qemu-img check exited ${c.status}:\n${c.out}`);
  assert.doesNotMatch(c.out, /ERROR/);
}

function compare(a: string, b: string, fa = 'qcow2', fb = 'qcow2'): void {
  const r = qemu('qemu-img', ['compare', '-f', fa, '-F', fb, a, b]);
  assert.equal(r.status, 0, `qemu-img compare ${a} ${b}:\n${r.out}`);
}

function open(file: string, readOnly = false): Promise<BlockBackend> {
  return openBlockBackend({ file, readOnly, cache: 'writeback' });
}

/** What qemu-img reads in snapshot `name` of `img`. */
function snapshotData(img: string, name: string, out: string): Uint8Array {
  qemuOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', '-l', `snapshot.name=${name}`, img, out]);
  return new Uint8Array(readFileSync(out));
}

/** The snapshots `qemu-img snapshot -l` lists, as [id, name]. */
function qemuList(img: string): [string, string][] {
  const lines = qemuOk('qemu-img', ['snapshot', '-l', img]).split('\n').slice(2).filter((l) => l.trim() !== '');
  return lines.map((l) => l.trim().split(/\s+/).slice(0, 2) as [string, string]);
}

test('qemu-img: snapshots made by Vireo are listed, read and applied by qemu-img as Vireo applies them', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    for (const [name, opts] of [
      ['v3', []],
      ['v3-4k', ['-o', 'cluster_size=4096']],
      ['v2-512', ['-o', 'compat=0.10,cluster_size=512']],
      ['v3-rc64', ['-o', 'cluster_size=4096,refcount_bits=64']],
    ] as [string, string[]][]) {
      const img = tmp.path(`${name}.qcow2`);
      const size = 12 * MiB + 512;
      qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, img, String(size)]);
      const q = await open(img);
      const r = rng(name.length);
      const scribble = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const len = 1 + r(300000);
          await q.write(r(size - len), pattern(len, r(1000)));
        }
        await q.writeZeroes(r(size - 200000), 200000);
        await q.discard(r(size - 300000), 300000);
      };
      await scribble(30);
      const date = new Date('2030-06-07T08:09:10.500Z');
      await snaps(q).create('first', { date, vmClockNs: 3_723_004_000_000 });
      const first = await readAll(q);
      await scribble(20);
      await snaps(q).create('second');
      const second = await readAll(q);
      await scribble(20);
      const last = await readAll(q);
      await q.close();

      await t.test(name, async () => {
        check(img);
        assert.deepEqual(qemuList(img), [['1', 'first'], ['2', 'second']]);
        const info = JSON.parse(qemuOk('qemu-img', ['info', '--output=json', img])).snapshots;
        assert.deepEqual([info[0]['date-sec'], info[0]['date-nsec'], info[0]['vm-clock-sec'], info[0]['vm-clock-nsec'], info[0]['vm-state-size']],
          [Math.floor(date.getTime() / 1000), 500_000_000, 3723, 4_000_000, 0]);
        assert.deepEqual(snapshotData(img, 'first', tmp.path('first.raw')), first);
        assert.deepEqual(snapshotData(img, 'second', tmp.path('second.raw')), second);

        // qemu-img snapshot -a and Vireo's apply give the same disk.
        const byQemu = tmp.path(`${name}.qemu.qcow2`);
        copyFileSync(img, byQemu);
        qemuOk('qemu-img', ['snapshot', '-a', 'first', byQemu]);
        const v = await open(img);
        await snaps(v).apply('first');
        await same(v, first, 'after apply');
        await v.close();
        check(byQemu);
        check(img);
        compare(byQemu, img);

        // Deleting with Vireo then qemu-img (and the other way round) leaves clean images.
        const w = await open(img);
        await snaps(w).delete('first');
        await w.write(0, pattern(100000, 5));
        await w.close();
        check(img);
        qemuOk('qemu-img', ['snapshot', '-d', 'second', img]);
        check(img);
        qemuOk('qemu-img', ['snapshot', '-d', 'second', byQemu]);
        const x = await open(byQemu);
        assert.deepEqual(snaps(x).list().map((s) => s.name), ['first']);
        await snaps(x).apply('first');
        await snaps(x).delete('first');
        await same(x, first, 'after the last delete');
        await x.close();
        check(byQemu);
        assert.notDeepEqual(last, first);
      });
    }
  } finally {
    tmp.remove();
  }
});

test('qemu-img: snapshots made by qemu-img (over compressed clusters too) are listed, applied and deleted by Vireo, which writes meanwhile', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const size = 8 * MiB;
    const src = tmp.path('src.raw');
    const srcData = new Uint8Array(size);
    srcData.set(pattern(3 * MiB, 1), 0);
    srcData.fill(0x41, 4 * MiB, 6 * MiB);
    writeFileSync(src, srcData);
    for (const [name, opts] of [
      ['plain', ['-o', 'cluster_size=4096']],
      ['compressed', ['-c', '-o', 'cluster_size=4096']],
      ['v2', ['-o', 'compat=0.10']],
    ] as [string, string[]][]) {
      const img = tmp.path(`${name}.qcow2`);
      qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...opts, src, img]);
      qemuOk('qemu-img', ['snapshot', '-c', 'q1', img]);
      qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 100k 200k', '-c', 'write -z 1M 64k', '-c', 'discard 5M 128k', img]);
      qemuOk('qemu-img', ['snapshot', '-c', 'q2', img]);
      qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x22 150k 300k', img]);
      check(img);
      const q1 = snapshotData(img, 'q1', tmp.path('q1.raw'));
      const q2 = snapshotData(img, 'q2', tmp.path('q2.raw'));
      assert.deepEqual(q1, srcData);
      const model = tmp.path(`${name}.model.raw`);
      qemuOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img, model]);

      await t.test(name, async () => {
        // Writes through tables and clusters shared with both snapshots.
        let q = await open(img);
        assert.deepEqual(snaps(q).list().map((s) => [s.id, s.name]), [['1', 'q1'], ['2', 'q2']]);
        const m = await open(model);
        await randomWorkload(q, m, { seed: 9, ops: 60, maxLen: 300 * 1024, zeroes: true });
        await same(q, await readAll(m), 'after the workload');
        await m.close();
        await q.close();
        check(img);
        compare(model, img, 'raw');
        assert.deepEqual(snapshotData(img, 'q1', tmp.path('q1.raw')), q1);
        assert.deepEqual(snapshotData(img, 'q2', tmp.path('q2.raw')), q2);

        q = await open(img);
        await snaps(q).apply('q2');
        await same(q, q2, 'q2');
        await q.write(2 * MiB, pattern(MiB, 3));
        await snaps(q).create('v3');
        await snaps(q).apply('q1');
        await same(q, q1, 'q1');
        await snaps(q).delete('q2');
        await q.close();
        check(img);
        assert.deepEqual(qemuList(img), [['1', 'q1'], ['3', 'v3']]);
        // QEMU goes on from what Vireo left.
        qemuOk('qemu-img', ['snapshot', '-a', 'v3', img]);
        qemuOk('qemu-img', ['snapshot', '-d', 'q1', img]);
        check(img);
        q = await open(img);
        await snaps(q).delete('v3');
        await q.close();
        check(img);
      });
    }
  } finally {
    tmp.remove();
  }
});

test('qemu-img: random writes and snapshot operations leave a clean image whose snapshots hold what the model says', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    for (const [i, opts] of [
      ['-o', 'cluster_size=512'],
      ['-o', 'cluster_size=4096,refcount_bits=4'],
      ['-o', 'compat=0.10,cluster_size=65536'],
    ].entries()) {
      const img = tmp.path(`${i}.qcow2`);
      qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, img, String(3 * MiB)]);
      const { active, snapshots } = await randomSnapshots(img, 100 + i, 150);
      await t.test(opts[1], () => {
        check(img);
        assert.deepEqual(qemuList(img).map(([, name]) => name), [...snapshots.keys()]);
        for (const [name, data] of snapshots) assert.deepEqual(snapshotData(img, name, tmp.path('s.raw')), data, name);
        qemuOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', img, tmp.path('a.raw')]);
        assert.deepEqual(new Uint8Array(readFileSync(tmp.path('a.raw'))), active);
      });
    }
  } finally {
    tmp.remove();
  }
});

test('qemu-img: a writer killed during snapshot operations and writes to shared clusters leaves no corruption', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const img = tmp.path('crash.qcow2');
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', img, String(32 * MiB)]);
    const block = fileURLToPath(new URL('../../src/block/block.js', import.meta.url));
    // The child writes, snapshots, applies and deletes at random until killed.
    const script = (seed: number) => `
      const { openBlockBackend } = await import(${JSON.stringify(block)});
      const b = await openBlockBackend({ file: ${JSON.stringify(img)}, readOnly: false, cache: 'writeback' });
      let x = ${seed};
      const r = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
      console.log('ready');
      for (let n = 0; ; n++) {
        const names = b.snapshots.list().map((s) => s.id);
        const k = r(10);
        if (k < 5) await b.write(r(b.size - 300000), new Uint8Array(1 + r(300000)).fill(1 + r(255)));
        else if (k === 5) await b.discard(r(b.size - 300000), r(300000));
        else if (k === 6 || names.length === 0) await b.snapshots.create('c' + n);
        else if (k < 9) await b.snapshots.apply(names[r(names.length)]);
        else await b.snapshots.delete(names[r(names.length)]);
      }`;
    const r = rng(7);
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script(round + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 200 + r(1000)));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      checkNoCorruption(img, `round ${round}`);
    }
    // The image goes on working.
    const q = await open(img);
    await snaps(q).create('last');
    await q.write(0, new Uint8Array(4096).fill(7));
    for (const s of snaps(q).list()) {
      await snaps(q).apply(s.id);
      await snaps(q).delete(s.id);
    }
    await q.close();
    checkNoCorruption(img, 'at the end');
  } finally {
    tmp.remove();
  }
});
