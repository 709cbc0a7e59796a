/**
 * Boot images for the RISC-V virt board from files (the Node side of boot-plan.ts,
 * which decides where they go): the bundled guest, or the -bios/-kernel/-initrd files.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type VmOptions } from '../../system/options.js';
import { layOutBoot, type BootPlan, type ImageSource } from './boot-plan.js';

/** Where the bundled guest lives: images/riscv64 in the package. */
export const BUNDLED_IMAGES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'images', 'riscv64');

/** `bytes` gunzipped if they are gzip-compressed, as they are if not; null if they are but do not decompress. */
export function gunzipped(bytes: Buffer): Uint8Array | null {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    return gunzipSync(bytes, gunzipOptions(bytes));
  } catch {
    return null;
  }
}

/**
 * zlib options for gunzipping `bytes`: output in one chunk of the size the gzip trailer
 * states (mod 2^32; capped, zlib grows past it if it lies), so no concatenation of 16 KiB
 * chunks: a third faster for the initramfs.
 */
export function gunzipOptions(bytes: Buffer): { chunkSize: number } {
  const stated = bytes.length >= 18 ? bytes.readUInt32LE(bytes.length - 4) : 0;
  return { chunkSize: Math.min(Math.max(stated, 64 * 1024), 256 * 1024 * 1024) };
}

/** A file's bytes, gunzipped when it is gzip-compressed (the bundled images are). */
export function readImage(path: string): Uint8Array {
  const bytes = gunzipped(readFileSync(path));
  if (bytes === null) throw new UserError(`${path}: corrupt gzip data`);
  return bytes;
}

/**
 * An initrd's bytes. A gzip-compressed one is decompressed here, natively in a few
 * milliseconds, instead of by the guest kernel (the bundled initramfs took the emulated
 * CPU about 0.3 s); Linux takes an uncompressed initramfs or ramdisk as well. One that
 * does not decompress cleanly is loaded as it is, for the kernel to judge.
 */
export function readInitrd(path: string): Uint8Array {
  const bytes = readFileSync(path);
  return gunzipped(bytes) ?? bytes;
}

/** Reads the firmware, kernel and initrd named by the options and decides their placement. */
export function planBoot(opts: VmOptions, ramBase: number, ramSize: number): BootPlan {
  const bundled = opts.kernel === undefined;
  const file = (path: string, read = readImage): ImageSource => ({ name: path, load: () => read(path) });
  const biosPath = opts.bios.kind === 'file' ? opts.bios.path : opts.bios.kind === 'default' ? join(BUNDLED_IMAGES, 'fw_dynamic.bin.gz') : null;
  const initrdPath = opts.initrd ?? (bundled ? join(BUNDLED_IMAGES, 'initramfs.cpio.gz') : undefined);
  return layOutBoot({
    bios: biosPath === null ? null : file(biosPath),
    kernel: biosPath !== null || opts.kernel !== undefined ? file(opts.kernel ?? join(BUNDLED_IMAGES, 'Image.gz')) : null,
    initrd: initrdPath === undefined ? null : file(initrdPath, readInitrd),
    bootargs: bundled && opts.append === undefined ? 'console=ttyS0' : opts.append ?? '',
  }, ramBase, ramSize);
}
