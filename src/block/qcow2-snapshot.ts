/**
 * qcow2 internal snapshots (QEMU's block/qcow2-snapshot.c; the snapshot table of
 * docs/interop/qcow2.txt): listing, create, apply (goto) and delete, for savevm/loadvm.
 *
 * Refcounts. A cluster's refcount is the number of L1 tables (the active one and each
 * snapshot's) that reach it, plus one per metadata use; bit 63 (COPIED) of an active L1
 * or L2 entry says the refcount is exactly 1 (written in place), its absence that the
 * cluster is shared (copied on write, by qcow2.ts). Only the active tables' flags count;
 * a snapshot's are stale and ignored, as in QEMU.
 *
 * Crash consistency. QEMU updates refcounts and COPIED flags in place, so a crash in a
 * snapshot operation can leave flags `qemu-img check` calls corruption. Here an operation
 * never writes to a cluster the image uses: it builds the whole new state in free clusters
 *   - a new active L1 table (create, apply; delete when a flag changes),
 *   - copies of the active L2 tables whose flags change,
 *   - a new snapshot table,
 *   - copies of the refcount blocks that change and a new refcount table,
 * makes them durable (barrier), then switches to them with one write of header bytes
 * 36-71 (l1_size, l1_table_offset, refcount_table_offset/clusters, nb_snapshots,
 * snapshots_offset: one sector, so atomic), and a barrier. Before that write the image
 * is the old one untouched, after it the new one, without even a leaked cluster: the new
 * refcount blocks already count the old tables and blocks as free. A cluster is only
 * taken if both the old and the new refcounts say it is free.
 *
 * Where this differs from QEMU in layout, not meaning: create leaves the snapshot the
 * current L1 table (QEMU gives it a copy), and active L2 tables are copied rather than
 * rewritten. Both results are ordinary qcow2 images for QEMU.
 */
import { UserError } from '../system/options.js';
import { BlockIOError, BlockSnapshotError, type BlockSnapshots, type SnapshotInfo } from './block.js';
import type { HostFile } from './file.js';
import {
  HI_COPIED, L1_HI_RESERVED, L1_LO_RESERVED, MAX_L1_BYTES, MAX_REFTABLE_BYTES,
  copiedEntry, entryAt, getRefcount, offsetBits, setEntry, setRefcount, settleAll,
  type Mapping, type Qcow2Backend, type Qcow2Header,
} from './qcow2.js';

/** QEMU's limits: QCOW_MAX_SNAPSHOTS, QCOW_MAX_SNAPSHOTS_SIZE, QCOW_MAX_SNAPSHOT_EXTRA_DATA. */
export const MAX_SNAPSHOTS = 65536;
const MAX_TABLE_BYTES = 1024 * MAX_SNAPSHOTS;
const MAX_EXTRA = 1024;
/** The fixed part of an entry; the extra data Vireo writes (vm_state_size_large, disk_size, icount). */
const ENTRY_HEADER = 40;
const EXTRA = 24;
/** QEMU's QEMUSnapshotInfo holds a name of up to 255 bytes. */
const MAX_NAME = 255;

/** A snapshot table entry. */
export interface SnapshotEntry {
  id: string;
  name: string;
  l1TableOffset: number;
  l1Size: number;
  date: Date;
  vmClockNs: number;
  vmStateSize: number;
  /** The disk size when it was taken; undefined in entries older than the field (the current size). */
  diskSize: number | undefined;
  /** The entry as stored (fixed part, extra data, id, name): written back unchanged. */
  raw: Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses the entry at `pos` of `b` (all of it there); throws a message naming what is wrong. */
function parseEntry(b: Uint8Array, pos: number, cs: number, fileSize: number): { e: SnapshotEntry; end: number } {
  const dv = new DataView(b.buffer, b.byteOffset + pos);
  const l1Off = dv.getBigUint64(0);
  const l1Size = dv.getUint32(8);
  const idLen = dv.getUint16(12);
  const nameLen = dv.getUint16(14);
  const extraLen = dv.getUint32(36);
  if (extraLen > MAX_EXTRA) throw new Error(`too much extra data (${extraLen} bytes)`);
  const end = pos + ENTRY_HEADER + extraLen + idLen + nameLen;
  if (end > b.length) throw new Error('runs past the end of the table');
  let vmStateSize = dv.getUint32(32);
  if (extraLen >= 8) {
    const large = dv.getBigUint64(ENTRY_HEADER);
    if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`VM state size ${large} is too large`);
    vmStateSize = Number(large);
  }
  const diskSize = extraLen >= 16 ? Number(dv.getBigUint64(ENTRY_HEADER + 8)) : undefined;
  const text = (at: number, len: number, what: string) => {
    let s: string;
    try {
      s = utf8.decode(b.subarray(at, at + len));
    } catch {
      throw new Error(`${what} is not UTF-8`);
    }
    if (s.includes('\0')) throw new Error(`${what} holds a NUL byte`);
    return s;
  };
  const idAt = pos + ENTRY_HEADER + extraLen;
  const id = text(idAt, idLen, 'id');
  const name = text(idAt + idLen, nameLen, 'name');
  if (l1Off % BigInt(cs) !== 0n) throw new Error(`L1 table offset ${l1Off} is not cluster-aligned`);
  if (l1Size * 8 > MAX_L1_BYTES) throw new Error(`L1 table too large (${l1Size} entries)`);
  if (l1Size > 0 && (l1Off === 0n || l1Off + BigInt(l1Size * 8) > BigInt(fileSize))) throw new Error(`L1 table at ${l1Off} is outside the file`);
  const e: SnapshotEntry = {
    id, name, l1TableOffset: Number(l1Off), l1Size,
    date: new Date(dv.getUint32(16) * 1000 + Math.floor(dv.getUint32(20) / 1e6)),
    vmClockNs: Number(dv.getBigUint64(24)),
    vmStateSize, diskSize, raw: b.slice(pos, end),
  };
  return { e, end };
}

/** Reads and checks the snapshot table; a broken one is a one-line UserError naming the file. */
export async function readSnapshotTable(file: HostFile, h: Qcow2Header, fileSize: number): Promise<SnapshotEntry[]> {
  if (h.nbSnapshots === 0) return [];
  const cs = 2 ** h.clusterBits;
  const base = h.snapshotsOffset;
  // Its length is known entry by entry: read in growing pieces, within QEMU's bound and the file.
  let buf = new Uint8Array(0);
  const need = async (end: number) => {
    if (end <= buf.length) return;
    if (end > MAX_TABLE_BYTES) throw new Error(`larger than ${MAX_TABLE_BYTES} bytes`);
    if (base + end > fileSize) throw new Error('runs past the end of the file');
    const next = new Uint8Array(Math.min(Math.max(end, 2 * buf.length, 4096), MAX_TABLE_BYTES, fileSize - base));
    next.set(buf);
    await file.read(next.subarray(buf.length), base + buf.length);
    buf = next;
  };
  const entries: SnapshotEntry[] = [];
  const ids = new Set<string>();
  let pos = 0;
  let i = 0;
  try {
    for (; i < h.nbSnapshots; i++) {
      pos = align8(pos);
      await need(pos + ENTRY_HEADER);
      const dv = new DataView(buf.buffer, pos);
      await need(pos + ENTRY_HEADER + Math.min(dv.getUint32(36), MAX_EXTRA + 1) + dv.getUint16(12) + dv.getUint16(14));
      const { e, end } = parseEntry(buf, pos, cs, fileSize);
      if (ids.has(e.id)) throw new Error(`duplicate id ${quote(e.id)}`);
      ids.add(e.id);
      entries.push(e);
      pos = end;
    }
  } catch (e) {
    if (e instanceof BlockIOError) throw new UserError(e.message);
    throw new UserError(`${file.path}: invalid snapshot table at ${base}: entry ${i}: ${(e as Error).message}`);
  }
  return entries;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Bytes of the table holding `entries` (each 8-byte aligned). */
export function snapshotTableSize(entries: SnapshotEntry[]): number {
  let n = 0;
  for (const e of entries) n = align8(n) + e.raw.length;
  return n;
}

function serializeTable(entries: SnapshotEntry[]): Uint8Array {
  const b = new Uint8Array(snapshotTableSize(entries));
  let n = 0;
  for (const e of entries) {
    n = align8(n);
    b.set(e.raw, n);
    n += e.raw.length;
  }
  return b;
}

/**
 * The clusters of the snapshots' L1 tables, each once: overlapping tables (only in a
 * hostile image) are merged first, so the work is bounded by the file, not by their sum.
 */
export function* snapshotL1Clusters(entries: SnapshotEntry[], cs: number): Generator<number> {
  const ranges = entries.filter((e) => e.l1Size > 0).map((e) => [e.l1TableOffset, e.l1TableOffset + e.l1Size * 8]).sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (const [start, end] of ranges) {
    for (let c = Math.max(next, Math.floor(start / cs)); c * cs < end; c++) yield c;
    next = Math.max(next, Math.ceil(end / cs));
  }
}

/** The clusters [off, off + len) spans. */
function* clusters(off: number, len: number, cs: number): Generator<number> {
  for (let c = Math.floor(off / cs); c * cs < off + len; c++) yield c;
}

/** The host clusters [first, end) a data mapping holds a reference to. */
function dataClusters(m: Mapping, cs: number): [first: number, end: number] {
  if (m.kind === 'compressed') return [Math.floor(m.host / cs), Math.ceil((m.host + m.len) / cs)];
  if ((m.kind === 'normal' || m.kind === 'zero') && m.host !== 0) return [m.host / cs, m.host / cs + 1];
  return [0, 0];
}

/**
 * The refcounts of the image being built: changed refcount blocks are copies (each
 * given a free cluster of its own), the rest are read from the image. Nothing is
 * written until {@link finish} has placed the new refcount table.
 */
class RefShadow {
  /** Copied refcount blocks, by refcount table index, and where they go. */
  readonly blocks = new Map<number, { block: Uint8Array; off: number }>();
  /** The new refcount table (grown as blocks are added), a whole number of clusters. */
  private table: Uint8Array;
  /** Clusters whose refcount became 0. */
  readonly freed = new Set<number>();
  /** Clusters of a run being allocated, not to be handed out twice. */
  private readonly reserved = new Set<number>();
  private hint: number;
  private readonly order: number;
  private readonly max: number;

  constructor(private readonly q: Qcow2Backend) {
    this.table = q.reftable.slice();
    this.hint = q.freeHint;
    this.order = q.h.refcountOrder;
    this.max = this.order === 6 ? Number.MAX_SAFE_INTEGER : 2 ** 2 ** this.order - 1;
  }

  // Each getter and adder has a synchronous form for when the block is in memory (the
  // common case: walks touch every cluster), and an asynchronous one that loads it.

  /** The refcount of cluster `c` in the image as it is on disk; undefined if its block is not cached. */
  private liveSync(c: number): number | undefined {
    const { q } = this;
    const rti = Math.floor(c / q.rbEntries);
    const off = rti < q.reftable.length / 8 ? q.reftableEntry(rti) : 0;
    if (off === 0) return 0;
    const block = q.rbCache.get(off);
    return block && getRefcount(block, c - rti * q.rbEntries, this.order);
  }

  private async live(c: number): Promise<number> {
    const rti = Math.floor(c / this.q.rbEntries);
    if (rti >= this.q.reftable.length / 8) return 0;
    const block = await this.q.refBlock(rti);
    return block ? getRefcount(block, c - rti * this.q.rbEntries, this.order) : 0;
  }

  /** The refcount of cluster `c` in the image being built; undefined if that needs a read. */
  getSync(c: number): number | undefined {
    const rti = Math.floor(c / this.q.rbEntries);
    const s = this.blocks.get(rti);
    return s ? getRefcount(s.block, c - rti * this.q.rbEntries, this.order) : this.liveSync(c);
  }

  async get(c: number): Promise<number> {
    return this.getSync(c) ?? this.live(c);
  }

  /** Adds `delta` to the refcount of cluster `c` if its block is copied already; false if not. */
  addSync(c: number, delta: number): boolean {
    const { q } = this;
    const rti = Math.floor(c / q.rbEntries);
    const s = this.blocks.get(rti);
    if (!s) return false;
    const i = c - rti * q.rbEntries;
    const v = getRefcount(s.block, i, this.order) + delta;
    if (v < 0) throw q.corrupt(`refcount of cluster ${c} would become ${v}`);
    if (v > this.max) throw new BlockSnapshotError(`${q.file.path}: refcount of cluster ${c} would exceed ${this.max} (refcount_bits=${2 ** this.order})`);
    setRefcount(s.block, i, this.order, v);
    if (v === 0) this.freed.add(c);
    else this.freed.delete(c);
    return true;
  }

  async add(c: number, delta: number): Promise<void> {
    if (this.addSync(c, delta)) return;
    await this.copyBlock(Math.floor(c / this.q.rbEntries));
    this.addSync(c, delta);
  }

  /** Adds `delta` to the refcounts of the clusters [off, off + len) spans. */
  async addRange(off: number, len: number, delta: number): Promise<void> {
    for (const c of clusters(off, len, this.q.cs)) await this.add(c, delta);
  }

  /** The block for refcount table index `rti`, copied (or new) into a cluster of its own; the old one is released. */
  private async copyBlock(rti: number): Promise<{ block: Uint8Array; off: number }> {
    const { q } = this;
    const liveOff = rti < q.reftable.length / 8 ? q.reftableEntry(rti) : 0;
    const live = liveOff !== 0 ? await q.refBlock(rti) : undefined;
    const s = { block: live ? live.slice() : new Uint8Array(q.cs), off: 0 };
    // In the map before allocating: the allocation may count itself in this very block.
    this.blocks.set(rti, s);
    s.off = await this.alloc(1);
    if (rti >= this.table.length / 8) {
      const bytes = Math.ceil(Math.max((rti + 1) * 8, 2 * this.table.length) / q.cs) * q.cs;
      if (bytes > MAX_REFTABLE_BYTES) throw new BlockIOError(`${q.file.path}: refcount table would exceed ${MAX_REFTABLE_BYTES} bytes`);
      const t = new Uint8Array(bytes);
      t.set(this.table);
      this.table = t;
    }
    setEntry(this.table, rti, Math.floor(s.off / 2 ** 32), s.off % 2 ** 32);
    if (liveOff !== 0) await this.add(liveOff / q.cs, -1);
    return s;
  }

  /** Allocates `n` contiguous clusters free both on disk and in the image being built; returns the offset. */
  async alloc(n: number): Promise<number> {
    const { q } = this;
    let start = this.hint;
    for (let c = this.hint, run = 0; run < n; c++) {
      // Free in the image being built and, where that differs (a copied block), on disk.
      let free = !this.reserved.has(c) && (this.getSync(c) ?? (await this.get(c))) === 0;
      if (free && this.blocks.has(Math.floor(c / q.rbEntries))) free = (this.liveSync(c) ?? (await this.live(c))) === 0;
      if (free && q.metaClusters.has(c)) throw q.corrupt(`metadata cluster ${c} has refcount 0`);
      if (!free) run = 0;
      else if (run++ === 0) start = c;
    }
    if ((start + n) * q.cs > 2 ** 53 || start * q.cs >= 2 ** 56) throw new BlockIOError(`${q.file.path}: image file too large`);
    for (let c = start; c < start + n; c++) this.reserved.add(c);
    for (let c = start; c < start + n; c++) await this.add(c, 1);
    for (let c = start; c < start + n; c++) this.reserved.delete(c);
    if (start === this.hint) this.hint = start + n;
    return start * q.cs;
  }

  /**
   * Releases the old refcount table and places the new one: the last allocation, which
   * may add blocks and so grow the table; then it is placed again, larger.
   */
  async finish(): Promise<{ off: number; table: Uint8Array }> {
    const { q } = this;
    await this.addRange(q.h.refcountTableOffset, q.h.refcountTableClusters * q.cs, -1);
    for (;;) {
      const k = this.table.length / q.cs;
      const off = await this.alloc(k);
      if (this.table.length / q.cs === k) return { off, table: this.table };
      await this.addRange(off, k * q.cs, -1);
    }
  }
}

/** The snapshots of a qcow2 image and the operations on them (QEMU's qcow2_snapshot_*). */
export class Qcow2Snapshots implements BlockSnapshots {
  constructor(private readonly q: Qcow2Backend, public entries: SnapshotEntry[]) {}

  list(): SnapshotInfo[] {
    return this.entries.map(info);
  }

  async create(name: string, opts: { date?: Date; vmClockNs?: number } = {}): Promise<SnapshotInfo> {
    const { q } = this;
    const path = q.file.path;
    if (name === '' || Buffer.byteLength(name) > MAX_NAME || /[\x00-\x1f\x7f]/.test(name)) throw new BlockSnapshotError(`${path}: invalid snapshot name ${quote(name)}`);
    const ms = (opts.date ?? new Date()).getTime();
    if (!(ms >= 0 && ms < 2 ** 32 * 1000)) throw new BlockSnapshotError(`${path}: snapshot date out of range`);
    const vmClockNs = opts.vmClockNs ?? 0;
    if (!Number.isSafeInteger(vmClockNs) || vmClockNs < 0) throw new BlockSnapshotError(`${path}: invalid VM clock ${vmClockNs}`);
    return this.run(async () => {
      if (this.entries.length >= MAX_SNAPSHOTS) throw new BlockSnapshotError(`${path}: too many snapshots`);
      // QEMU's find_new_snapshot_id: one more than the largest numeric id.
      const id = String(this.entries.reduce((max, e) => Math.max(max, Number(/^\s*\+?(\d+)/.exec(e.id)?.[1] ?? 0)), 0) + 1);
      const sec = Math.floor(ms / 1000);
      const raw = entryBytes(id, name, q.h.l1TableOffset, q.h.l1Size, sec, (ms - sec * 1000) * 1e6, vmClockNs, q.size);
      const entry = parseEntry(raw, 0, q.cs, Number.MAX_SAFE_INTEGER).e;
      const entries = [...this.entries, entry];
      if (snapshotTableSize(entries) > MAX_TABLE_BYTES) throw new BlockSnapshotError(`${path}: snapshot table would exceed ${MAX_TABLE_BYTES} bytes`);
      // The snapshot keeps the active L1 table where it is and reaches all it reaches;
      // the active one moves to new clusters, with the flags of shared clusters cleared.
      const sh = new RefShadow(q);
      await this.walk(sh, q.l1, 1);
      await this.commit(sh, await this.activeL1(sh, l1Offsets(q.l1, q.h.l1Size)), entries);
      return info(entry);
    });
  }

  async apply(nameOrId: string): Promise<void> {
    const { q } = this;
    await this.run(async () => {
      const sn = this.find(nameOrId);
      const diskSize = sn.diskSize ?? q.size;
      if (diskSize !== q.size) throw new BlockSnapshotError(`${q.file.path}: snapshot ${quote(sn.name)} is of a ${diskSize}-byte disk, not ${q.size} bytes`);
      const snL1 = await this.readL1(sn);
      // The active L1 table becomes a copy of the snapshot's, as long as both (QEMU pads with zeros).
      // Decrements first: a narrow refcount may have no room for both references at once.
      const sh = new RefShadow(q);
      await this.walk(sh, q.l1, -1);
      await this.walk(sh, snL1, 1);
      await sh.addRange(q.h.l1TableOffset, q.h.l1Size * 8, -1);
      await this.commit(sh, await this.activeL1(sh, l1Offsets(snL1, Math.max(sn.l1Size, q.h.l1Size))), this.entries);
    });
  }

  async delete(nameOrId: string): Promise<void> {
    const { q } = this;
    await this.run(async () => {
      const sn = this.find(nameOrId);
      const sh = new RefShadow(q);
      await this.walk(sh, await this.readL1(sn), -1);
      await sh.addRange(sn.l1TableOffset, sn.l1Size * 8, -1);
      // Clusters the snapshot shared with the active disk may now be the active disk's alone.
      let l1: Uint8Array | undefined = await this.activeL1(sh, l1Offsets(q.l1, q.h.l1Size));
      if (Buffer.compare(l1, q.l1) === 0) l1 = undefined;
      else await sh.addRange(q.h.l1TableOffset, q.h.l1Size * 8, -1);
      await this.commit(sh, l1, this.entries.filter((e) => e !== sn));
    });
  }

  /** Runs a snapshot operation with requests held off; every failure becomes a BlockSnapshotError. */
  private async run<T>(op: () => Promise<T>): Promise<T> {
    const { q } = this;
    if (q.readOnly) throw new BlockSnapshotError(`${q.file.path}: read-only`);
    return q.lock.exclusive(async () => {
      if (q.broken) throw new BlockSnapshotError(`${q.file.path}: not writing to the image (${q.broken})`);
      try {
        // The snapshot is taken of (and a revert replaces) the state on disk.
        await q.writeBack();
        return await op();
      } catch (e) {
        if (e instanceof BlockSnapshotError) throw e;
        throw new BlockSnapshotError((e as Error).message);
      } finally {
        q.l2Cache.unpinAll();
        q.rbCache.unpinAll();
      }
    });
  }

  /** QEMU's find_snapshot_by_id_or_name: an id first, else a name. */
  private find(nameOrId: string): SnapshotEntry {
    const sn = this.entries.find((e) => e.id === nameOrId) ?? this.entries.find((e) => e.name === nameOrId);
    if (!sn) throw new BlockSnapshotError(`${this.q.file.path}: no snapshot ${quote(nameOrId)}`);
    return sn;
  }

  /** A snapshot's L1 table, its entries checked. */
  private async readL1(sn: SnapshotEntry): Promise<Uint8Array> {
    const { q } = this;
    const l1 = new Uint8Array(sn.l1Size * 8);
    await q.file.read(l1, sn.l1TableOffset);
    for (let i = 0; i < sn.l1Size; i++) {
      const [hi, lo] = entryAt(l1, i);
      if (lo & L1_LO_RESERVED || hi & L1_HI_RESERVED || offsetBits(hi, lo) % q.cs !== 0) throw q.corrupt(`L1 table entry ${i} of snapshot ${quote(sn.name)}`);
    }
    return l1;
  }

  /**
   * Adds `delta` to the refcount of every cluster L1 table `l1` reaches: its L2 tables and
   * their data clusters (QEMU's qcow2_update_snapshot_refcount, without the flags).
   */
  private async walk(sh: RefShadow, l1: Uint8Array, delta: 1 | -1): Promise<void> {
    const { q } = this;
    // Whatever is reached must be counted already, and a data cluster must not be metadata.
    const checkL2 = await this.l2Checker();
    const unused = (c: number) => q.corrupt(`cluster ${c} is in use but has refcount 0`);
    /** Returns a promise only when a refcount block must be read or copied. */
    const ref = (c: number, isL2: boolean): Promise<void> | undefined => {
      if (!isL2 && q.metaClusters.has(c)) throw q.corrupt(`cluster ${c} is both metadata and data`);
      const v = sh.getSync(c);
      if (v === 0) throw unused(c);
      if (v !== undefined && sh.addSync(c, delta)) return undefined;
      return (async () => {
        if ((await sh.get(c)) === 0) throw unused(c);
        await sh.add(c, delta);
      })();
    };
    for (let i = 0; i < l1.length / 8; i++) {
      const off = offsetBits(...entryAt(l1, i));
      if (off === 0) continue;
      checkL2(off);
      await ref(off / q.cs, true);
      const table = await q.loadCluster(q.l2Cache, off);
      const dv = new DataView(table.buffer, table.byteOffset);
      for (let j = 0; j < q.l2Entries; j++) {
        const hi = dv.getUint32(j * 8);
        const lo = dv.getUint32(j * 8 + 4);
        if (hi === 0 && lo === 0) continue;
        const m = q.decode(hi, lo, i * q.l2Entries + j);
        const [first, end] = dataClusters(m, q.cs);
        for (let c = first; c < end; c++) {
          const p = ref(c, false);
          if (p) await p;
        }
      }
    }
  }

  /**
   * A check of the L2 tables one L1 table names: inside the file, not one of the tables
   * that find the others, each named once (QEMU never names one twice). It bounds a
   * walk by the size of the file whatever a hostile L1 table says.
   */
  private async l2Checker(): Promise<(off: number) => void> {
    const { q } = this;
    const fileSize = await q.file.size();
    const structural = this.structuralClusters();
    const seen = new Set<number>();
    return (off) => {
      if (off + q.cs > fileSize) throw q.corrupt(`L2 table at ${off} is outside the file`);
      if (structural.has(off / q.cs)) throw q.corrupt(`cluster ${off / q.cs} is both metadata and an L2 table`);
      if (seen.has(off)) throw q.corrupt(`L2 table at ${off} appears twice in one L1 table`);
      seen.add(off);
    };
  }

  /** The header, L1, refcount and snapshot tables, and refcount blocks. */
  private structuralClusters(): Set<number> {
    const { q } = this;
    const { cs, h } = q;
    const set = new Set<number>([0]);
    const add = (off: number, len: number) => {
      for (const c of clusters(off, len, cs)) set.add(c);
    };
    add(h.l1TableOffset, h.l1Size * 8);
    add(h.refcountTableOffset, q.reftable.length);
    add(h.snapshotsOffset, snapshotTableSize(this.entries));
    for (const c of snapshotL1Clusters(this.entries, cs)) set.add(c);
    for (let i = 0; i < q.reftable.length / 8; i++) if (q.reftableEntry(i) !== 0) set.add(q.reftableEntry(i) / cs);
    return set;
  }

  /**
   * The active L1 table over L2 tables `offs` (by L1 index, 0 for none), with the COPIED
   * flags the new refcounts call for. An L2 table whose flags change is copied (the old
   * one may be in use by the image on disk, which must not change).
   */
  private async activeL1(sh: RefShadow, offs: number[]): Promise<Uint8Array> {
    const { q } = this;
    const checkL2 = await this.l2Checker();
    for (let i = 0; i < offs.length; i++) {
      if (offs[i] === 0) continue;
      checkL2(offs[i]);
      const table = await q.loadCluster(q.l2Cache, offs[i]);
      const dv = new DataView(table.buffer, table.byteOffset);
      let copy: Uint8Array | undefined;
      for (let j = 0; j < q.l2Entries; j++) {
        const hi = dv.getUint32(j * 8);
        const lo = dv.getUint32(j * 8 + 4);
        if (hi === 0 && lo === 0) continue;
        const m = q.decode(hi, lo, i * q.l2Entries + j);
        if ((m.kind !== 'normal' && m.kind !== 'zero') || m.host === 0) continue;
        const copied = (sh.getSync(m.host / q.cs) ?? (await sh.get(m.host / q.cs))) === 1;
        if (copied === m.copied) continue;
        copy ??= table.slice();
        setEntry(copy, j, copied ? hi | HI_COPIED : hi & ~HI_COPIED, lo);
      }
      if (copy) {
        const off = await sh.alloc(1);
        await q.file.write(copy, off);
        await sh.add(offs[i] / q.cs, -1);
        offs[i] = off;
      }
    }
    // Only now are the L2 tables' refcounts final.
    const l1 = new Uint8Array(offs.length * 8);
    for (let i = 0; i < offs.length; i++) {
      if (offs[i] === 0) continue;
      if ((await sh.get(offs[i] / q.cs)) === 1) setEntry(l1, i, ...copiedEntry(offs[i]));
      else setEntry(l1, i, Math.floor(offs[i] / 2 ** 32), offs[i] % 2 ** 32);
    }
    return l1;
  }

  /**
   * Writes the new state into free clusters: active L1 table `l1` (undefined: unchanged),
   * snapshot table `entries`, refcount blocks and table; then switches to it with one
   * header write (see the top of this file) and adopts it.
   */
  private async commit(sh: RefShadow, l1: Uint8Array | undefined, entries: SnapshotEntry[]): Promise<void> {
    const { q } = this;
    const { cs, h } = q;
    const writes: Promise<void>[] = [];
    let l1Off = h.l1TableOffset;
    if (l1) {
      l1Off = l1.length > 0 ? await sh.alloc(Math.ceil(l1.length / cs)) : 0;
      if (l1.length > 0) writes.push(q.file.write(l1, l1Off));
    }
    await sh.addRange(h.snapshotsOffset, snapshotTableSize(this.entries), -1);
    const table = serializeTable(entries);
    const tableOff = table.length > 0 ? await sh.alloc(Math.ceil(table.length / cs)) : 0;
    if (table.length > 0) writes.push(q.file.write(table, tableOff));
    const rt = await sh.finish();
    for (const b of sh.blocks.values()) writes.push(q.file.write(b.block, b.off));
    writes.push(q.file.write(rt.table, rt.off));
    await settleAll(writes);
    await q.barrier();

    const hdr = new Uint8Array(36);
    const dv = new DataView(hdr.buffer);
    const l1Size = l1 ? l1.length / 8 : h.l1Size;
    dv.setUint32(0, l1Size);
    dv.setBigUint64(4, BigInt(l1Off));
    dv.setBigUint64(12, BigInt(rt.off));
    dv.setUint32(20, rt.table.length / cs);
    dv.setUint32(24, entries.length);
    dv.setBigUint64(28, BigInt(tableOff));
    try {
      await q.file.write(hdr, 36);
      await q.barrier();
    } catch (e) {
      // The header may or may not have been written: memory can no longer say which image is on disk.
      q.broken ??= `failed snapshot table switch: ${(e as Error).message}`;
      throw e;
    }

    h.l1Size = l1Size;
    h.l1TableOffset = l1Off;
    if (l1) q.l1 = l1;
    h.refcountTableOffset = rt.off;
    h.refcountTableClusters = rt.table.length / cs;
    q.reftable = rt.table;
    h.nbSnapshots = entries.length;
    h.snapshotsOffset = tableOff;
    this.entries = entries;
    for (const c of sh.freed) q.released(c);
    for (const b of sh.blocks.values()) q.rbCache.put(b.off, b.block);
    q.lastCompressed = undefined;
    q.checkTables();
  }
}

/** `s` in quotes, control characters escaped (messages stay one line). */
function quote(s: string): string {
  return `'${s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
}

function info(e: SnapshotEntry): SnapshotInfo {
  return { id: e.id, name: e.name, date: e.date, vmClockNs: e.vmClockNs, vmStateSize: e.vmStateSize };
}

/** The L2 table offsets of the first `n` entries of L1 table `l1` (zeros past its end). */
function l1Offsets(l1: Uint8Array, n: number): number[] {
  const offs = new Array<number>(n).fill(0);
  for (let i = 0; i < Math.min(n, l1.length / 8); i++) offs[i] = offsetBits(...entryAt(l1, i));
  return offs;
}

/** A new table entry as QEMU 7 writes it: 24 bytes of extra data, no VM state, no icount (-1). */
function entryBytes(id: string, name: string, l1Off: number, l1Size: number, sec: number, nsec: number, vmClockNs: number, diskSize: number): Uint8Array {
  const enc = new TextEncoder();
  const idB = enc.encode(id);
  const nameB = enc.encode(name);
  const b = new Uint8Array(ENTRY_HEADER + EXTRA + idB.length + nameB.length);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt(l1Off));
  dv.setUint32(8, l1Size);
  dv.setUint16(12, idB.length);
  dv.setUint16(14, nameB.length);
  dv.setUint32(16, sec);
  dv.setUint32(20, nsec);
  dv.setBigUint64(24, BigInt(vmClockNs));
  dv.setUint32(36, EXTRA);
  dv.setBigUint64(ENTRY_HEADER + 8, BigInt(diskSize));
  dv.setBigInt64(ENTRY_HEADER + 16, -1n);
  b.set(idB, ENTRY_HEADER + EXTRA);
  b.set(nameB, ENTRY_HEADER + EXTRA + idB.length);
  return b;
}
