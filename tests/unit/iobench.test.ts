// bench/guest/iobench.elf, the guest program of bench/blk, run under qemu-riscv64-static
// (Linux user-mode emulation) on files: it must issue exactly the requests it reports, at
// the offsets it promises, and fail with one line on bad input. Skips without
// qemu-riscv64-static (apt-get install qemu-user-static) or a directory that takes O_DIRECT.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ELF = join(ROOT, 'bench', 'guest', 'iobench.elf');
const QEMU = 'qemu-riscv64-static';
const haveQemu = spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;

function iobench(...args: string[]) {
  const r = spawnSync(QEMU, [ELF, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A scratch directory on the repository's file system (tmpfs may refuse O_DIRECT), removed after `body`. */
function withDir(t: { skip(why: string): void }, body: (dir: string) => void): void {
  const dir = mkdtempSync(join(ROOT, 'dist', 'iobench-test-'));
  try {
    const probe = join(dir, 'probe');
    writeFileSync(probe, Buffer.alloc(4096));
    const r = iobench('read', '4k', '1', probe);
    if (r.status !== 0 && /errno 22/.test(r.stderr)) return t.skip(`this file system refuses O_DIRECT: ${r.stderr.trim()}`);
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const skip = haveQemu ? false : `${QEMU} not found (apt-get install qemu-user-static)`;

test('iobench: a sequential write covers the file in order and reports what it did', { skip }, (t) => {
  withDir(t, (dir) => {
    const file = join(dir, 'disk');
    writeFileSync(file, Buffer.alloc(1 << 20));
    // 20 requests of 64 KiB on a 1 MiB file: the last 4 wrap to the start.
    const r = iobench('write', '64k', '20', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^iobench write bs=65536 ops=20 bytes=1310720 ns=\d+\n$/);
    const data = readFileSync(file);
    assert.equal(data.length, 1 << 20, 'the file keeps its size');
    const block = data.subarray(0, 65536);
    assert.ok(block.some((b) => b !== 0), 'the buffer holds data, not zeros');
    for (let off = 0; off < data.length; off += 65536) assert.ok(data.subarray(off, off + 65536).equals(block), `block at ${off}`);
    const back = iobench('read', '1M', '1', file);
    assert.equal(back.status, 0, back.stderr);
    assert.match(back.stdout, /^iobench read bs=1048576 ops=1 bytes=1048576 ns=\d+\n$/);
  });
});

test('iobench: random writes land on whole aligned blocks inside the device, the same ones every run', { skip }, (t) => {
  withDir(t, (dir) => {
    const written = (name: string): number[] => {
      const file = join(dir, name);
      writeFileSync(file, Buffer.alloc(256 * 4096));
      const r = iobench('randwrite', '4k', '64', file);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^iobench randwrite bs=4096 ops=64 bytes=262144 ns=\d+\n$/);
      assert.equal(statSync(file).size, 256 * 4096);
      const data = readFileSync(file);
      const blocks: number[] = [];
      let first: Buffer | null = null;
      for (let i = 0; i < 256; i++) {
        const b = data.subarray(i * 4096, (i + 1) * 4096);
        if (b.every((x) => x === 0)) continue;
        first ??= b;
        assert.ok(b.equals(first), `block ${i} is a whole copy of the buffer`);
        blocks.push(i);
      }
      return blocks;
    };
    const a = written('a');
    // 64 draws among 256 blocks: far more than one block, fewer than 64 (collisions are near certain).
    assert.ok(a.length > 32 && a.length <= 64, `${a.length} distinct blocks`);
    assert.ok(a[a.length - 1]! - a[0]! > 128, 'spread over the device');
    assert.deepEqual(written('b'), a, 'the fixed seed gives the same offsets');
  });
});

test('iobench: bad arguments and devices give one line and status 1', { skip }, (t) => {
  withDir(t, (dir) => {
    const file = join(dir, 'disk');
    writeFileSync(file, Buffer.alloc(8192));
    for (const [args, msg] of [
      [[], /^iobench: usage: /],
      [['scan', '4k', '1', file], /^iobench: unknown mode\n$/],
      [['read', '3000', '1', file], /^iobench: bad BS or COUNT\n$/],
      [['read', '4k', '0', file], /^iobench: bad BS or COUNT\n$/],
      [['read', '2M', '1', file], /^iobench: bad BS or COUNT\n$/],
      [['read', '16k', '1', file], /^iobench: device smaller than BS\n$/],
      [['read', '4k', '1', join(dir, 'missing')], /^iobench: cannot open the device: errno 2\n$/],
    ] as [string[], RegExp][]) {
      const r = iobench(...args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, msg, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });
});
