/**
 * Boot images for the RISC-V virt board from files (the Node side of boot-plan.ts,
 * which decides where they go): the bundled guest, or the -bios/-kernel/-initrd files.
 */
import { readFileSync } from 'node:fs';
import { gunzip, gunzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type VmOptions } from '../../system/options.js';
import { layOutBoot, type BootPlan, type ImageSource } from './boot-plan.js';
import { isGzip } from '../core/loader.js';

/** Where the bundled guest lives: images/riscv64 in the package. */
export const BUNDLED_IMAGES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'images', 'riscv64');

/** `bytes` gunzipped if they are gzip-compressed, as they are if not; null if they are but do not decompress. */
function gunzipped(bytes: Buffer): Uint8Array | null {
  if (!isGzip(bytes)) return bytes;
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

/** {@link gunzipped} on libuv's thread pool, so that several images decompress at once, beside the main thread's work. */
function gunzippedOffThread(bytes: Buffer): Promise<Uint8Array | null> {
  if (!isGzip(bytes)) return Promise.resolve(bytes);
  return new Promise((resolve) => gunzip(bytes, gunzipOptions(bytes), (e, out) => resolve(e ? null : out)));
}

/**
 * Reads the firmware, kernel and initrd named by the options and decides their placement.
 * gzip-compressed ones are decompressed, all at once off the main thread (the bundled
 * kernel alone takes zlib ~90 ms). The initrd too, natively, instead of by the guest kernel
 * (the bundled initramfs took the emulated CPU about 0.3 s; Linux takes an uncompressed
 * initramfs as well); one that does not decompress cleanly is loaded as it is, for the
 * kernel to judge. Errors are those of the first image (in that order) that has one.
 */
export async function planBoot(opts: VmOptions, ramBase: number, ramSize: number): Promise<BootPlan> {
  const bundled = opts.kernel === undefined;
  const biosPath = opts.bios.kind === 'file' ? opts.bios.path : opts.bios.kind === 'default' ? join(BUNDLED_IMAGES, 'fw_dynamic.bin.gz') : null;
  const kernelPath = biosPath !== null || opts.kernel !== undefined ? opts.kernel ?? join(BUNDLED_IMAGES, 'Image.gz') : null;
  const initrdPath = opts.initrd ?? (bundled ? join(BUNDLED_IMAGES, 'initramfs.cpio.gz') : null);
  const start = (path: string | null, lenient: boolean): Promise<ImageSource | null> | null => {
    if (path === null) return null;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      return Promise.reject(e); // so that no image started before it is left unawaited
    }
    return gunzippedOffThread(bytes).then((out) => {
      const data = out ?? (lenient ? bytes : null);
      if (data === null) throw new UserError(`${path}: corrupt gzip data`);
      return { name: path, load: () => data };
    });
  };
  const pending = [start(biosPath, false), start(kernelPath, false), start(initrdPath, true)];
  for (const p of pending) p?.catch(() => {}); // awaited below, in order
  const [bios, kernel, initrd] = [await pending[0], await pending[1], await pending[2]];
  return layOutBoot({ bios: bios ?? null, kernel: kernel ?? null, initrd: initrd ?? null, bootargs: bundled && opts.append === undefined ? 'console=ttyS0' : opts.append ?? '' }, ramBase, ramSize);
}
