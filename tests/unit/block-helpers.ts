/**
 * Shared pieces of the block layer tests: temporary directories, qemu-img as the
 * oracle (skipping visibly where it is missing), a seeded random generator, the
 * random write workload applied alike to an image under test and a raw model, and
 * random snapshot operations checked against an in-memory model.
 * Not a test file itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { openBlockBackend, type BlockBackend, type BlockSnapshots } from '../../src/block/block.js';
import { hostIo } from '../../src/block/host-io.js';

/** A fresh temporary directory, removed by the returned function. */
/**
 * Whether a request reached the block I/O thread since its completion count was `before`:
 * in flight, or already done (the caller may have been preempted meanwhile).
 */
export function reachedThread(before: number): boolean {
  return hostIo().inFlight() || hostIo().completed > before;
}

export function tempDir(): { dir: string; path: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-block-'));
  return { dir, path: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

let haveQemuImg: boolean | undefined;

/** True if qemu-img runs; otherwise marks the test skipped, saying how to get it. */
export function needQemuImg(t: TestContext): boolean {
  haveQemuImg ??= !spawnSync('qemu-img', ['--version']).error;
  if (!haveQemuImg) t.skip('qemu-img not installed (apt-get install qemu-utils)');
  return haveQemuImg;
}

/** Runs a qemu tool; returns its exit status and output. */
export function qemu(tool: 'qemu-img' | 'qemu-io', args: string[]): { status: number; out: string } {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Runs a qemu tool and throws with its output unless it exits 0. */
export function qemuOk(tool: 'qemu-img' | 'qemu-io', args: string[]): string {
  const r = qemu(tool, args);
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.status}:\n${r.out}`);
  return r.out;
}

/** mulberry32: a small seeded generator, so that a failing workload can be replayed. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

/** `len` bytes of a pattern that differs with `seed` and position. */
export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export interface WorkloadOptions {
  seed: number;
  ops: number;
  /** Largest request in bytes. */
  maxLen: number;
  /** Requests run this many at a time, on disjoint ranges. */
  parallel?: number;
  /** Include discard and write-zeroes requests. */
  zeroes?: boolean;
}

/**
 * Applies the same random writes (sector-aligned or not), write-zeroes and discards to
 * `image` and to the raw `model`. Discard leaves data unspecified, so the model takes
 * whatever the image reads back there afterwards.
 */
/** `data` cut at random places into views (an empty one now and then). */
function randomPieces(data: Uint8Array, r: (n: number) => number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < data.length;) {
    const n = Math.min(data.length - at, r(3) === 0 ? 0 : 1 + r(Math.max(1, data.length >> 2)));
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return pieces;
}

export async function randomWorkload(image: BlockBackend, model: BlockBackend, o: WorkloadOptions): Promise<void> {
  const r = rng(o.seed);
  const par = o.parallel ?? 4;
  const slice = Math.floor(image.size / par);
  for (let done = 0; done < o.ops; done += par) {
    const batch: Promise<void>[] = [];
    for (let k = 0; k < par; k++) {
      const base = k * slice;
      const aligned = r(4) !== 0;
      let len = 1 + r(Math.min(o.maxLen, slice));
      let off = base + r(slice - len + 1);
      if (aligned) {
        off -= off % 512;
        len = Math.max(512, len - (len % 512));
      }
      const kind = o.zeroes ? r(10) : 0;
      const seed = o.seed * 100000 + done + k;
      batch.push((async () => {
        if (kind === 8) {
          await Promise.all([image.writeZeroes(off, len), model.writeZeroes(off, len)]);
        } else if (kind === 9) {
          await image.discard(off, len);
          const back = new Uint8Array(len);
          await image.read(off, back);
          await model.write(off, back);
        } else {
          const data = pattern(len, seed);
          // Every other write through writev, in pieces of random sizes (some empty), as a
          // guest's scattered buffers come.
          const vectored = image.writev !== undefined && r(2) === 0;
          await Promise.all([vectored ? image.writev!(off, randomPieces(data, r)) : image.write(off, data), model.write(off, data)]);
        }
      })());
    }
    await Promise.all(batch);
  }
}

/** Reads all of `a` and `b` in chunks and asserts they hold the same bytes; returns the first differing offset or -1. */
export async function firstDifference(a: BlockBackend, b: BlockBackend): Promise<number> {
  if (a.size !== b.size) return 0;
  const chunk = 1 << 20;
  const x = new Uint8Array(chunk);
  const y = new Uint8Array(chunk);
  for (let off = 0; off < a.size; off += chunk) {
    const n = Math.min(chunk, a.size - off);
    await a.read(off, x.subarray(0, n));
    await b.read(off, y.subarray(0, n));
    if (Buffer.compare(x.subarray(0, n), y.subarray(0, n)) !== 0) {
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return off + i;
    }
  }
  return -1;
}

/** The image's snapshots (failing the test if it has none). */
export function snaps(b: BlockBackend): BlockSnapshots {
  assert.ok(b.snapshots, `${b.format} has no snapshots`);
  return b.snapshots;
}

export async function readAll(b: BlockBackend): Promise<Uint8Array> {
  const buf = new Uint8Array(b.size);
  await b.read(0, buf);
  return buf;
}

/** Asserts that the disk reads as `want`, naming the first differing byte. */
export async function same(b: BlockBackend, want: Uint8Array, what: string): Promise<void> {
  const got = await readAll(b);
  if (Buffer.compare(got, want) !== 0) {
    const i = got.findIndex((x, k) => x !== want[k]);
    assert.fail(`${what}: byte ${i} is ${got[i]}, not ${want[i]}`);
  }
}

/**
 * Random writes, write-zeroes and discards interleaved with snapshot create, apply,
 * delete and reopening of qcow2 image `img`, checked against a model after each apply
 * and reopening. Returns what the disk and each snapshot should hold.
 */
export async function randomSnapshots(img: string, seed: number, ops: number): Promise<{ active: Uint8Array; snapshots: Map<string, Uint8Array> }> {
  const r = rng(seed);
  const open = () => openBlockBackend({ file: img, readOnly: false, cache: 'writeback' });
  let q = await open();
  const size = q.size;
  const active = await readAll(q);
  const model = new Map<string, Uint8Array>();
  let next = 0;
  for (let op = 0; op < ops; op++) {
    const k = r(20);
    const names = [...model.keys()];
    if (k < 12) {
      const len = 1 + r(Math.min(size, 200000));
      const off = r(size - len + 1);
      const data = pattern(len, seed * 1000 + op);
      await q.write(off, data);
      active.set(data, off);
    } else if (k === 12) {
      const len = r(100000);
      const off = r(size - len + 1);
      await q.writeZeroes(off, len);
      active.fill(0, off, off + len);
    } else if (k === 13) {
      // Discard leaves the data unspecified: the model takes what the disk reads.
      const len = r(100000);
      const off = r(size - len + 1);
      await q.discard(off, len);
      const back = new Uint8Array(len);
      await q.read(off, back);
      active.set(back, off);
    } else if (k <= 15 && names.length < 6) {
      const name = `s${next++}`;
      await snaps(q).create(name);
      model.set(name, active.slice());
    } else if (k <= 17 && names.length > 0) {
      const name = names[r(names.length)];
      await snaps(q).apply(name);
      active.set(model.get(name)!);
      await same(q, active, `seed ${seed} op ${op}: apply ${name}`);
    } else if (k === 18 && names.length > 0) {
      const name = names[r(names.length)];
      await snaps(q).delete(name);
      model.delete(name);
    } else {
      await q.close();
      q = await open();
      assert.deepEqual(snaps(q).list().map((x) => x.name), [...model.keys()], `seed ${seed} op ${op}: reopened`);
      await same(q, active, `seed ${seed} op ${op}: reopened`);
    }
  }
  await q.close();
  return { active, snapshots: model };
}
