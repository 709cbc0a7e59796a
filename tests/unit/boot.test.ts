/**
 * Boot placement (src/hw/riscv/boot.ts) follows QEMU: firmware at the start of RAM,
 * kernel at the next 2 MiB boundary, initrd above the kernel's whole image, FDT at
 * the top of RAM, and a reset vector passing a0/a1/a2 to the firmware.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { planBoot } from '../../src/hw/riscv/boot.js';
import { fdtAddress, resetVector } from '../../src/hw/riscv/boot-plan.js';
import type { VmOptions } from '../../src/system/options.js';

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'vireo-boot-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base: VmOptions = {
  machine: 'virt', memBytes: 256 * MiB, smp: 1, bios: { kind: 'none' }, serial: { kind: 'null' },
  nographic: true, noReboot: false, accel: { names: ['tcg'], thread: 'single' }, drives: [], netdevs: [], devices: [],
};

/** A fake RISC-V Linux Image whose header claims `imageSize` bytes in memory. */
function fakeImage(fileSize: number, imageSize: number): string {
  const b = Buffer.alloc(fileSize);
  b.writeBigUInt64LE(0x200000n, 8); // text_offset
  b.writeBigUInt64LE(BigInt(imageSize), 16);
  b.write('RISCV\0\0\0', 48, 'latin1');
  b.write('RSC\x05', 56, 'latin1');
  const path = join(dir, `Image-${fileSize}-${imageSize}`);
  writeFileSync(path, b);
  return path;
}

test('firmware at 0x80000000, kernel at 0x80200000, initrd at QEMU\'s spot', async () => {
  const fw = join(dir, 'fw.bin');
  writeFileSync(fw, Buffer.alloc(300 * 1024));
  const initrd = join(dir, 'initrd');
  writeFileSync(initrd, Buffer.alloc(4096));
  const plan = await planBoot({ ...base, bios: { kind: 'file', path: fw }, kernel: fakeImage(4 * MiB, 5 * MiB), initrd }, 0x80000000, 256 * MiB);
  assert.equal(plan.start, 0x80000000);
  assert.equal(plan.kernelEntry, 0x80200000);
  assert.deepEqual(plan.initrd, { start: 0x88200000, end: 0x88201000 });
  assert.equal(fdtAddress(0x80000000, 256 * MiB, 0x2000), 0x8fe00000);
});

test('a gzip-compressed initrd is loaded decompressed; a plain or corrupt one as it is; a corrupt gzip kernel is an error naming it, the first of several', async () => {
  const cpio = Buffer.from('070701' + '0'.repeat(500) + 'TRAILER!!!');
  const files = { plain: cpio, gz: gzipSync(cpio), corrupt: Buffer.concat([gzipSync(cpio).subarray(0, 20), Buffer.alloc(40, 0xaa)]) };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  for (const [name, expected] of [['plain', cpio], ['gz', cpio], ['corrupt', files.corrupt]] as const) {
    const plan = await planBoot({ ...base, kernel: fakeImage(4 * MiB, 5 * MiB), initrd: join(dir, name) }, 0x80000000, 256 * MiB);
    const blob = plan.blobs.find((b) => b.what === 'initrd')!;
    assert.deepEqual(Buffer.from(blob.data), expected, name);
    assert.equal(plan.initrd!.end - plan.initrd!.start, expected.length, 'the decompressed size is placed');
  }
  await assert.rejects(planBoot({ ...base, kernel: join(dir, 'corrupt'), initrd: join(dir, 'gz') }, 0x80000000, 256 * MiB), /corrupt: corrupt gzip data/);
  // Several bad images: the first one's error (the firmware's), none left unhandled.
  await assert.rejects(planBoot({ ...base, bios: { kind: 'file', path: join(dir, 'corrupt') }, kernel: join(dir, 'missing') }, 0x80000000, 256 * MiB),
    /corrupt: corrupt gzip data/);
});

test('the initrd never lands inside the kernel image (its .bss included)', async () => {
  const initrd = join(dir, 'initrd2');
  writeFileSync(initrd, Buffer.alloc(4096));
  // A 1 MiB file whose image (with .bss) spans 200 MiB: the initrd must go above it.
  const plan = await planBoot({ ...base, memBytes: 512 * MiB, kernel: fakeImage(MiB, 200 * MiB), initrd }, 0x80000000, 512 * MiB);
  assert.ok(plan.initrd!.start >= 0x80000000 + 200 * MiB, plan.initrd!.start.toString(16));
});

test('reset vector: a0 = mhartid, a1 = FDT, a2 = fw_dynamic info, jump to start', () => {
  const rom = resetVector(0x80000000, 0x8fe00000, 0x80200000);
  const v = new DataView(rom.buffer);
  assert.deepEqual([0, 4, 8, 12, 16, 20].map((o) => v.getUint32(o, true)),
    [0x00000297, 0x02828613, 0xf1402573, 0x0202b583, 0x0182b283, 0x00028067]);
  assert.equal(v.getBigUint64(0x18, true), 0x80000000n);
  assert.equal(v.getBigUint64(0x20, true), 0x8fe00000n);
  assert.equal(v.getBigUint64(0x28, true), 0x4942534fn); // "OSBI"
  assert.equal(v.getBigUint64(0x30, true), 2n);
  assert.equal(v.getBigUint64(0x38, true), 0x80200000n);
  assert.equal(v.getBigUint64(0x40, true), 1n); // next mode: S
});
