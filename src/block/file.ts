/**
 * A host file holding a disk image, with positional reads and writes.
 *
 * Why node's fs promises rather than a worker thread of our own: every FileHandle
 * call (pread, pwrite, fdatasync, fstat) already runs on libuv's thread pool and only
 * its completion comes back to the main loop, so a slow disk never stalls the guest's
 * devices or CPUs. A dedicated worker would add a message round trip and a copy (or a
 * SharedArrayBuffer) per request for the same effect. Several requests may be in the
 * pool at once (UV_THREADPOOL_SIZE threads, 4 by default); the block drivers order
 * the writes that must be ordered by awaiting them.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from '../system/options.js';
import { BlockIOError } from './block.js';

/** A host error as one readable line: "No such file or directory" rather than "ENOENT: no such file or directory, open '...'" */
function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': case 'EPERM': return 'Permission denied';
    case 'EISDIR': return 'Is a directory';
    case 'EROFS': return 'Read-only file system';
    default: return err.message ?? String(e);
  }
}

/** An open image file. Reads past the end of the file return zeros, like a sparse file's holes. */
export class HostFile {
  private constructor(private readonly fh: FileHandle, readonly path: string, readonly readOnly: boolean) {}

  /** Opens `path` read-only (O_RDONLY) or read-write; failures are UserErrors naming the file. */
  static async open(path: string, readOnly: boolean): Promise<HostFile> {
    try {
      const fh = await open(path, readOnly ? 'r' : 'r+');
      const st = await fh.stat();
      // Host block devices are refused: node cannot ask their size (no lseek or ioctl).
      if (!st.isFile()) {
        await fh.close();
        throw new UserError(`could not open disk image ${path}: not a regular file`);
      }
      return new HostFile(fh, path, readOnly);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`could not open disk image ${path}: ${reason(e)}`);
    }
  }

  /** Size of the file in bytes. */
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  /** Fills `dst` from file offset `pos`; the part past the end of the file is zeroed. */
  async read(dst: Uint8Array, pos: number): Promise<void> {
    let done = 0;
    try {
      while (done < dst.length) {
        const { bytesRead } = await this.fh.read(dst, done, dst.length - done, pos + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (e) {
      throw new BlockIOError(`${this.path}: read at ${pos}: ${reason(e)}`);
    }
    dst.fill(0, done);
  }

  /** Writes all of `src` at file offset `pos`. */
  async write(src: Uint8Array, pos: number): Promise<void> {
    if (this.readOnly) throw new BlockIOError(`${this.path}: opened read-only`);
    let done = 0;
    try {
      while (done < src.length) {
        const { bytesWritten } = await this.fh.write(src, done, src.length - done, pos + done);
        done += bytesWritten;
      }
    } catch (e) {
      throw new BlockIOError(`${this.path}: write at ${pos}: ${reason(e)}`);
    }
  }

  /** fdatasync: data written so far (and the metadata needed to read it back) reaches the disk. */
  async sync(): Promise<void> {
    try {
      await this.fh.datasync();
    } catch (e) {
      throw new BlockIOError(`${this.path}: fdatasync: ${reason(e)}`);
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
