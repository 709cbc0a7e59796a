/**
 * Tests for src/system/host-memory.ts: under Node on Linux, guest RAM (the software
 * CPU's shared WebAssembly memory) is backed by transparent huge pages once
 * enableHugePages() has run, and not before (skips when the host kernel offers no THP);
 * zeroFill zeroes exactly the view it is given.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { RiscvCpus } from '../../src/target/riscv/cpu.js';
import { enableHugePages, zeroFill } from '../../src/system/host-memory.js';

const THP = '/sys/kernel/mm/transparent_hugepage/enabled';
/** The host's THP mode (`always`, `madvise` or `never`), or null without THP or smaps_rollup. */
function thpMode(): string | null {
  if (process.platform !== 'linux' || !existsSync(THP) || !existsSync('/proc/self/smaps_rollup')) return null;
  return /\[(\w+)\]/.exec(readFileSync(THP, 'utf8'))?.[1] ?? null;
}

/** KiB of this process's anonymous memory in huge pages. */
function anonHugeKiB(): number {
  return Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
}

const RAM = 64 << 20;

/** KiB of huge pages gained by allocating 64 MiB of guest RAM and writing one byte in each 4 KiB page. */
function touchNewGuestRam(): number {
  const before = anonHugeKiB();
  const cpus = new RiscvCpus({ ramBase: 0x8000_0000, ramSize: RAM, romBase: 0x1000, romSize: 0x1000 }, 1, new AddressSpace(), () => 0);
  for (let i = 0; i < RAM; i += 4096) cpus.ram[i] = 1;
  return anonHugeKiB() - before;
}

test('guest RAM is backed by transparent huge pages once enabled (madvise, as QEMU does)', async (t) => {
  const mode = thpMode();
  if (mode === null || mode === 'never') {
    t.skip(`transparent huge pages unavailable on this host (${mode === null ? `no ${THP}` : 'THP set to never'})`);
    return;
  }
  // In `madvise` mode only advised memory gets huge pages: before enableHugePages(), none.
  if (mode === 'madvise') assert.ok(touchNewGuestRam() < 4096, 'unadvised guest RAM stays in 4 KiB pages');
  await enableHugePages();
  const gained = touchNewGuestRam();
  // Most of it: the 2 MiB-aligned part, unless the host has no free huge page at all.
  assert.ok(gained >= RAM / 2 / 1024, `${gained} KiB of 64 MiB of guest RAM in huge pages`);
});

test('zeroFill zeroes a view of shared memory longer than its zero chunk, and nothing around it', () => {
  const mem = new Uint8Array(new SharedArrayBuffer(3 << 20)).fill(0xa5);
  const from = 12345;
  const to = from + (2 << 20) + 777;
  zeroFill(mem.subarray(from, to));
  assert.ok(mem.subarray(from, to).every((b) => b === 0));
  assert.ok(mem.subarray(0, from).every((b) => b === 0xa5) && mem.subarray(to).every((b) => b === 0xa5));
});
