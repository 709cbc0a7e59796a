/**
 * Raw disk images: the file is the disk, byte for byte (QEMU's `format=raw`).
 *
 * - read-only: the file is opened O_RDONLY and every write is refused.
 * - flush: fdatasync, except with cache=unsafe.
 * - discard: accepted and ignored. Releasing space needs fallocate(PUNCH_HOLE), which
 *   node does not expose; discard is advisory, so doing nothing is correct.
 * - write zeroes: really writes zeros (the guest may rely on reading them back).
 */
import { checkRange, totalLength, BlockIOError, type BlockBackend, type BlockOpenOptions, type CacheMode } from './block.js';
import type { HostFile } from './file.js';
import { zeros } from '../system/host-memory.js';

/** A raw image file. */
export class RawBackend implements BlockBackend {
  readonly format = 'raw';
  readonly discardGranularity = 0;

  private constructor(private readonly file: HostFile, readonly size: number, readonly readOnly: boolean, private readonly cache: CacheMode) {}

  /** Wraps an already opened file (openBlockBackend opens it). */
  static async open(file: HostFile, opts: BlockOpenOptions): Promise<RawBackend> {
    return new RawBackend(file, await file.size(), opts.readOnly, opts.cache);
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    checkRange(this.size, offset, dst.length);
    await this.file.read(dst, offset);
  }

  readNow(offset: number, dsts: readonly Uint8Array[]): boolean {
    checkRange(this.size, offset, totalLength(dsts));
    return this.file.readNow(dsts, offset);
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    await this.writev(offset, [src]);
  }

  async writev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    this.checkWrite(offset, totalLength(srcs));
    await this.file.writev(srcs, offset);
  }

  async flush(): Promise<void> {
    if (this.cache !== 'unsafe') await this.file.sync();
  }

  async discard(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
  }

  async writeZeroes(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
    for (let done = 0; done < len;) {
      const z = zeros(len - done);
      await this.file.write(z, offset + done);
      done += z.length;
    }
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private checkWrite(offset: number, len: number): void {
    if (this.readOnly) throw new BlockIOError(`${this.file.path}: read-only`);
    checkRange(this.size, offset, len);
  }
}
