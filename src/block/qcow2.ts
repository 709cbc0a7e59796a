/**
 * qcow2 images, versions 2 and 3 (QEMU's docs/interop/qcow2.txt), read and write.
 *
 * Layout in brief: the guest disk is cut into clusters (2^cluster_bits bytes); a guest
 * cluster is found through the L1 table (in memory) and an L2 table (one cluster,
 * cached); the L2 entry says unallocated (read the backing file, or zeros), zero (v3),
 * standard (a host cluster) or compressed (a deflate stream anywhere in the file).
 * Every host cluster in use has a reference count, kept in refcount blocks found
 * through the refcount table.
 *
 * Consistency without a dirty bit: every allocating request writes the refcounts of its
 * new clusters (and new refcount blocks) and its guest data at once (step 1: whole new
 * clusters, except that a partial write to a cluster that reads as zeros, allocated past
 * everything the file holds, writes the new bytes alone, the rest being a hole); what then
 * points at them waits in memory, as QEMU's metadata caches do with cache=writeback, until
 * the guest flushes, a snapshot operation or close() needs it, or too much is waiting
 * (writeBack), which writes in this order, so that at any instant the file on disk is
 * one `qemu-img check` accepts (at worst with leaked clusters):
 *   2. barrier (fdatasync): a cluster is counted on disk before anything points at it;
 *   3. L2 entries (and whole new L2 tables);
 *   4. for new L2 tables: barrier, then the L1 entries pointing at them;
 *   5. clusters no longer referenced (copied-on-write compressed clusters, discarded
 *      clusters, clusters and L2 tables shared with a snapshot and copied on write):
 *      barrier, then their refcounts are decreased: a cluster is counted until nothing
 *      on disk points at it.
 * A process crash at any point leaves at most leaked clusters (and loses the writes since
 * the guest's last flush, as a host crash would); the barriers extend that to a host
 * crash. A barrier per allocating request instead made sequential writes ~30% slower.
 * With cache=unsafe the barriers are skipped. Snapshot operations (qcow2-snapshot.ts)
 * switch atomically to a new state built in free clusters.
 *
 * Shared clusters: bit 63 (COPIED) of an active L1 or L2 entry says the cluster's
 * refcount is 1. Only then is it written in place; otherwise (a cluster or L2 table
 * shared with an internal snapshot) a write, discard or write-zeroes copies the L2 table
 * and allocates a new data cluster, and the old ones lose a reference (step 5).
 *
 * Writes, discards and write-zeroes take an exclusive lock; reads share it, so reads
 * run in parallel with each other but never see a request's metadata half-updated.
 *
 * Supported: v2 and v3, refcount widths 1 to 64 bits, zero clusters, reading zlib
 * compressed clusters (a write copies the cluster out), backing files (read-through,
 * copy-on-write of partial clusters), preallocated zero clusters, growing the refcount
 * table (up to QEMU's 8 MiB limit), internal snapshots (listed, created, applied,
 * deleted: qcow2-snapshot.ts; images that have them are writable). Refused at open with
 * a UserError: encryption, external data files, extended L2 entries, zstd compression,
 * unknown incompatible features, a malformed snapshot table; opening for writing an
 * image that is dirty or marked corrupt (these open read-only). At run time, refused
 * with an I/O error: any write after corrupt metadata or a failed metadata write was
 * seen, and a data write onto a metadata cluster (QEMU's overlap check).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { constants as zlibConstants, inflateRaw } from 'node:zlib';
import { open } from 'node:fs/promises';
import { UserError } from '../system/options.js';
import { BlockIOError, checkRange, copyViews, openAt, sliceViews, totalLength, type BlockBackend, type BlockFormat, type BlockOpenOptions, type CacheMode } from './block.js';
import type { HostFile } from './file.js';
import { zeroFill, zeros } from '../system/host-memory.js';
import { Qcow2Snapshots, readSnapshotTable, snapshotL1Clusters, snapshotTableSize, MAX_SNAPSHOTS, type SnapshotEntry } from './qcow2-snapshot.js';

const inflateRawAsync = promisify(inflateRaw);

const MAGIC = 0x514649fb; // "QFI\xfb"
const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
/** QEMU's limits, which keep every table we hold in memory small. */
const MAX_CLUSTER_BITS = 21;
export const MAX_L1_BYTES = 32 << 20;
export const MAX_REFTABLE_BYTES = 8 << 20;
const MAX_BACKING_NAME = 1023;

/** Incompatible feature bits (header bytes 72-79). */
const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTL2 = 1n << 4n;

/** Header extension types. */
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_NAMES = 0x6803f857;

/** High word of an L1/L2 entry: bit 63 (refcount is exactly one), bit 62 (compressed). */
export const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;
/** Reserved bits of a standard L2 entry (1-8, 56-61) and of an L1 entry (0-8, 56-62). */
const L2_LO_RESERVED = 0x1fe;
const L2_HI_RESERVED = 0x3f000000;
export const L1_LO_RESERVED = 0x1ff;
export const L1_HI_RESERVED = 0x7f000000;
/** Bit 0 of a standard L2 entry (v3): the cluster reads as zeros. */
const LO_ZERO = 1;

/** The parsed fixed header. */
export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

/** A 64-bit big-endian header field as a number, or a UserError if it is not a safe integer. */
function u64(dv: DataView, off: number, path: string, what: string): number {
  const v = dv.getBigUint64(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${path}: ${what} ${v} is too large`);
  return Number(v);
}

/** Parses and checks the fixed header in `buf` (the first cluster, or at least its first 4 KiB). */
export function parseQcow2Header(buf: Uint8Array, path: string): Qcow2Header {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < V2_HEADER_LENGTH || dv.getUint32(0) !== MAGIC) throw new UserError(`${path}: not a qcow2 image (bad magic)`);
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) throw new UserError(`${path}: unsupported qcow2 version ${version}`);
  const clusterBits = dv.getUint32(20);
  if (clusterBits < 9 || clusterBits > MAX_CLUSTER_BITS) throw new UserError(`${path}: unsupported cluster size 2^${clusterBits} (512 bytes to 2 MiB)`);
  const cs = 2 ** clusterBits;
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(dv, 8, path, 'backing file offset'),
    backingFileSize: dv.getUint32(16),
    clusterBits,
    size: u64(dv, 24, path, 'disk size'),
    cryptMethod: dv.getUint32(32),
    l1Size: dv.getUint32(36),
    l1TableOffset: u64(dv, 40, path, 'L1 table offset'),
    refcountTableOffset: u64(dv, 48, path, 'refcount table offset'),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: u64(dv, 64, path, 'snapshot table offset'),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
  };
  if (version === 3) {
    if (buf.length < V3_MIN_HEADER_LENGTH) throw new UserError(`${path}: truncated qcow2 header`);
    h.incompatible = dv.getBigUint64(72);
    h.compatible = dv.getBigUint64(80);
    h.autoclear = dv.getBigUint64(88);
    h.refcountOrder = dv.getUint32(96);
    h.headerLength = dv.getUint32(100);
    if (h.headerLength < V3_MIN_HEADER_LENGTH || h.headerLength % 8 !== 0 || h.headerLength > Math.min(cs, buf.length)) {
      throw new UserError(`${path}: invalid qcow2 header length ${h.headerLength}`);
    }
    if (h.headerLength > 104) h.compressionType = buf[104];
    if (h.refcountOrder > 6) throw new UserError(`${path}: invalid refcount width 2^${h.refcountOrder} bits`);
  }
  if (h.cryptMethod !== 0) throw new UserError(`${path}: encrypted qcow2 images are not supported`);
  if (h.backingFileOffset !== 0 && h.backingFileSize > MAX_BACKING_NAME) throw new UserError(`${path}: backing file name too long`);
  if (h.l1TableOffset % cs !== 0) throw new UserError(`${path}: L1 table offset ${h.l1TableOffset} is not cluster-aligned`);
  if (h.l1Size * 8 > MAX_L1_BYTES) throw new UserError(`${path}: L1 table too large (${h.l1Size} entries)`);
  const perL1 = cs * (cs / 8);
  if (h.l1Size < Math.ceil(h.size / perL1)) throw new UserError(`${path}: L1 table too small for a ${h.size}-byte disk`);
  if (h.refcountTableOffset % cs !== 0 || h.refcountTableOffset === 0) throw new UserError(`${path}: invalid refcount table offset ${h.refcountTableOffset}`);
  if (h.refcountTableClusters === 0 || h.refcountTableClusters * cs > MAX_REFTABLE_BYTES) throw new UserError(`${path}: invalid refcount table size (${h.refcountTableClusters} clusters)`);
  if (h.nbSnapshots > MAX_SNAPSHOTS) throw new UserError(`${path}: too many snapshots (${h.nbSnapshots})`);
  if (h.snapshotsOffset % cs !== 0 || (h.nbSnapshots > 0 && h.snapshotsOffset === 0)) throw new UserError(`${path}: invalid snapshot table offset ${h.snapshotsOffset}`);
  return h;
}

/** Names the set bits of `bits`, from the image's feature name table where it has one. */
function featureList(bits: bigint, names: Map<number, string>): string {
  const out: string[] = [];
  for (let b = 0; b < 64; b++) if (bits & (1n << BigInt(b))) out.push(names.get(b) ?? `bit ${b}`);
  return out.join(', ');
}

/** What an L2 entry says about a guest cluster. */
export type Mapping =
  | { kind: 'unallocated' }
  | { kind: 'zero'; host: number; copied: boolean }
  | { kind: 'normal'; host: number; copied: boolean }
  | { kind: 'compressed'; host: number; len: number };

const UNALLOCATED: Mapping = { kind: 'unallocated' };

/** A 64-bit big-endian table entry as two 32-bit words. */
export function entryAt(t: Uint8Array, i: number): [hi: number, lo: number] {
  const dv = new DataView(t.buffer, t.byteOffset + i * 8, 8);
  return [dv.getUint32(0), dv.getUint32(4)];
}

export function setEntry(t: Uint8Array, i: number, hi: number, lo: number): void {
  const dv = new DataView(t.buffer, t.byteOffset + i * 8, 8);
  dv.setUint32(0, hi >>> 0);
  dv.setUint32(4, lo >>> 0);
}

/** Bits 9-55 of an entry: a host offset. */
export function offsetBits(hi: number, lo: number): number {
  return (hi & 0xffffff) * 2 ** 32 + ((lo & ~0x1ff) >>> 0);
}

/** The entry words for host offset `off` with bit 63 set. */
export function copiedEntry(off: number): [number, number] {
  return [(HI_COPIED | Math.floor(off / 2 ** 32)) >>> 0, off % 2 ** 32];
}

/** Reads and writes of refcount entries of 2^order bits (sub-byte widths start at the least significant bit). */
export function getRefcount(b: Uint8Array, i: number, order: number): number {
  switch (order) {
    case 0: return (b[i >> 3] >> (i & 7)) & 1;
    case 1: return (b[i >> 2] >> ((i & 3) * 2)) & 3;
    case 2: return (b[i >> 1] >> ((i & 1) * 4)) & 15;
    case 3: return b[i];
    case 4: return (b[2 * i] << 8) | b[2 * i + 1];
    case 5: return new DataView(b.buffer, b.byteOffset).getUint32(4 * i);
    default: {
      const dv = new DataView(b.buffer, b.byteOffset);
      return dv.getUint32(8 * i) * 2 ** 32 + dv.getUint32(8 * i + 4);
    }
  }
}

export function setRefcount(b: Uint8Array, i: number, order: number, v: number): void {
  switch (order) {
    case 0: b[i >> 3] = (b[i >> 3] & ~(1 << (i & 7))) | (v << (i & 7)); break;
    case 1: b[i >> 2] = (b[i >> 2] & ~(3 << ((i & 3) * 2))) | (v << ((i & 3) * 2)); break;
    case 2: b[i >> 1] = (b[i >> 1] & ~(15 << ((i & 1) * 4))) | (v << ((i & 1) * 4)); break;
    case 3: b[i] = v; break;
    case 4: b[2 * i] = v >> 8; b[2 * i + 1] = v & 0xff; break;
    case 5: new DataView(b.buffer, b.byteOffset).setUint32(4 * i, v); break;
    default: {
      const dv = new DataView(b.buffer, b.byteOffset);
      dv.setUint32(8 * i, Math.floor(v / 2 ** 32));
      dv.setUint32(8 * i + 4, v % 2 ** 32);
    }
  }
}

/** A readers-writer lock, first come first served (a waiting writer holds back later readers). */
class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: { exclusive: boolean; go: () => void }[] = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** True if a reader could take the lock at once: no writer holds it or waits for it. */
  readableNow(): boolean {
    return !this.writer && this.waiting.length === 0;
  }

  /** Takes the lock exclusively at once if nobody holds it or waits for it; release() gives it back. */
  tryExclusive(): boolean {
    if (this.writer || this.readers > 0 || this.waiting.length > 0) return false;
    this.writer = true;
    return true;
  }

  release(): void {
    this.writer = false;
    this.pump();
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((go) => {
      this.waiting.push({ exclusive, go });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0 && !this.writer) {
      const next = this.waiting[0];
      if (next.exclusive && this.readers > 0) return;
      this.waiting.shift();
      if (next.exclusive) this.writer = true;
      else this.readers++;
      next.go();
    }
  }
}

/**
 * Metadata clusters (L2 tables, refcount blocks) by host offset, least recently used
 * evicted first. Entries in use by the running write are pinned: evicting and
 * re-reading one of those would lose its not-yet-written changes.
 */
class ClusterCache {
  private readonly map = new Map<number, Uint8Array>();
  private readonly pinned = new Set<number>();
  /** Changed in memory, not yet on disk (Qcow2Backend.writeBack): kept until written. */
  private readonly dirty = new Set<number>();

  constructor(readonly capacity: number) {}

  get(off: number): Uint8Array | undefined {
    const t = this.map.get(off);
    if (t) {
      this.map.delete(off);
      this.map.set(off, t);
    }
    return t;
  }

  put(off: number, t: Uint8Array): void {
    this.map.set(off, t);
    for (const k of this.map.keys()) {
      if (this.map.size <= this.capacity) break;
      if (k !== off && !this.pinned.has(k) && !this.dirty.has(k)) this.map.delete(k);
    }
  }

  delete(off: number): void {
    this.map.delete(off);
  }

  pin(off: number): void {
    this.pinned.add(off);
  }

  unpinAll(): void {
    this.pinned.clear();
  }

  markDirty(off: number): void {
    this.dirty.add(off);
  }

  cleanAll(): void {
    this.dirty.clear();
  }
}

/** An L2 table being changed: its host offset, contents, and whether this request created it. */
interface TableRef {
  off: number;
  table: Uint8Array;
  fresh: boolean;
}

/** The work of one allocating request, committed in the order the header comment gives. */
interface Txn {
  /** L2 tables created for this request, by L1 index. */
  newTables: Map<number, { off: number; table: Uint8Array }>;
  /** Existing L2 tables with changed entries [lo, hi], by host offset. */
  changed: Map<number, { table: Uint8Array; lo: number; hi: number }>;
  /** Guest data for newly allocated (or reused preallocated) clusters: a cluster's bytes, in parts. */
  data: { host: number; parts: Uint8Array[] }[];
  /** Host byte ranges that stop being referenced once the L2 entries are on disk. */
  frees: { host: number; len: number }[];
  /** Refcounts were increased: a barrier must come before the first pointer to them. */
  allocated: boolean;
}

/**
 * A qcow2 image. Members without `private` are shared with qcow2-snapshot.ts, which
 * works on the same state (as QEMU's qcow2-snapshot.c on BDRVQcow2State).
 */
export class Qcow2Backend implements BlockBackend {
  readonly format = 'qcow2';
  readonly size: number;
  readonly readOnly: boolean;
  readonly discardGranularity: number;
  readonly snapshots: Qcow2Snapshots;

  readonly cs: number;
  readonly l2Entries: number;
  readonly rbEntries: number;
  readonly lock = new RwLock();
  readonly l2Cache: ClusterCache;
  readonly rbCache: ClusterCache;
  /** Clusters holding metadata we know of, which an allocation must never hand out nor a data write touch. */
  readonly metaClusters = new Set<number>();
  /** Refcount blocks changed by the running request: byte range [lo, hi) to write. */
  private readonly dirtyRb = new Map<number, { block: Uint8Array; lo: number; hi: number }>();
  /**
   * Metadata changed in memory and not yet on disk (steps 3 to 5 of the header comment):
   * L2 entries [lo, hi] by table offset, L1 entries, host ranges to release, and whether
   * clusters were allocated (their refcounts need a barrier before the L2 entries).
   */
  private readonly pending = {
    allocated: false,
    l2: new Map<number, { table: Uint8Array; lo: number; hi: number }>(),
    l1: new Set<number>(),
    frees: [] as { host: number; len: number }[],
  };
  /** Lowest cluster index that may be free. */
  freeHint = 0;
  /** Set when corrupt metadata or a failed metadata write was seen: no more writes. */
  broken: string | undefined;
  /** The last decompressed cluster (sequential reads hit it repeatedly). */
  lastCompressed: { host: number; data: Uint8Array } | undefined;

  private constructor(
    readonly file: HostFile,
    readonly h: Qcow2Header,
    /** The active L1 table (a snapshot operation replaces it). */
    public l1: Uint8Array,
    public reftable: Uint8Array,
    snapshots: SnapshotEntry[],
    private readonly backing: BlockBackend | undefined,
    readOnly: boolean,
    private readonly cache: CacheMode,
  ) {
    this.snapshots = new Qcow2Snapshots(this, snapshots);
    this.size = h.size;
    this.readOnly = readOnly;
    this.cs = 2 ** h.clusterBits;
    this.discardGranularity = h.version === 3 ? this.cs : 0;
    this.l2Entries = this.cs / 8;
    this.rbEntries = (this.cs * 8) / 2 ** h.refcountOrder;
    // About 8 MiB of each kind of table, and never fewer than a handful.
    const tables = Math.max(8, Math.floor((8 << 20) / this.cs));
    this.l2Cache = new ClusterCache(tables);
    this.rbCache = new ClusterCache(tables);
  }

  /** Opens an image whose file openBlockBackend has opened; `depth` counts backing levels. */
  static async open(file: HostFile, opts: BlockOpenOptions, depth: number): Promise<Qcow2Backend> {
    const path = file.path;
    const fileSize = await file.size();
    const first = new Uint8Array(4096);
    await file.read(first, 0);
    if (fileSize < V2_HEADER_LENGTH) throw new UserError(`${path}: too short to be a qcow2 image`);
    let h = parseQcow2Header(first, path);
    const cs = 2 ** h.clusterBits;
    const cluster0 = new Uint8Array(cs);
    cluster0.set(first.subarray(0, Math.min(cs, first.length)));
    if (cs > first.length) await file.read(cluster0.subarray(first.length), first.length);
    h = parseQcow2Header(cluster0, path);

    // Header extensions, up to the end of the first cluster.
    const dv = new DataView(cluster0.buffer);
    const featureNames = new Map<number, string>();
    let backingFormat: string | undefined;
    for (let p = h.headerLength; ;) {
      if (p + 8 > cs) throw new UserError(`${path}: header extensions run past the first cluster`);
      const type = dv.getUint32(p);
      const len = dv.getUint32(p + 4);
      if (type === EXT_END) break;
      if (len > cs - p - 8) throw new UserError(`${path}: header extension 0x${type.toString(16)} runs past the first cluster`);
      const data = cluster0.subarray(p + 8, p + 8 + len);
      if (type === EXT_BACKING_FORMAT) backingFormat = new TextDecoder().decode(data);
      else if (type === EXT_FEATURE_NAMES) {
        for (let e = 0; e + 48 <= len; e += 48) {
          if (data[e] !== 0) continue; // only incompatible features matter here
          const name = data.subarray(e + 2, e + 48);
          const nul = name.indexOf(0);
          featureNames.set(data[e + 1], new TextDecoder().decode(nul < 0 ? name : name.subarray(0, nul)));
        }
      }
      p += 8 + Math.ceil(len / 8) * 8;
    }

    const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
    if (h.incompatible & ~known) throw new UserError(`${path}: unsupported qcow2 feature(s): ${featureList(h.incompatible & ~known, featureNames)}`);
    if (h.incompatible & INCOMPAT_DATA_FILE) throw new UserError(`${path}: qcow2 images with an external data file are not supported`);
    if (h.incompatible & INCOMPAT_EXTL2) throw new UserError(`${path}: qcow2 images with extended L2 entries are not supported`);
    if (h.compressionType !== 0 || h.incompatible & INCOMPAT_COMPRESSION) {
      throw new UserError(`${path}: compression type ${h.compressionType === 1 ? 'zstd' : h.compressionType} is not supported (only zlib)`);
    }
    if (!opts.readOnly) {
      const ro = 'it can only be opened read-only';
      if (h.incompatible & INCOMPAT_DIRTY) throw new UserError(`${path}: image is dirty (refcounts may be stale; repair with 'qemu-img check -r all'), ${ro}`);
      if (h.incompatible & INCOMPAT_CORRUPT) throw new UserError(`${path}: image is marked corrupt (repair with 'qemu-img check -r all'), ${ro}`);
    }
    const snapshots = await readSnapshotTable(file, h, fileSize);

    const l1 = new Uint8Array(h.l1Size * 8);
    await file.read(l1, h.l1TableOffset);
    const reftable = new Uint8Array(h.refcountTableClusters * cs);
    await file.read(reftable, h.refcountTableOffset);

    let backing: BlockBackend | undefined;
    if (h.backingFileOffset !== 0 && h.backingFileSize > 0) {
      const nameBuf = new Uint8Array(h.backingFileSize);
      await file.read(nameBuf, h.backingFileOffset);
      const name = new TextDecoder().decode(nameBuf);
      if (name.startsWith('json:')) throw new UserError(`${path}: backing file '${name}' uses a json: specification, which is not supported`);
      const fmt = backingFormat;
      if (fmt !== undefined && fmt !== 'raw' && fmt !== 'qcow2') throw new UserError(`${path}: backing file format '${fmt}' is not supported`);
      const bpath = isAbsolute(name) ? name : resolve(dirname(path), name);
      try {
        backing = await openAt({ file: bpath, format: fmt as BlockFormat | undefined, readOnly: true, cache: opts.cache }, depth + 1);
      } catch (e) {
        if (e instanceof UserError) throw new UserError(`${path}: backing file: ${e.message}`);
        throw e;
      }
    }

    const q = new Qcow2Backend(file, h, l1, reftable, snapshots, backing, opts.readOnly, opts.cache);
    try {
      q.checkTables();
      // Unknown auto-clear features must be cleared before the first write (we know
      // none: bit 0 says the bitmaps are consistent, which our writes would falsify).
      if (!opts.readOnly && h.autoclear !== 0n) {
        const b = new Uint8Array(8);
        await file.write(b, 88);
        await q.barrier();
      }
    } catch (e) {
      await backing?.close();
      throw e;
    }
    return q;
  }

  /**
   * Checks L1 and refcount table entries, and records the metadata clusters they and the
   * snapshot table name (anew after a snapshot operation).
   */
  checkTables(): void {
    const { cs, h } = this;
    const path = this.file.path;
    this.metaClusters.clear();
    const addRange = (off: number, len: number) => {
      for (let c = Math.floor(off / cs); c * cs < off + len; c++) this.metaClusters.add(c);
    };
    addRange(0, cs);
    addRange(h.l1TableOffset, h.l1Size * 8);
    addRange(h.refcountTableOffset, this.reftable.length);
    addRange(h.snapshotsOffset, snapshotTableSize(this.snapshots.entries));
    for (const c of snapshotL1Clusters(this.snapshots.entries, cs)) this.metaClusters.add(c);
    for (let i = 0; i < h.l1Size; i++) {
      const [hi, lo] = entryAt(this.l1, i);
      const off = offsetBits(hi, lo);
      if (lo & L1_LO_RESERVED || hi & L1_HI_RESERVED || off % cs !== 0) throw new UserError(`${path}: corrupt L1 table entry ${i}`);
      if (off !== 0) this.metaClusters.add(off / cs);
    }
    for (let i = 0; i < this.reftable.length / 8; i++) {
      const off = this.reftableEntry(i);
      if (off % cs !== 0) throw new UserError(`${path}: corrupt refcount table entry ${i}`);
      if (off !== 0) this.metaClusters.add(off / cs);
    }
  }

  // ---- Public interface ----

  async read(offset: number, dst: Uint8Array): Promise<void> {
    checkRange(this.size, offset, dst.length);
    await this.lock.shared(async () => {
      const io: Promise<void>[] = [];
      // Consecutive standard clusters that are also consecutive in the file are read at once.
      let run: { host: number; pos: number; len: number } | undefined;
      const flushRun = () => {
        if (run) io.push(this.file.read(dst.subarray(run.pos, run.pos + run.len), run.host));
        run = undefined;
      };
      for (let pos = 0; pos < dst.length;) {
        const g = offset + pos;
        const gc = Math.floor(g / this.cs);
        const inC = g - gc * this.cs;
        const n = Math.min(this.cs - inC, dst.length - pos);
        const m = await this.lookup(gc);
        if (m.kind === 'normal') {
          if (run && run.host + run.len === m.host + inC && run.pos + run.len === pos) run.len += n;
          else {
            flushRun();
            run = { host: m.host + inC, pos, len: n };
          }
        } else {
          flushRun();
          const part = dst.subarray(pos, pos + n);
          if (m.kind === 'zero') part.fill(0);
          else if (m.kind === 'unallocated') io.push(this.readBacking(g, part));
          else io.push(this.decompress(m).then((c) => part.set(c.subarray(inC, inC + n))));
        }
        pos += n;
      }
      flushRun();
      await settleAll(io);
    });
  }

  /**
   * At once, if every cluster of the range is known without reading metadata from the file
   * (its L2 table unallocated or cached), none is compressed or left to the backing file,
   * and the host's page cache holds the data: what read() would do, within the caller's turn.
   */
  readNow(offset: number, dsts: readonly Uint8Array[]): boolean {
    const len = totalLength(dsts);
    checkRange(this.size, offset, len);
    // A writer may be between its metadata and its data (a cluster mapped, not yet written).
    if (!this.lock.readableNow()) return false;
    const data: InPlaceRun[] = [];
    const zero: InPlaceRun[] = [];
    for (let pos = 0; pos < len;) {
      const g = offset + pos;
      const gc = Math.floor(g / this.cs);
      const inC = g - gc * this.cs;
      const n = Math.min(this.cs - inC, len - pos);
      const m = this.mappingNow(gc);
      if (!m) return false;
      if (m.kind === 'normal') addRun(data, m.host + inC, pos, n);
      else if (this.readsAsZero(m, gc * this.cs)) addRun(zero, 0, pos, n);
      else return false;
      pos += n;
    }
    for (const z of zero) sliceViews(dsts, z.pos, z.len).forEach(zeroFill);
    return data.every((r) => this.file.readNow(sliceViews(dsts, r.pos, r.len), r.host));
  }

  async write(offset: number, src: Uint8Array): Promise<void> {
    await this.writev(offset, [src]);
  }

  /**
   * The bytes of `srcs` go to the file as they are (pwritev), only partly written clusters
   * being copied into a whole one: nothing here reads guest data, so bytes changing under
   * the write only change what lands in the clusters it allocates or overwrites.
   */
  async writev(offset: number, srcs: readonly Uint8Array[]): Promise<void> {
    const len = totalLength(srcs);
    this.checkWrite(offset, len);
    if (len === 0) return;
    if (!this.lock.tryExclusive()) {
      await this.lock.exclusive(() => this.writeLocked(offset, srcs, len));
      return;
    }
    try {
      // Into clusters already allocated here whose L2 tables are cached (a guest's steady
      // writes): the data goes to the file before any await, so that the host I/O starts
      // while the guest is still running (the main loop polls only for requests in flight).
      const runs = this.inPlaceNow(offset, len);
      await (runs ? this.writeInPlace(srcs, runs) : this.writeLocked(offset, srcs, len));
    } finally {
      this.lock.release();
    }
  }

  async flush(): Promise<void> {
    await this.lock.exclusive(() => this.writeBack());
    await this.barrier();
  }

  async discard(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
    // v2 has no zero clusters: deallocating would expose the backing file, so discard
    // (advisory) does nothing there. v3: whole clusters become zero clusters.
    if (this.h.version === 2 || len === 0) return;
    await this.lock.exclusive(async () => {
      const first = Math.ceil(offset / this.cs);
      const end = this.clusterEnd(offset + len);
      if (end > first) await this.zeroClusters(first, end);
    });
  }

  async writeZeroes(offset: number, len: number): Promise<void> {
    this.checkWrite(offset, len);
    if (len === 0) return;
    await this.lock.exclusive(async () => {
      const end = offset + len;
      let pos = offset;
      while (pos < end) {
        const gc = Math.floor(pos / this.cs);
        const cStart = gc * this.cs;
        const wholeEnd = this.clusterEnd(end);
        if (this.h.version === 3 && pos === cStart && wholeEnd > gc) {
          await this.zeroClusters(gc, wholeEnd);
          pos = Math.min(wholeEnd * this.cs, end);
          continue;
        }
        // A partial cluster (or v2): write zeros where it does not read as zeros
        // already, at most a zero chunk at a time.
        const z = zeros(Math.min(cStart + this.cs, end) - pos);
        if (!this.readsAsZero(await this.lookup(gc), cStart)) await this.writeLocked(pos, [z], z.length);
        pos += z.length;
      }
    });
  }

  async close(): Promise<void> {
    await this.lock.exclusive(async () => {
      try {
        await this.writeBack();
      } finally {
        this.broken ??= 'closed';
        await this.file.close();
        await this.backing?.close();
      }
    });
  }

  // ---- Mapping ----

  /** End (exclusive) of the run of whole guest clusters ending at or before byte `end` (the disk's last, partial cluster counts as whole). */
  private clusterEnd(end: number): number {
    return end === this.size ? Math.ceil(end / this.cs) : Math.floor(end / this.cs);
  }

  private checkWrite(offset: number, len: number): void {
    if (this.readOnly) throw new BlockIOError(`${this.file.path}: read-only`);
    checkRange(this.size, offset, len);
    if (this.broken) throw new BlockIOError(`${this.file.path}: not writing to the image (${this.broken})`);
  }

  /** Marks the image unwritable and returns the error to throw. */
  corrupt(what: string): BlockIOError {
    this.broken ??= `corrupt metadata: ${what}`;
    return new BlockIOError(`${this.file.path}: corrupt metadata: ${what}`);
  }

  /** Marks the image unwritable after a failed metadata update (memory and disk may disagree) and returns the error to throw. */
  private updateFailed(e: unknown): BlockIOError {
    this.broken ??= `failed metadata update: ${(e as Error).message}`;
    return e instanceof BlockIOError ? e : new BlockIOError(String(e));
  }

  private l1Entry(i: number): { off: number; copied: boolean } {
    const [hi, lo] = entryAt(this.l1, i);
    return { off: offsetBits(hi, lo), copied: (hi & HI_COPIED) !== 0 };
  }

  reftableEntry(i: number): number {
    const [hi, lo] = entryAt(this.reftable, i);
    return hi * 2 ** 32 + lo;
  }

  /** Loads a metadata cluster through `cache`; `off` was checked cluster-aligned by whoever read it. */
  async loadCluster(cache: ClusterCache, off: number): Promise<Uint8Array> {
    let t = cache.get(off);
    if (!t) {
      t = new Uint8Array(this.cs);
      await this.file.read(t, off);
      // A concurrent reader may have loaded it meanwhile: keep one copy.
      const again = cache.get(off);
      if (again) return again;
      cache.put(off, t);
    }
    return t;
  }

  /** The L2 table for L1 index `i`, or undefined if none is allocated. */
  private async l2Table(i: number): Promise<{ off: number; table: Uint8Array; copied: boolean } | undefined> {
    if (i >= this.h.l1Size) throw this.corrupt(`L1 index ${i} past the table`);
    const e = this.l1Entry(i);
    if (e.off === 0) return undefined;
    return { off: e.off, table: await this.loadCluster(this.l2Cache, e.off), copied: e.copied };
  }

  decode(hi: number, lo: number, gc: number): Mapping {
    if (hi & HI_COMPRESSED) {
      // x = 62 - (cluster_bits - 8) bits of byte offset, then the count of additional sectors up to bit 61.
      const x = BigInt(62 - (this.h.clusterBits - 8));
      const e = ((BigInt(hi) & 0x3fffffffn) << 32n) | BigInt(lo);
      const host = Number(e & ((1n << x) - 1n));
      const sectors = Number(e >> x);
      if (host === 0) throw this.corrupt(`compressed cluster at offset 0 (guest cluster ${gc})`);
      return { kind: 'compressed', host, len: (sectors + 1) * 512 - (host % 512) };
    }
    if (lo & L2_LO_RESERVED || hi & L2_HI_RESERVED) throw this.corrupt(`reserved bits set in L2 entry of guest cluster ${gc}`);
    const host = offsetBits(hi, lo);
    const copied = (hi & HI_COPIED) !== 0;
    if (host % this.cs !== 0) throw this.corrupt(`unaligned cluster offset ${host} (guest cluster ${gc})`);
    if (lo & LO_ZERO) {
      if (this.h.version === 2) throw this.corrupt(`zero flag in a version 2 image (guest cluster ${gc})`);
      return { kind: 'zero', host, copied };
    }
    if (host === 0) {
      if (copied) throw this.corrupt(`cluster offset 0 (guest cluster ${gc})`);
      return UNALLOCATED;
    }
    return { kind: 'normal', host, copied };
  }

  /** Where guest cluster `gc` is; `copied` only if its L2 table is not shared either. */
  private async lookup(gc: number): Promise<Mapping> {
    return this.mapIn(await this.l2Table(Math.floor(gc / this.l2Entries)), gc);
  }

  /** Guest cluster `gc`'s mapping in its L2 table `t` (undefined: none allocated). */
  private mapIn(t: { table: Uint8Array; copied: boolean } | undefined, gc: number): Mapping {
    if (!t) return UNALLOCATED;
    const [hi, lo] = entryAt(t.table, gc % this.l2Entries);
    const m = this.decode(hi, lo, gc);
    return !t.copied && (m.kind === 'normal' || m.kind === 'zero') ? { ...m, copied: false } : m;
  }

  /** Guest cluster `gc`'s mapping if known without reading the file (its L2 table unallocated or cached), else null. */
  private mappingNow(gc: number): Mapping | null {
    const i = Math.floor(gc / this.l2Entries);
    if (i >= this.h.l1Size) return null;
    const e = this.l1Entry(i);
    if (e.off === 0) return UNALLOCATED;
    const table = this.l2Cache.get(e.off);
    return table ? this.mapIn({ table, copied: e.copied }, gc) : null;
  }

  /**
   * The file ranges a write of `len` bytes at guest `offset` goes to if every cluster it
   * touches is allocated here (not shared) and its L2 table cached; otherwise null.
   */
  private inPlaceNow(offset: number, len: number): InPlaceRun[] | null {
    const runs: InPlaceRun[] = [];
    for (let pos = 0; pos < len;) {
      const g = offset + pos;
      const gc = Math.floor(g / this.cs);
      const m = this.mappingNow(gc);
      if (m?.kind !== 'normal' || !m.copied || this.metaClusters.has(m.host / this.cs)) return null;
      const inC = g - gc * this.cs;
      const n = Math.min(this.cs - inC, len - pos);
      addRun(runs, m.host + inC, pos, n);
      pos += n;
    }
    return runs;
  }

  /** Writes the request's bytes [pos, +len) of each run at its host offset. */
  private writeInPlace(srcs: readonly Uint8Array[], runs: InPlaceRun[]): Promise<void> {
    return settleAll(runs.map((w) => this.file.writev(sliceViews(srcs, w.pos, w.len), w.host)));
  }

  /** True if a cluster with mapping `m`, starting at guest byte `cStart`, reads as zeros without looking at data. */
  private readsAsZero(m: Mapping, cStart: number): boolean {
    return m.kind === 'zero' || (m.kind === 'unallocated' && (!this.backing || cStart >= this.backing.size));
  }

  /** Reads guest bytes not allocated here: from the backing file, zeros past its end. */
  private async readBacking(g: number, dst: Uint8Array): Promise<void> {
    const avail = this.backing ? Math.max(0, Math.min(dst.length, this.backing.size - g)) : 0;
    dst.fill(0, avail);
    if (avail > 0) await this.backing!.read(g, dst.subarray(0, avail));
  }

  private async decompress(m: { host: number; len: number }): Promise<Uint8Array> {
    if (this.lastCompressed?.host === m.host) return this.lastCompressed.data;
    const raw = new Uint8Array(m.len);
    await this.file.read(raw, m.host);
    let out: Uint8Array;
    try {
      // The stream ends when a whole cluster came out; sync-flush semantics accept the
      // padding after it and report a stream that would give more than a cluster.
      out = await inflateRawAsync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: this.cs });
    } catch (e) {
      throw new BlockIOError(`${this.file.path}: bad compressed cluster at ${m.host}: ${(e as Error).message}`);
    }
    if (out.length !== this.cs) throw new BlockIOError(`${this.file.path}: compressed cluster at ${m.host} holds ${out.length} bytes, not ${this.cs}`);
    this.lastCompressed = { host: m.host, data: out };
    return out;
  }

  /** The current contents of guest cluster `gc` (mapped by `m`), for copy-on-write. */
  private async clusterContents(gc: number, m: Mapping): Promise<Uint8Array> {
    const buf = new Uint8Array(this.cs);
    const g = gc * this.cs;
    if (m.kind === 'unallocated') await this.readBacking(g, buf.subarray(0, Math.min(this.cs, this.size - g)));
    else if (m.kind === 'normal') await this.file.read(buf, m.host);
    else if (m.kind === 'compressed') buf.set(await this.decompress(m));
    return buf;
  }

  // ---- Writing ----

  private async writeLocked(offset: number, srcs: readonly Uint8Array[], len: number): Promise<void> {
    const inPlace: InPlaceRun[] = [];
    // Data for new clusters: the whole cluster, or (at `inC`) the new bytes alone of one
    // that reads as zeros around them.
    const allocs: { gc: number; parts: Uint8Array[]; inC: number; old: Mapping }[] = [];
    for (let pos = 0; pos < len;) {
      const g = offset + pos;
      const gc = Math.floor(g / this.cs);
      const inC = g - gc * this.cs;
      const n = Math.min(this.cs - inC, len - pos);
      const m = await this.lookup(gc);
      if (m.kind === 'normal' && m.copied) {
        // QEMU's overlap check: a data cluster must not be one of our metadata clusters.
        if (this.metaClusters.has(m.host / this.cs)) throw this.corrupt(`guest cluster ${gc} is mapped onto metadata at ${m.host}`);
        addRun(inPlace, m.host + inC, pos, n);
      } else if (n === this.cs || this.readsAsZero(m, gc * this.cs)) {
        allocs.push({ gc, parts: sliceViews(srcs, pos, n), inC, old: m });
      } else {
        // A new cluster is written whole: the old contents around the new bytes first.
        const buf = await this.clusterContents(gc, m);
        copyViews(buf, inC, sliceViews(srcs, pos, n));
        allocs.push({ gc, parts: [buf], inC: 0, old: m });
      }
      pos += n;
    }
    await this.writeInPlace(srcs, inPlace);
    if (allocs.length === 0) return;

    const txn = newTxn();
    await this.transaction(txn, async () => {
      for (const a of allocs) {
        const { t, index } = await this.tableForWrite(txn, a.gc);
        let host: number;
        if (a.old.kind === 'zero' && a.old.host !== 0 && a.old.copied) host = a.old.host; // preallocated: reuse
        else {
          host = await this.allocCluster();
          txn.allocated = true;
          if (a.old.kind === 'normal' || (a.old.kind === 'zero' && a.old.host !== 0)) txn.frees.push({ host: a.old.host, len: this.cs });
          else if (a.old.kind === 'compressed') txn.frees.push({ host: a.old.host, len: a.old.len });
        }
        if (totalLength(a.parts) === this.cs) txn.data.push({ host, parts: a.parts });
        // Past all the file holds, the cluster reads as zeros already (QEMU writes zeros
        // there with fallocate): a random 4 KiB write then costs the host 4 KiB, not 64.
        else if (host >= this.file.zeroFrom) txn.data.push({ host: host + a.inC, parts: a.parts });
        else {
          const buf = new Uint8Array(this.cs);
          copyViews(buf, a.inC, a.parts);
          txn.data.push({ host, parts: [buf] });
        }
        this.changeEntry(txn, t, index, ...copiedEntry(host));
      }
    });
  }

  /** Makes guest clusters [first, end) read as zeros (v3 zero clusters), releasing their host clusters. */
  private async zeroClusters(first: number, end: number): Promise<void> {
    // One transaction per L2 table keeps the work of a huge range bounded.
    for (let gc = first; gc < end;) {
      const l1i = Math.floor(gc / this.l2Entries);
      const stop = Math.min(end, (l1i + 1) * this.l2Entries);
      const existing = await this.l2Table(l1i);
      if (!existing && (!this.backing || gc * this.cs >= this.backing.size)) {
        gc = stop; // no table and nothing below: reads as zeros already
        continue;
      }
      const txn = newTxn();
      await this.transaction(txn, async () => {
        for (let c = gc; c < stop; c++) {
          // Looked up before tableForWrite, which would copy a shared table even for no change.
          const m = await this.lookup(c);
          if (m.kind === 'zero' && m.host === 0) continue;
          if (m.kind === 'unallocated' && this.readsAsZero(m, c * this.cs)) continue;
          const { t, index } = await this.tableForWrite(txn, c);
          if (m.kind === 'normal' || m.kind === 'zero') txn.frees.push({ host: m.host, len: this.cs });
          else if (m.kind === 'compressed') txn.frees.push({ host: m.host, len: m.len });
          this.changeEntry(txn, t, index, 0, LO_ZERO);
        }
      });
      gc = stop;
    }
  }

  /** The L2 table (created in `txn` if need be) and entry index for guest cluster `gc`. */
  private async tableForWrite(txn: Txn, gc: number): Promise<{ t: TableRef; index: number }> {
    const l1i = Math.floor(gc / this.l2Entries);
    const index = gc % this.l2Entries;
    const created = txn.newTables.get(l1i);
    if (created) return { t: { ...created, fresh: true }, index };
    const t = await this.l2Table(l1i);
    if (t?.copied) {
      this.l2Cache.pin(t.off);
      return { t: { off: t.off, table: t.table, fresh: false }, index };
    }
    // A new table, or a copy of one shared with a snapshot (no bit 63): the copy's
    // entries point at the same clusters, whose refcounts (one per L1 table reaching
    // them) do not change; the shared table loses the active L1's reference.
    const off = await this.allocCluster();
    txn.allocated = true;
    const table = t ? t.table.slice() : new Uint8Array(this.cs);
    if (t) txn.frees.push({ host: t.off, len: this.cs });
    this.metaClusters.add(off / this.cs);
    txn.newTables.set(l1i, { off, table });
    return { t: { off, table, fresh: true }, index };
  }

  /** Sets entry `index` of `t` and records it for writing (a new table is written whole). */
  private changeEntry(txn: Txn, t: TableRef, index: number, hi: number, lo: number): void {
    setEntry(t.table, index, hi, lo);
    if (t.fresh) return;
    const c = txn.changed.get(t.off);
    if (c) {
      c.lo = Math.min(c.lo, index);
      c.hi = Math.max(c.hi, index);
    } else txn.changed.set(t.off, { table: t.table, lo: index, hi: index });
  }

  /**
   * Runs `build` (which allocates and changes entries in memory), writes its refcounts and
   * data, and queues the rest for writeBack. Any failure after the first change marks the
   * image broken: memory and disk may then disagree, and writing on could corrupt it.
   */
  private async transaction(txn: Txn, build: () => Promise<void>): Promise<void> {
    try {
      await build();
      // 1. Refcounts and data.
      await settleAll([this.writeDirtyRefcounts(), ...this.coalesce(txn.data).map((d) => this.file.writev(d.parts, d.host))]);
      const { pending } = this;
      for (const [l1i, t] of txn.newTables) {
        setEntry(this.l1, l1i, ...copiedEntry(t.off));
        this.l2Cache.put(t.off, t.table);
        this.l2Cache.markDirty(t.off);
        pending.l2.set(t.off, { table: t.table, lo: 0, hi: this.l2Entries - 1 });
        pending.l1.add(l1i);
      }
      for (const [off, c] of txn.changed) {
        const p = pending.l2.get(off);
        if (p) {
          p.lo = Math.min(p.lo, c.lo);
          p.hi = Math.max(p.hi, c.hi);
        } else {
          this.l2Cache.markDirty(off);
          pending.l2.set(off, c);
        }
      }
      pending.frees.push(...txn.frees);
      pending.allocated ||= txn.allocated;
    } catch (e) {
      throw this.updateFailed(e);
    } finally {
      this.l2Cache.unpinAll();
      this.rbCache.unpinAll();
      this.dirtyRb.clear();
    }
    // Dirty tables stay in the cache: at most half of it waits.
    if (this.pending.l2.size > this.l2Cache.capacity / 2) await this.writeBack();
  }

  /**
   * Writes the metadata transactions left in memory (steps 2 to 5 of the header comment).
   * Runs under the exclusive lock; nothing once the image is broken.
   */
  async writeBack(): Promise<void> {
    const { pending } = this;
    const { l2, l1, frees } = pending;
    if (this.broken !== undefined || (l2.size === 0 && frees.length === 0)) return;
    try {
      // 2. Counted before pointed at.
      if (pending.allocated) await this.barrier();
      // 3. L2 entries.
      await settleAll([...l2].map(([off, c]) => this.file.write(c.table.subarray(c.lo * 8, c.hi * 8 + 8), off + c.lo * 8)));
      // 4. New tables on disk before the L1 entries that point at them.
      if (l1.size > 0) {
        await this.barrier();
        for (const i of l1) await this.file.write(this.l1.subarray(i * 8, i * 8 + 8), this.h.l1TableOffset + i * 8);
      }
      // 5. Release what nothing on disk points at any more.
      if (frees.length > 0) {
        await this.barrier();
        for (const f of frees) {
          for (let c = Math.floor(f.host / this.cs); c * this.cs < f.host + f.len; c++) await this.addRefcount(c, -1);
        }
        await this.writeDirtyRefcounts();
        this.lastCompressed = undefined;
      }
    } catch (e) {
      throw this.updateFailed(e);
    } finally {
      pending.allocated = false;
      l2.clear();
      l1.clear();
      frees.length = 0;
      this.l2Cache.cleanAll();
      this.rbCache.unpinAll();
      this.dirtyRb.clear();
    }
  }

  /** Merges writes to consecutive host offsets into one. */
  private coalesce(data: { host: number; parts: Uint8Array[] }[]): { host: number; parts: Uint8Array[] }[] {
    const sorted = [...data].sort((a, b) => a.host - b.host);
    const out: { host: number; parts: Uint8Array[]; len: number }[] = [];
    for (const d of sorted) {
      const len = totalLength(d.parts);
      const last = out[out.length - 1];
      if (last && last.host + last.len === d.host) {
        last.parts.push(...d.parts);
        last.len += len;
      } else out.push({ host: d.host, parts: [...d.parts], len });
    }
    return out;
  }

  async barrier(): Promise<void> {
    if (this.cache !== 'unsafe') await this.file.sync();
  }

  // ---- Refcounts and allocation ----

  async refBlock(rti: number): Promise<Uint8Array | undefined> {
    const off = this.reftableEntry(rti);
    if (off === 0) return undefined;
    this.rbCache.pin(off);
    return this.loadCluster(this.rbCache, off);
  }

  /** Adds `delta` to the refcount of cluster `c` (in memory; writeDirtyRefcounts writes it). */
  private async addRefcount(c: number, delta: number): Promise<void> {
    const rti = Math.floor(c / this.rbEntries);
    const block = rti < this.reftable.length / 8 ? await this.refBlock(rti) : undefined;
    if (!block) throw this.corrupt(`refcount of cluster ${c} has no refcount block`);
    const i = c - rti * this.rbEntries;
    const v = getRefcount(block, i, this.h.refcountOrder) + delta;
    const max = this.h.refcountOrder === 6 ? Number.MAX_SAFE_INTEGER : 2 ** 2 ** this.h.refcountOrder - 1;
    if (v < 0 || v > max) throw this.corrupt(`refcount of cluster ${c} would become ${v}`);
    setRefcount(block, i, this.h.refcountOrder, v);
    if (v === 0) this.released(c);
    const bits = 2 ** this.h.refcountOrder;
    const lo = Math.floor((i * bits) / 8);
    const hi = lo + Math.max(1, bits / 8);
    const off = this.reftableEntry(rti);
    const d = this.dirtyRb.get(off);
    if (d) {
      d.lo = Math.min(d.lo, lo);
      d.hi = Math.max(d.hi, hi);
    } else this.dirtyRb.set(off, { block, lo, hi });
  }

  /** Cluster `c` was freed: it may be allocated again, as anything. */
  released(c: number): void {
    if (c < this.freeHint) this.freeHint = c;
    this.metaClusters.delete(c);
    this.l2Cache.delete(c * this.cs);
    this.rbCache.delete(c * this.cs);
  }

  private async writeDirtyRefcounts(): Promise<void> {
    const writes = [...this.dirtyRb].map(([off, d]) => this.file.write(d.block.subarray(d.lo, d.hi), off + d.lo));
    this.dirtyRb.clear();
    await settleAll(writes);
  }

  /** The lowest cluster index at or after freeHint whose refcount is 0. */
  private async findFree(): Promise<number> {
    for (let c = this.freeHint; ;) {
      const rti = Math.floor(c / this.rbEntries);
      if (rti >= this.reftable.length / 8) return c;
      const block = await this.refBlock(rti);
      if (!block) return c;
      const base = rti * this.rbEntries;
      for (let i = c - base; i < this.rbEntries; i++) if (getRefcount(block, i, this.h.refcountOrder) === 0) return base + i;
      c = base + this.rbEntries;
    }
  }

  /** Allocates one host cluster (refcount 1, in memory) and returns its offset. */
  private async allocCluster(): Promise<number> {
    for (;;) {
      const c = await this.findFree();
      const rti = Math.floor(c / this.rbEntries);
      if (rti >= this.reftable.length / 8) {
        await this.growRefcountTable(c);
        continue;
      }
      if (this.metaClusters.has(c)) throw this.corrupt(`metadata cluster ${c} has refcount 0`);
      if ((c + 1) * this.cs > 2 ** 53 || c * this.cs >= 2 ** 56) throw new BlockIOError(`${this.file.path}: image file too large`);
      if (this.reftableEntry(rti) === 0) {
        await this.newRefBlock(rti, c);
        continue;
      }
      await this.addRefcount(c, 1);
      this.freeHint = c + 1;
      return c * this.cs;
    }
  }

  /**
   * Replaces the refcount table by one twice as large (at least), when cluster `c` (free,
   * as is everything the table does not cover) lies beyond what it covers. Everything
   * from `c` on is free, so the new refcount blocks and then the new table go there; the
   * blocks count themselves and the table. Once they are durable, one write of the header
   * switches tables; once that is durable, the old table's clusters are released.
   */
  private async growRefcountTable(c: number): Promise<void> {
    const { cs, rbEntries } = this;
    const oldEntries = this.reftable.length / 8;
    const rtiOf = (x: number) => Math.floor(x / rbEntries);
    let k = 0;
    let m = 0;
    for (;;) {
      const entries = Math.max(2 * oldEntries, rtiOf(c + m + k) + 1);
      const newK = Math.ceil((entries * 8) / cs);
      const newM = rtiOf(c + m + newK - 1) - rtiOf(c) + 1;
      if (newK === k && newM === m) break;
      k = newK;
      m = newM;
    }
    if (k * cs > MAX_REFTABLE_BYTES) throw new BlockIOError(`${this.file.path}: refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`);
    if ((c + m + k) * cs > 2 ** 53) throw new BlockIOError(`${this.file.path}: image file too large`);
    const table = new Uint8Array(k * cs);
    table.set(this.reftable);
    const writes: Promise<void>[] = [];
    for (let j = 0; j < m; j++) {
      const rti = rtiOf(c) + j;
      const block = new Uint8Array(cs);
      for (let x = Math.max(c, rti * rbEntries); x < Math.min(c + m + k, (rti + 1) * rbEntries); x++) setRefcount(block, x - rti * rbEntries, this.h.refcountOrder, 1);
      const off = (c + j) * cs;
      setEntry(table, rti, Math.floor(off / 2 ** 32), off % 2 ** 32);
      writes.push(this.file.write(block, off));
      this.rbCache.put(off, block);
    }
    const tableOff = (c + m) * cs;
    writes.push(this.file.write(table, tableOff));
    await settleAll(writes);
    await this.barrier();
    const hdr = new Uint8Array(12);
    const hv = new DataView(hdr.buffer);
    hv.setBigUint64(0, BigInt(tableOff));
    hv.setUint32(8, k);
    await this.file.write(hdr, 48); // refcount_table_offset, refcount_table_clusters
    await this.barrier();
    const old = { off: this.h.refcountTableOffset, clusters: this.h.refcountTableClusters };
    this.reftable = table;
    this.h.refcountTableOffset = tableOff;
    this.h.refcountTableClusters = k;
    for (let x = c; x < c + m + k; x++) this.metaClusters.add(x);
    for (let x = old.off / cs; x < old.off / cs + old.clusters; x++) {
      this.metaClusters.delete(x);
      await this.addRefcount(x, -1);
    }
  }

  /**
   * Creates the refcount block for table index `rti` in cluster `c`, which lies in the
   * range the block covers (all of it free, having no block), so the block counts itself.
   * Written and made durable before the table entry points at it.
   */
  private async newRefBlock(rti: number, c: number): Promise<void> {
    const block = new Uint8Array(this.cs);
    setRefcount(block, c - rti * this.rbEntries, this.h.refcountOrder, 1);
    const off = c * this.cs;
    await this.file.write(block, off);
    await this.barrier();
    const e = new Uint8Array(8);
    setEntry(e, 0, Math.floor(off / 2 ** 32), off % 2 ** 32);
    await this.file.write(e, this.h.refcountTableOffset + rti * 8);
    this.reftable.set(e, rti * 8);
    this.metaClusters.add(c);
    this.rbCache.put(off, block);
    this.rbCache.pin(off);
  }
}

function newTxn(): Txn {
  return { newTables: new Map(), changed: new Map(), data: [], frees: [], allocated: false };
}

/** Request bytes [pos, +len) written in place at file offset `host`. */
interface InPlaceRun {
  host: number;
  pos: number;
  len: number;
}

/** Adds request bytes [pos, +n) at file offset `host` to `runs`, merging runs contiguous in both the request and the file. */
function addRun(runs: InPlaceRun[], host: number, pos: number, n: number): void {
  const last = runs[runs.length - 1];
  if (last && last.host + last.len === host && last.pos + last.len === pos) last.len += n;
  else runs.push({ host, pos, len: n });
}

/** Awaits every promise (so none is left running unobserved), then throws the first failure. */
export async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === 'rejected') throw r.reason;
}

/** How to make a new qcow2 image (a small `qemu-img create -f qcow2`). */
export interface Qcow2CreateOptions {
  /** Virtual disk size in bytes. */
  size: number;
  /** Default 16 (64 KiB clusters). */
  clusterBits?: number;
  /** Default 3. */
  version?: 2 | 3;
  /** Refcount width 2^order bits (v3 only); default 4. */
  refcountOrder?: number;
  /** Backing file name, stored as given (relative names are relative to the new image). */
  backingFile?: string;
  backingFormat?: BlockFormat;
}

/** Creates an empty qcow2 image at `path`; refuses to overwrite an existing file. */
export async function createQcow2(path: string, o: Qcow2CreateOptions): Promise<void> {
  const cb = o.clusterBits ?? 16;
  const version = o.version ?? 3;
  const order = version === 2 ? 4 : (o.refcountOrder ?? 4);
  if (cb < 9 || cb > MAX_CLUSTER_BITS || order < 0 || order > 6 || !Number.isSafeInteger(o.size) || o.size < 0) throw new UserError(`${path}: invalid qcow2 creation options`);
  const cs = 2 ** cb;
  const l1Size = Math.ceil(o.size / (cs * (cs / 8)));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cs));
  const rbEntries = (cs * 8) / 2 ** order;
  // Header, refcount table, refcount blocks, L1 table: grow the counts until they cover themselves.
  let rtClusters = 1;
  let blocks = 1;
  for (;;) {
    const total = 1 + rtClusters + blocks + l1Clusters;
    const needBlocks = Math.ceil(total / rbEntries);
    const needRt = Math.ceil((needBlocks * 8) / cs);
    if (needBlocks === blocks && needRt === rtClusters) break;
    blocks = needBlocks;
    rtClusters = needRt;
  }
  const total = 1 + rtClusters + blocks + l1Clusters;
  const img = new Uint8Array(total * cs);
  const dv = new DataView(img.buffer);
  const headerLength = version === 3 ? 112 : V2_HEADER_LENGTH;
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, version);
  dv.setUint32(20, cb);
  dv.setBigUint64(24, BigInt(o.size));
  dv.setUint32(36, l1Size);
  const rtOff = cs;
  const l1Off = (1 + rtClusters + blocks) * cs;
  dv.setBigUint64(40, BigInt(l1Off));
  dv.setBigUint64(48, BigInt(rtOff));
  dv.setUint32(56, rtClusters);
  if (version === 3) {
    dv.setUint32(96, order);
    dv.setUint32(100, headerLength);
  }
  let p = headerLength;
  const enc = new TextEncoder();
  if (o.backingFormat) {
    const f = enc.encode(o.backingFormat);
    dv.setUint32(p, EXT_BACKING_FORMAT);
    dv.setUint32(p + 4, f.length);
    img.set(f, p + 8);
    p += 8 + Math.ceil(f.length / 8) * 8;
  }
  p += 8; // end of extensions
  if (o.backingFile !== undefined) {
    const name = enc.encode(o.backingFile);
    if (name.length > MAX_BACKING_NAME || p + name.length > cs) throw new UserError(`${path}: backing file name too long`);
    img.set(name, p);
    dv.setBigUint64(8, BigInt(p));
    dv.setUint32(16, name.length);
  }
  for (let b = 0; b < blocks; b++) {
    const blockOff = (1 + rtClusters + b) * cs;
    dv.setBigUint64(rtOff + b * 8, BigInt(blockOff));
    const block = img.subarray(blockOff, blockOff + cs);
    for (let c = b * rbEntries; c < Math.min(total, (b + 1) * rbEntries); c++) setRefcount(block, c - b * rbEntries, order, 1);
  }
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (e) {
    throw new UserError(`could not create ${path}: ${(e as Error).message}`);
  }
  try {
    await fh.writeFile(img);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
