/**
 * A host file holding a disk image, with positional reads and writes.
 *
 * No call blocks the main loop. A read the host's page cache holds whole is copied at once
 * (preadv2 with RWF_NOWAIT, nowait-read.ts); other reads, and writes, of up to 128 KiB go to
 * the block I/O thread (host-io.ts), which polls for them, so that a guest's stream of small
 * requests does not pay for waking a sleeping thread each time (on a virtual machine host
 * ~75 us, a third of a 4 KiB read: QD1 4 KiB IOPS went up 25-35% over libuv's pool); larger
 * ones (a write of several buffers as one pwritev), fdatasync and fstat, and any request
 * the thread has no free slot for or fails, run on libuv's thread pool through node's
 * FileHandle (which also words the errors).
 * Several requests may be in flight at once; the block drivers order the writes that
 * must be ordered by awaiting them.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { UserError } from '../system/options.js';
import { BlockIOError } from './block.js';
import { hostIo } from './host-io.js';
import { sliceViews, totalLength } from './range.js';
import { enableNowaitReads, readNowait } from './nowait-read.js';

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
  /** Requests on the I/O thread, which close() waits for. */
  private readonly onThread = new Set<Promise<number>>();

  /**
   * Every byte from this offset on reads as zero: it lies past the file's size at open and
   * no write since has reached it (writes count from the moment they are issued).
   */
  get zeroFrom(): number {
    return this.end;
  }

  private constructor(private readonly fh: FileHandle, readonly path: string, readonly readOnly: boolean, private end: number) {}

  /** Opens `path` read-only (O_RDONLY) or read-write; failures are UserErrors naming the file. */
  static async open(path: string, readOnly: boolean): Promise<HostFile> {
    await enableNowaitReads();
    try {
      const fh = await open(path, readOnly ? 'r' : 'r+');
      const st = await fh.stat();
      // Host block devices are refused: node cannot ask their size (no lseek or ioctl).
      if (!st.isFile()) {
        await fh.close();
        throw new UserError(`could not open disk image ${path}: not a regular file`);
      }
      // The thread starts now rather than at the first request that needs it: a worker takes
      // ~30 ms to start, longer while a guest keeps the host busy.
      hostIo();
      return new HostFile(fh, path, readOnly, st.size);
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
    if (this.readNow([dst], pos)) return;
    const fast = this.track(hostIo().read(this.fh.fd, dst, pos));
    if (fast !== null) {
      const n = await fast;
      if (n >= 0) {
        dst.fill(0, n);
        return;
      }
    }
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

  /**
   * Fills `dsts` (consecutive in the file from `pos`) at once if the host's page cache holds
   * all of it (never waiting for the disk); false if not, with the buffers' contents undefined.
   */
  readNow(dsts: readonly Uint8Array[], pos: number): boolean {
    return readNowait(this.fh.fd, dsts, pos);
  }

  /** Writes all of `src` at file offset `pos`. */
  write(src: Uint8Array, pos: number): Promise<void> {
    return this.writev([src], pos);
  }

  /** Writes all of `srcs`, one after the other, at file offset `pos` (pwritev: no copy into one buffer first). */
  async writev(srcs: readonly Uint8Array[], pos: number): Promise<void> {
    if (this.readOnly) throw new BlockIOError(`${this.path}: opened read-only`);
    const len = totalLength(srcs);
    this.end = Math.max(this.end, pos + len);
    const fast = this.track(hostIo().writev(this.fh.fd, srcs, len, pos));
    if (fast !== null && (await fast) === len) return;
    let done = 0;
    try {
      while (done < len) {
        const { bytesWritten } = await this.fh.writev(done === 0 ? srcs : sliceViews(srcs, done, len - done), pos + done);
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

  /** Closes the file once the I/O thread is done with it (its fd could be reused by then). */
  async close(): Promise<void> {
    await Promise.all(this.onThread);
    await this.fh.close();
  }

  private track(request: Promise<number> | null): Promise<number> | null {
    if (request === null) return null;
    this.onThread.add(request);
    void request.then(() => this.onThread.delete(request));
    return request;
  }
}
