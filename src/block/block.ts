/**
 * The block layer: what a disk device (virtio-blk) sees of a disk image, whatever its
 * format. Offsets and lengths are in bytes; every one is checked against the image
 * size here, so a guest-supplied sector can never reach outside the image, and every
 * failure at run time is a rejected promise with a {@link BlockIOError} (a device turns
 * it into an I/O error status), never an exception that escapes to the host.
 *
 * Opening (format probing, header checks) fails with a one-line {@link UserError}
 * naming the file. Formats: raw (raw.ts) and qcow2 (qcow2.ts, QEMU's
 * docs/interop/qcow2.txt), the same two QEMU's `-drive format=` accepts most often.
 * qcow2 images also hold internal snapshots ({@link BlockSnapshots}, qcow2-snapshot.ts),
 * what QEMU's savevm/loadvm take and restore on every writable disk.
 *
 * All file I/O goes through node's asynchronous fs API (file.ts), which runs each
 * pread/pwrite/fdatasync on libuv's thread pool: the main loop never waits for a disk.
 */
import { UserError } from '../system/options.js';
import { HostFile } from './file.js';

// In a module of their own so that the browser build (memory.ts) takes them without node's fs.
export { BlockIOError, checkRange, copyViews, sliceViews, totalLength } from './range.js';

/** A snapshot operation that failed (unknown snapshot, read-only image, I/O error...): the message is one line for the user. */
export class BlockSnapshotError extends Error {}

/**
 * How the host page cache is used (QEMU's `cache=`):
 * - `writeback`: writes go to the page cache, flush() calls fdatasync.
 * - `none`: QEMU bypasses the page cache with O_DIRECT. Node cannot allocate the
 *   aligned buffers O_DIRECT needs, so Vireo uses the page cache as for `writeback`;
 *   the guest-visible semantics are the same (a volatile write cache the guest flushes).
 * - `unsafe`: flush() does nothing, and qcow2 skips its ordering barriers; a host crash
 *   may lose or corrupt the image. For throw-away images only.
 */
export type CacheMode = 'writeback' | 'none' | 'unsafe';

/** Image formats. */
export type BlockFormat = 'raw' | 'qcow2';

/** A disk image, open. */
export interface BlockBackend {
  /** Size of the virtual disk in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  readonly format: BlockFormat;
  /**
   * The unit in which discard can actually release space (bytes): a qcow2 cluster,
   * or 0 where discard is accepted but does nothing (raw files: node has no fallocate).
   */
  readonly discardGranularity: number;
  /** Fills `dst` from the disk at byte `offset`. */
  read(offset: number, dst: Uint8Array): Promise<void>;
  /**
   * Fills `dsts`, consecutive on the disk from byte `offset`, at once if that needs no
   * waiting (the host's page cache holds the data, or the disk is in memory); returns false
   * otherwise, and then the buffers' contents are undefined (the caller uses read()). Throws
   * {@link BlockIOError} for a range outside the disk. Formats without it always use read().
   */
  readNow?(offset: number, dsts: readonly Uint8Array[]): boolean;
  /** Writes `src` at byte `offset`. The caller must not modify `src` until the promise settles. */
  write(offset: number, src: Uint8Array): Promise<void>;
  /**
   * Writes the concatenation of `srcs` at byte `offset` without first copying them into
   * one buffer. The bytes may be read at any time until the promise settles, and whatever
   * they are then is what lands on the disk (nothing else: a format offers writev only if
   * bytes changing under it cannot harm the image). Formats without it take write().
   */
  writev?(offset: number, srcs: readonly Uint8Array[]): Promise<void>;
  /** Makes every write that completed before the call durable (fdatasync). */
  flush(): Promise<void>;
  /** The range's contents are no longer needed (advisory: it may read back as before or as zeros). */
  discard(offset: number, len: number): Promise<void>;
  /** The range reads back as zeros afterwards. */
  writeZeroes(offset: number, len: number): Promise<void>;
  /** Waits for running requests, then closes the image (and its backing chain). */
  close(): Promise<void>;
  /** Internal snapshots of this image (qcow2); absent for formats without them (raw). */
  readonly snapshots?: BlockSnapshots;
}

/** An internal snapshot, as QEMU's `qemu-img snapshot -l` and `info snapshots` list it. */
export interface SnapshotInfo {
  /** Unique in the image, chosen by the image ("1", "2", ...). */
  id: string;
  /** Not necessarily unique (QEMU's savevm replaces a snapshot of the same name itself). */
  name: string;
  date: Date;
  /** The guest clock when the snapshot was taken, in nanoseconds (exact below 2^53). */
  vmClockNs: number;
  /** Bytes of machine state stored with the snapshot (QEMU's savevm); 0 for a disk-only snapshot. */
  vmStateSize: number;
}

/**
 * Internal snapshots of one image: the top image only, whatever its backing chain. Every
 * operation waits for the requests in flight, is crash-safe (a process crash, or a host
 * crash unless cache=unsafe, leaves either the old or the new state, never a corrupt
 * image) and ends with a flush. Failures are {@link BlockSnapshotError}s.
 */
export interface BlockSnapshots {
  list(): SnapshotInfo[];
  /** Snapshots the disk as it is now (QEMU's qcow2_snapshot_create); the id is chosen anew. */
  create(name: string, opts?: { date?: Date; vmClockNs?: number }): Promise<SnapshotInfo>;
  /** Reverts the disk to snapshot `nameOrId` (an id first, else a name; QEMU's qcow2_snapshot_goto). */
  apply(nameOrId: string): Promise<void>;
  /** Deletes snapshot `nameOrId` (an id first, else a name). */
  delete(nameOrId: string): Promise<void>;
}

/** How to open an image (a subset of {@link import('../system/options.js').DriveOptions}). */
export interface BlockOpenOptions {
  file: string;
  /** Probed from the first bytes when undefined: qcow2 magic, else raw. */
  format?: BlockFormat;
  readOnly: boolean;
  cache: CacheMode;
}

/** Chained backing files deeper than this are refused (also stops a file that names itself). */
export const MAX_BACKING_DEPTH = 16;

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/**
 * Opens a disk image. Resolves to a backend, or rejects with a one-line UserError
 * naming the file (missing file, permission, malformed or unsupported image).
 */
export async function openBlockBackend(opts: BlockOpenOptions): Promise<BlockBackend> {
  return openAt(opts, 0);
}

/** openBlockBackend for a backing file `depth` levels below the image the user named. */
export async function openAt(opts: BlockOpenOptions, depth: number): Promise<BlockBackend> {
  if (depth > MAX_BACKING_DEPTH) throw new UserError(`${opts.file}: backing chain deeper than ${MAX_BACKING_DEPTH} images (does a backing file name itself?)`);
  const file = await HostFile.open(opts.file, opts.readOnly);
  try {
    let format = opts.format;
    if (format === undefined) {
      const magic = new Uint8Array(4);
      await file.read(magic, 0);
      format = new DataView(magic.buffer).getUint32(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
    }
    // Loaded lazily so that a raw-only VM never parses the qcow2 module.
    if (format === 'qcow2') return await (await import('./qcow2.js')).Qcow2Backend.open(file, opts, depth);
    return await (await import('./raw.js')).RawBackend.open(file, opts);
  } catch (e) {
    await file.close().catch(() => {});
    throw e;
  }
}
