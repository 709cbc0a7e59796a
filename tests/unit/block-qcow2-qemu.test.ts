/**
 * qcow2 interoperability with QEMU (src/block/qcow2.ts), qemu-img as the oracle:
 * images made by qemu-img (v2, v3, compressed, with backing files) read correctly, and
 * after random write workloads through Vireo `qemu-img check` finds no errors and
 * `qemu-img compare` finds them identical to a raw image given the same workload, also
 * after the writing process is killed mid-workload; allocating writes wait for a flush to
 * sync (metadata written back then). Skipped, saying so, without qemu-img.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openBlockBackend, type BlockBackend } from '../../src/block/block.js';
import { createQcow2 } from '../../src/block/qcow2.js';
import { firstDifference, needQemuImg, pattern, qemu, qemuOk, randomWorkload, rng, tempDir } from './block-helpers.js';

const MiB = 1 << 20;

/** A raw file of `size` bytes with patterned data in some places and holes elsewhere. */
function patternedRaw(file: string, size: number, seed: number): void {
  const img = new Uint8Array(size);
  const r = rng(seed);
  for (let i = 0; i < 40; i++) {
    const len = 1 + r(256 * 1024);
    const off = r(size - len);
    img.set(pattern(len, seed + i), off);
  }
  // Compressible runs too, so that `convert -c` stores some clusters compressed.
  for (let i = 0; i < 10; i++) img.fill(0x41 + i, r(size - 70000), 0).fill(0x41 + i, i * (size / 10), i * (size / 10) + 50000);
  writeFileSync(file, img);
}

function check(file: string): void {
  const r = qemu('qemu-img', ['check', file]);
  assert.equal(r.status, 0, `qemu-img check ${file}:\n${r.out}`);
  assert.match(r.out, /No errors were found/);
}

function compare(raw: string, image: string): void {
  const r = qemu('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, image]);
  assert.equal(r.status, 0, `qemu-img compare:\n${r.out}`);
  assert.match(r.out, /Images are identical/);
}

async function open(file: string, readOnly = false): Promise<BlockBackend> {
  return openBlockBackend({ file, readOnly, cache: 'writeback' });
}

/** Opens `image` and the raw `model`, runs the workload on both, closes both. */
async function workload(image: string, model: string, seed: number, ops = 120, maxLen = 300 * 1024): Promise<void> {
  const q = await open(image);
  const m = await open(model);
  assert.equal(q.format, 'qcow2');
  assert.equal(m.format, 'raw');
  await randomWorkload(q, m, { seed, ops, maxLen, zeroes: true });
  assert.equal(await firstDifference(q, m), -1);
  await q.flush();
  await q.close();
  await m.close();
}

test('qemu-img: fresh v2 and v3 images read as zeros and survive random workloads', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const cases: [string, string[]][] = [
      ['v3', []],
      ['v2', ['-o', 'compat=0.10']],
      ['v3-512', ['-o', 'cluster_size=512']],
      ['v3-2M', ['-o', 'cluster_size=2M']],
      ['v3-rc1', ['-o', 'refcount_bits=1']],
      ['v3-rc64', ['-o', 'refcount_bits=64']],
      ['v3-prealloc', ['-o', 'preallocation=metadata']],
    ];
    for (const [name, opts] of cases) {
      const img = tmp.path(`${name}.qcow2`);
      const raw = tmp.path(`${name}.raw`);
      const size = 24 * MiB + 3 * 512; // not a whole number of clusters
      qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, img, String(size)]);
      writeFileSync(raw, new Uint8Array(size));
      const q = await open(img);
      assert.equal(q.size, size);
      const buf = new Uint8Array(MiB);
      await q.read(size - MiB, buf);
      assert.ok(buf.every((x) => x === 0));
      await q.close();
      await workload(img, raw, name.length * 7 + 1);
      await t.test(name, () => {
        check(img);
        compare(raw, img);
      });
    }
  } finally {
    tmp.remove();
  }
});

test('qemu-img: converted images, plain and compressed (zlib), read back the source', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const src = tmp.path('src.raw');
    const size = 16 * MiB;
    patternedRaw(src, size, 5);
    for (const [name, opts] of [
      ['plain', []],
      ['compressed', ['-c', '-o', 'compression_type=zlib']],
      ['compressed-v2', ['-c', '-o', 'compat=0.10']],
      ['compressed-4k', ['-c', '-o', 'cluster_size=4096']],
    ] as [string, string[]][]) {
      const img = tmp.path(`${name}.qcow2`);
      qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...opts, src, img]);
      if (name.startsWith('compressed')) assert.match(qemuOk('qemu-img', ['check', img]), /[1-9][0-9.]*% compressed clusters/);
      const q = await open(img, true);
      const m = await open(src, true);
      assert.equal(await firstDifference(q, m), -1, name);
      await q.close();
      await m.close();
      // Writing over compressed clusters copies them out and releases them.
      const model = tmp.path(`${name}.model.raw`);
      copyFileSync(src, model);
      await workload(img, model, 77);
      await t.test(name, () => {
        check(img);
        compare(model, img);
      });
    }
  } finally {
    tmp.remove();
  }
});

test('qemu-img: backing chains (qcow2 and raw bases, relative names) read through and copy on write', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const size = 16 * MiB;
    const baseRaw = tmp.path('base.raw');
    patternedRaw(baseRaw, size, 9);
    qemuOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', baseRaw, tmp.path('base.qcow2')]);
    // mid.qcow2 over base.qcow2 (relative name, format in a header extension), with
    // writes made by QEMU; top.qcow2 over mid, bigger than its backing chain.
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', tmp.path('mid.qcow2')]);
    qemuOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 100k 300k', '-c', 'write -z 2M 1M', '-c', 'discard 4M 128k', tmp.path('mid.qcow2')]);
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', tmp.path('top.qcow2'), String(size + 4 * MiB)]);
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'base.raw', '-F', 'raw', tmp.path('onraw.qcow2')]);
    for (const name of ['mid', 'top', 'onraw']) {
      const img = tmp.path(`${name}.qcow2`);
      const model = tmp.path(`${name}.model.raw`);
      qemuOk('qemu-img', ['convert', '-O', 'raw', img, model]);
      const q = await open(img, true);
      const m = await open(model, true);
      assert.equal(await firstDifference(q, m), -1, `${name} reads as qemu-img convert says`);
      await q.close();
      await m.close();
      await workload(img, model, 31 + name.length);
      await t.test(name, () => {
        check(img);
        compare(model, img);
      });
    }
    // The bases were opened read-only and are untouched.
    compare(baseRaw, tmp.path('base.qcow2'));
    check(tmp.path('base.qcow2'));
  } finally {
    tmp.remove();
  }
});

test('qemu-img: images made by createQcow2 are valid, with and without backing file', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const raw = tmp.path('b.raw');
    patternedRaw(raw, 8 * MiB, 3);
    await createQcow2(tmp.path('plain.qcow2'), { size: 8 * MiB });
    await createQcow2(tmp.path('v2.qcow2'), { size: 8 * MiB, version: 2, clusterBits: 12 });
    await createQcow2(tmp.path('over.qcow2'), { size: 8 * MiB, backingFile: 'b.raw', backingFormat: 'raw' });
    for (const n of ['plain', 'v2', 'over']) check(tmp.path(`${n}.qcow2`));
    assert.match(qemuOk('qemu-img', ['info', tmp.path('over.qcow2')]), /backing file: b\.raw/);
    compare(raw, tmp.path('over.qcow2'));
  } finally {
    tmp.remove();
  }
});

test('qemu-img: a writer killed mid-workload leaves an image check finds no errors in', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const img = tmp.path('crash.qcow2');
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', img, String(64 * MiB)]);
    const block = fileURLToPath(new URL('../../src/block/block.js', import.meta.url));
    // The child writes and discards at random until killed.
    const script = `
      const { openBlockBackend } = await import(${JSON.stringify(block)});
      const b = await openBlockBackend({ file: ${JSON.stringify(img)}, readOnly: false, cache: 'writeback' });
      let x = 1;
      const r = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
      console.log('ready');
      for (;;) {
        const off = r(b.size - 300000);
        if (r(5) === 0) await b.discard(off, r(300000));
        else await b.write(off, new Uint8Array(1 + r(200000)).fill(1 + r(255)));
        // Flushes, so that the kill also lands while metadata is written back.
        if (r(4) === 0) await b.flush();
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const r = qemu('qemu-img', ['check', img]);
    // 0: clean; 3: only leaked clusters (a harmless waste of space).
    assert.ok(r.status === 0 || r.status === 3, `qemu-img check exited ${r.status}:\n${r.out}`);
    assert.doesNotMatch(r.out, /ERROR/);
    const b = await open(img);
    await b.write(0, new Uint8Array(4096).fill(7));
    await b.close();
  } finally {
    tmp.remove();
  }
});

test('qemu-img: allocating writes sync nothing until a flush, which writes their metadata back', async (t) => {
  if (!needQemuImg(t)) return;
  const tmp = tempDir();
  try {
    const img = tmp.path('lazy.qcow2');
    const raw = tmp.path('lazy.raw');
    qemuOk('qemu-img', ['create', '-q', '-f', 'qcow2', img, String(16 * MiB)]);
    writeFileSync(raw, new Uint8Array(16 * MiB));
    const fds = openFds();
    const b = await open(img);
    const m = await open(raw);
    const file = (b as unknown as { file: { sync(): Promise<void> } }).file;
    let syncs = 0;
    const sync = file.sync.bind(file);
    file.sync = () => {
      syncs++;
      return sync();
    };
    // Sequential 1 MiB writes (each allocates 16 clusters) and a scattered one (a second L2 table).
    for (let i = 0; i < 8; i++) for (const d of [b, m]) await d.write(i * MiB, pattern(MiB, i + 1));
    for (const d of [b, m]) await d.write(15 * MiB + 4096, pattern(5000, 9));
    assert.equal(syncs, 0, 'no fdatasync before the flush');
    assert.equal(await firstDifference(b, m), -1, 'reads see the data before the flush');
    // Before the flush the file holds the data and its refcounts only: leaks at worst.
    const before = qemu('qemu-img', ['check', img]);
    assert.ok(before.status === 0 || before.status === 3, `qemu-img check before the flush exited ${before.status}:\n${before.out}`);
    assert.doesNotMatch(before.out, /ERROR/);
    await b.flush();
    assert.ok(syncs >= 2, `a barrier before the L2 entries and one after them (${syncs} syncs)`);
    // Checked while still open: the flush left a complete, consistent image on disk.
    check(img);
    compare(raw, img);
    await b.close();
    await m.close();
    assert.equal(openFds(), fds, 'close() closes the image files');
  } finally {
    tmp.remove();
  }
});

/** How many file descriptors this process has open (Linux; -1 elsewhere). */
function openFds(): number {
  return existsSync('/proc/self/fd') ? readdirSync('/proc/self/fd').length : -1;
}

