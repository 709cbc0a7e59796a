/**
 * A raw disk image held in memory: the browser's disks (a file the user picked, read
 * whole), which have no host file to write through. Every request is checked against
 * the size and done at once, so nothing is ever in flight inside the backend; flush has
 * nothing to make durable (the bytes leave only through {@link MemoryBackend.bytes}).
 * Raw only: qcow2 needs random access to a file, out of scope in the browser.
 */
import { checkRange, copyViews, totalLength, BlockIOError } from './range.js';
import type { BlockBackend } from './block.js';

const SECTOR = 512;
/** The largest in-memory disk: it is held whole in the page and again in the worker. */
export const MAX_MEMORY_DISK_BYTES = 1 << 30;

/** Why an image of `size` bytes starting with `head` cannot be an in-memory raw disk (one line), or null if it can. */
export function memoryDiskProblem(size: number, head: Uint8Array): string | null {
  if (size === 0) return 'the disk image is empty';
  if (size > MAX_MEMORY_DISK_BYTES) return `the disk image is ${size} bytes; at most ${MAX_MEMORY_DISK_BYTES} (1 GiB) fit in memory`;
  if (size % SECTOR !== 0) return `the disk image is ${size} bytes, not a whole number of 512-byte sectors`;
  if (head.length >= 4 && head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb) {
    return 'qcow2 images are not supported here; convert it with `qemu-img convert -O raw`';
  }
  return null;
}

export class MemoryBackend implements BlockBackend {
  readonly format = 'raw';
  readonly discardGranularity = 0;
  readonly size: number;

  /** `data` becomes the disk (not copied): the caller must not use it afterwards; {@link bytes} copies it out. */
  constructor(private readonly data: Uint8Array, readonly readOnly = false) {
    const problem = memoryDiskProblem(data.length, data.subarray(0, 4));
    if (problem !== null) throw new RangeError(problem);
    this.size = data.length;
  }

  /** A copy of the disk as it is now. */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.data.slice();
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    checkRange(this.size, offset, dst.length);
    dst.set(this.data.subarray(offset, offset + dst.length));
  }

  readNow(offset: number, dsts: readonly Uint8Array[]): boolean {
    checkRange(this.size, offset, totalLength(dsts));
    for (const d of dsts) {
      d.set(this.data.subarray(offset, offset + d.length));
      offset += d.length;
    }
    return true;
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    await this.writev(offset, [src]);
  }

  async writev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    this.checkWrite(offset, totalLength(srcs));
    copyViews(this.data, offset, srcs);
  }

  async flush(): Promise<void> {}

  /** Advisory: nothing is released (as for raw files). */
  async discard(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
  }

  async writeZeroes(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
    this.data.fill(0, offset, offset + len);
  }

  async close(): Promise<void> {}

  private checkWrite(offset: number, len: number): void {
    if (this.readOnly) throw new BlockIOError('in-memory disk: read-only');
    checkRange(this.size, offset, len);
  }
}
