/**
 * A disk image that can be closed and opened again in place, for the destination of a live
 * migration (QEMU's inactive images): the destination opens its images at start-up, so that a
 * bad -drive fails at once, but the source writes them until the migration ends; what the
 * destination read of an image's metadata (a qcow2 header, L1 and refcount tables) is stale
 * by then, so it opens them again before the guest runs on.
 */
import { BlockIOError, openBlockBackend, type BlockBackend, type BlockOpenOptions } from './block.js';

export class ReopenableBackend implements BlockBackend {
  private constructor(private readonly opts: BlockOpenOptions, private inner: BlockBackend) {}

  static async open(opts: BlockOpenOptions): Promise<ReopenableBackend> {
    return new ReopenableBackend(opts, await openBlockBackend(opts));
  }

  /** Closes the image and opens it again (no request may be running). */
  async reopen(): Promise<void> {
    const size = this.inner.size;
    await this.inner.close();
    this.inner = await openBlockBackend(this.opts);
    if (this.inner.size !== size) throw new BlockIOError(`${this.opts.file}: the image changed size (${size} to ${this.inner.size} bytes) during the migration`);
  }

  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }
  get format(): BlockBackend['format'] { return this.inner.format; }
  get discardGranularity(): number { return this.inner.discardGranularity; }
  get snapshots(): BlockBackend['snapshots'] { return this.inner.snapshots; }
  read(offset: number, dst: Uint8Array): Promise<void> { return this.inner.read(offset, dst); }
  write(offset: number, src: Uint8Array): Promise<void> { return this.inner.write(offset, src); }
  flush(): Promise<void> { return this.inner.flush(); }
  discard(offset: number, len: number): Promise<void> { return this.inner.discard(offset, len); }
  writeZeroes(offset: number, len: number): Promise<void> { return this.inner.writeZeroes(offset, len); }
  close(): Promise<void> { return this.inner.close(); }
}
