/**
 * virtio-blk (Virtio 1.2, section 5.2): a disk backed by a {@link BlockBackend}.
 *
 * One request queue. Each request is a header (type, reserved, sector), data, and a
 * status byte at the very end of the device-writable part (5.2.6). Requests run
 * asynchronously and several may be in flight: the chain is popped and checked, the
 * backend does the I/O (on a host thread), and on completion the data of a read and
 * the status byte are written to guest memory and the chain returned with pushUsed. A
 * write's data goes to a backend with writev (raw, qcow2, the in-memory disk) as views
 * of guest RAM, read while the write runs as a DMA would be (the guest changing it
 * meanwhile only changes what lands in its own sectors); to one without, it is copied
 * out of guest memory at once.
 *
 * Everything the guest says is checked. The header and status must be present, else
 * the device reports DEVICE_NEEDS_RESET and leaves the queue alone until reset (there
 * is nowhere to report the error). The data length must be a multiple of 512 and at
 * most seg_max * size_max bytes, and every sector range must lie inside the disk, else
 * the request ends with VIRTIO_BLK_S_IOERR; a backend failure is VIRTIO_BLK_S_IOERR too.
 * The bytes held for requests in flight are bounded.
 *
 * Reads that must wait for the host go through a host bounce buffer rather than straight
 * into guest RAM (those the host's page cache holds are copied in, and completed, within
 * the guest's notify), so that
 * after a reset nothing writes to guest memory: each request remembers the generation it
 * started in, and a completion from an older generation only drops its buffer. A newly
 * activated device starts serving only once the previous generation's I/O is over, so
 * a stale write can never land after a new request that follows the reset.
 *
 * Snapshots: the machine drains the device first (QEMU's bdrv_drain_all), so no request
 * is in flight and the device holds no chain; what is left is whether it halted on a
 * malformed chain, and the disk size, which must match. The disk's contents are not part
 * of the state (see docs/snapshot.md).
 */
import type { BlockBackend } from '../../block/block.js';
import { copyViews } from '../../block/range.js';
import type { GuestMemory } from '../core/guest-memory.js';
import { VIRTIO_ID, readConfigBytes, type DescriptorBuffer, type DescriptorChain, type Virtqueue, type VirtioActivation, type VirtioDevice } from './virtio.js';
import { SnapshotError, bigField, boolField, type DeviceState } from '../../migration/vmstate.js';

/** Feature bits (5.2.3). */
export const VIRTIO_BLK_F = {
  SIZE_MAX: 1n,
  SEG_MAX: 2n,
  GEOMETRY: 4n,
  RO: 5n,
  BLK_SIZE: 6n,
  FLUSH: 9n,
  TOPOLOGY: 10n,
  CONFIG_WCE: 11n,
  MQ: 12n,
  DISCARD: 13n,
  WRITE_ZEROES: 14n,
} as const;

/** Request types (5.2.6). */
export const VIRTIO_BLK_T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, GET_LIFETIME: 10, DISCARD: 11, WRITE_ZEROES: 13, SECURE_ERASE: 14 } as const;

/** Status byte values (5.2.6). */
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** The flag of a discard / write-zeroes segment that allows deallocation. */
const DWZ_FLAG_UNMAP = 1;

/** Config space offsets (5.2.4). */
export const VIRTIO_BLK_CONFIG = {
  CAPACITY: 0,
  SIZE_MAX: 8,
  SEG_MAX: 12,
  BLK_SIZE: 20,
  NUM_QUEUES: 34,
  MAX_DISCARD_SECTORS: 36,
  MAX_DISCARD_SEG: 40,
  DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48,
  MAX_WRITE_ZEROES_SEG: 52,
  WRITE_ZEROES_MAY_UNMAP: 56,
} as const;
/** Through write_zeroes_may_unmap and its padding; the secure-erase and zoned fields are not offered. */
const CONFIG_SIZE = 60;

const SECTOR = 512;
const HEADER = 16;
/** GET_ID answers with at most this many bytes (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLK_ID_BYTES = 20;
/** Largest segment the driver may send (size_max); with seg_max it bounds a request. */
const SIZE_MAX = 64 << 10;
/** Per-request limits on discard and write zeroes (sectors). */
const MAX_DISCARD_SECTORS = 1 << 22; // 2 GiB: advisory, cheap
const MAX_WRITE_ZEROES_SECTORS = 1 << 16; // 32 MiB: raw images really write the zeros
/** Stop taking requests while this many data bytes are held for requests in flight. */
const INFLIGHT_BYTES = 64 << 20;

/** Options of a virtio-blk device. */
export interface VirtioBlkOptions {
  /** GET_ID answer (QEMU's `serial=`); at most 20 bytes are sent. Default: empty. */
  serial?: string;
  /** Queue size offered; a power of two. Default {@link VIRTIO_BLK_QUEUE_SIZE}. */
  queueSize?: number;
}

/**
 * The default queue size: QEMU's largest (its default is 256). seg_max follows it (two
 * descriptors less), and with 254 segments Linux splits a 1 MiB O_DIRECT request of
 * scattered pages in two: 1022 let it go whole (cached 1 MiB reads ~15% faster).
 */
export const VIRTIO_BLK_QUEUE_SIZE = 1024;

/** Where a request's parts are: the chain split into its readable and writable buffers. */
interface Request {
  chain: DescriptorChain;
  readable: DescriptorBuffer[];
  writable: DescriptorBuffer[];
  gen: number;
  /** Bytes of host buffer this request holds. */
  bytes: number;
  /** Its bounce buffer (a read that waits for the host), returned to the pool at completion. */
  bounce?: Uint8Array;
}

/** Bounce buffers up to this size are kept for reuse... */
const BOUNCE_MAX = 4 << 20;
/** ...at most this many of each size (a power of two from 4 KiB). */
const BOUNCE_KEEP = 2;

/**
 * Bounce buffers kept for the next reads: a new one is memory the host must fault in and
 * clear (a 1 MiB read into a new buffer took ~1.3 ms longer on a 2-core VM), and V8
 * frees an unused one only at a later GC.
 */
class BouncePool {
  private readonly free = new Map<number, Uint8Array[]>();

  /** `len` bytes of a pooled or new buffer (contents undefined). */
  take(len: number): Uint8Array {
    const size = Math.max(4096, 2 ** Math.ceil(Math.log2(Math.max(1, len))));
    const buf = (size <= BOUNCE_MAX ? this.free.get(size)?.pop() : undefined) ?? new Uint8Array(size <= BOUNCE_MAX ? size : len);
    return buf.subarray(0, len);
  }

  give(view: Uint8Array): void {
    const buf = new Uint8Array(view.buffer);
    if (buf.length > BOUNCE_MAX || (buf.length & (buf.length - 1)) !== 0) return;
    const list = this.free.get(buf.length);
    if (!list) this.free.set(buf.length, [buf]);
    else if (list.length < BOUNCE_KEEP) list.push(buf);
  }
}

/**
 * Views of `len` bytes at byte `skip` of the concatenated buffers in guest RAM, for the
 * device to write through (`forWrite`, their guest addresses then in `addrs`) or only
 * read; null if RAM refuses any part. Empty buffers get no view.
 */
function guestViews(mem: GuestMemory, bufs: DescriptorBuffer[], skip: number, len: number, forWrite: boolean, addrs?: number[]): Uint8Array[] | null {
  const views: Uint8Array[] = [];
  for (let i = 0; len > 0; i++) {
    const b = bufs[i];
    if (!b) return null;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, len);
    const v = forWrite ? mem.view(b.addr + skip, n) : mem.readView(b.addr + skip, n);
    if (!v) return null;
    views.push(v);
    addrs?.push(b.addr + skip);
    len -= n;
    skip = 0;
  }
  return views;
}

/** Copies `len` bytes at byte `skip` of the concatenated buffers out of guest memory; null if RAM refuses. */
function gather(mem: GuestMemory, bufs: DescriptorBuffer[], skip: number, len: number): Uint8Array | null {
  const views = guestViews(mem, bufs, skip, len, false);
  if (!views) return null;
  const out = new Uint8Array(len);
  copyViews(out, 0, views);
  return out;
}

/** Copies `data` into the concatenated buffers at byte `skip`; false if RAM refuses. */
function scatter(mem: GuestMemory, bufs: DescriptorBuffer[], skip: number, data: Uint8Array): boolean {
  let done = 0;
  for (const b of bufs) {
    if (done === data.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, data.length - done);
    if (!mem.write(b.addr + skip, data.subarray(done, done + n))) return false;
    done += n;
    skip = 0;
  }
  return done === data.length;
}

/**
 * Reads `len` bytes from the disk at `pos` straight into the first `len` bytes of the
 * buffers in guest RAM if the backend can without waiting (readNow); false if it cannot
 * (the buffers' contents are then undefined, as for any request not yet completed).
 */
function readIntoGuest(mem: GuestMemory, backend: BlockBackend, bufs: DescriptorBuffer[], len: number, pos: number): boolean {
  if (!backend.readNow) return false;
  const addrs: number[] = [];
  const views = guestViews(mem, bufs, 0, len, true, addrs);
  if (!views || !backend.readNow(pos, views)) return false;
  views.forEach((v, i) => mem.markDirty(addrs[i]!, v.length));
  return true;
}

/** A virtio block device. */
export class VirtioBlk implements VirtioDevice {
  readonly deviceId = VIRTIO_ID.BLOCK;
  readonly queueMaxSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;

  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly serial: Uint8Array;
  private readonly capacity: bigint;
  private readonly maxRequestBytes: number;
  private act: VirtioActivation | undefined;
  /** Bumped by reset: completions of older requests must not touch the guest. */
  private gen = 0;
  private inflight = 0;
  private inflightBytes = 0;
  private readonly bounce = new BouncePool();
  /** Requests of earlier generations still running in the backend. */
  private stale = 0;
  /** A malformed chain was reported with needsReset(): serve nothing until reset. */
  private halted = false;
  /** drain() callers, resolved once no request of any generation is in flight. */
  private drained: (() => void)[] = [];

  constructor(private readonly backend: BlockBackend, opts: VirtioBlkOptions = {}) {
    const qsize = opts.queueSize ?? VIRTIO_BLK_QUEUE_SIZE;
    this.queueMaxSizes = [qsize];
    const segMax = qsize - 2; // the header and status take a descriptor each
    this.maxRequestBytes = segMax * SIZE_MAX;
    this.capacity = BigInt(Math.floor(backend.size / SECTOR));
    const bit = (b: bigint) => 1n << b;
    let f = bit(VIRTIO_BLK_F.SIZE_MAX) | bit(VIRTIO_BLK_F.SEG_MAX) | bit(VIRTIO_BLK_F.BLK_SIZE) | bit(VIRTIO_BLK_F.FLUSH);
    if (backend.readOnly) f |= bit(VIRTIO_BLK_F.RO);
    else f |= bit(VIRTIO_BLK_F.DISCARD) | bit(VIRTIO_BLK_F.WRITE_ZEROES);
    this.features = f;

    const dv = new DataView(this.config.buffer);
    const C = VIRTIO_BLK_CONFIG;
    dv.setBigUint64(C.CAPACITY, this.capacity, true);
    dv.setUint32(C.SIZE_MAX, SIZE_MAX, true);
    dv.setUint32(C.SEG_MAX, segMax, true);
    dv.setUint32(C.BLK_SIZE, SECTOR, true);
    dv.setUint16(C.NUM_QUEUES, 1, true);
    dv.setUint32(C.MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS, true);
    dv.setUint32(C.MAX_DISCARD_SEG, 1, true);
    dv.setUint32(C.DISCARD_SECTOR_ALIGNMENT, Math.max(1, backend.discardGranularity / SECTOR), true);
    dv.setUint32(C.MAX_WRITE_ZEROES_SECTORS, MAX_WRITE_ZEROES_SECTORS, true);
    dv.setUint32(C.MAX_WRITE_ZEROES_SEG, 1, true);
    // write_zeroes_may_unmap stays 0: the unmap flag is accepted and changes nothing.

    this.serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.serial.set(new TextEncoder().encode(opts.serial ?? '').subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  readConfig(offset: number, size: number): number {
    return readConfigBytes(this.config, offset, size);
  }

  writeConfig(_offset: number, _size: number, _value: number): void {
    // Every field is read-only (CONFIG_WCE, the only writable one, is not offered).
  }

  activate(a: VirtioActivation): void {
    if (this.act) this.reset();
    this.act = a;
    this.kick();
  }

  queueNotify(index: number): void {
    if (index === 0) this.kick();
  }

  reset(): void {
    this.gen++;
    this.stale += this.inflight;
    this.inflight = 0;
    this.inflightBytes = 0;
    this.act = undefined;
    this.halted = false;
  }

  drain(): Promise<void> {
    return this.idle ? Promise.resolve() : new Promise((resolve) => this.drained.push(resolve));
  }

  saveState(): DeviceState {
    if (!this.idle) throw new SnapshotError('snapshot: virtio-blk has requests in flight (the machine was not drained)');
    return { capacity: this.capacity.toString(), halted: this.halted };
  }

  prepareLoad(s: DeviceState): (a: VirtioActivation | null) => void {
    const capacity = bigField(s, 'capacity');
    if (capacity !== this.capacity) {
      throw new SnapshotError(`snapshot: its virtio-blk disk had ${capacity} sectors, this one has ${this.capacity}`);
    }
    const halted = boolField(s, 'halted');
    return (a) => {
      this.act = a ?? undefined;
      this.halted = a !== null && halted;
    };
  }

  private get idle(): boolean {
    return this.inflight === 0 && this.stale === 0;
  }

  /** Takes requests from the queue while the in-flight limits allow. */
  private kick(): void {
    const act = this.act;
    // After a reset, wait for the old generation's I/O before starting new I/O.
    if (!act || this.stale > 0 || this.halted) return;
    const q = act.queues[0];
    if (!q) return;
    while (this.inflight < q.size && this.inflightBytes < INFLIGHT_BYTES && !this.halted) {
      const chain = q.pop();
      if (!chain) return;
      this.start(act, q, chain);
    }
  }

  private start(act: VirtioActivation, q: Virtqueue, chain: DescriptorChain): void {
    const readable = chain.buffers.filter((b) => !b.writable);
    const writable = chain.buffers.filter((b) => b.writable);
    const hdr = chain.readableLength >= HEADER && chain.writableLength >= 1 ? gather(act.mem, readable, 0, HEADER) : null;
    if (!hdr) {
      // No header or no status byte: nothing can be reported in the request itself.
      this.halted = true;
      act.needsReset();
      return;
    }
    const dv = new DataView(hdr.buffer);
    const type = dv.getUint32(0, true);
    const sector = dv.getBigUint64(8, true);
    const req: Request = { chain, readable, writable, gen: this.gen, bytes: Math.max(chain.readableLength - HEADER, chain.writableLength - 1) };
    this.inflight++;
    this.inflightBytes += req.bytes;
    // A read that can be done at once completes within the driver's notify: the guest takes
    // the interrupt as soon as it enables them, instead of going idle to wait for it.
    const now = type === VIRTIO_BLK_T.IN ? this.readAtOnce(act, req, sector) : null;
    if (now) {
      this.finish(act, q, req, now[0], now[1]);
      return;
    }
    // execute() reads the header and descriptors before its first await; a write (writev)
    // then takes its data from guest RAM while it runs, as a DMA would.
    this.execute(act, req, type, sector).then(
      ([status, data]) => this.complete(act, q, req, status, data),
      () => this.complete(act, q, req, VIRTIO_BLK_S.IOERR),
    );
  }

  /**
   * A read's status and length if it is done at once: out of the disk's range, or served
   * whole by the host's page cache straight into guest RAM; null if it must wait for I/O.
   */
  private readAtOnce(act: VirtioActivation, r: Request, sector: bigint): [number, number?] | null {
    const inLen = r.chain.writableLength - 1;
    if (!this.rangeOk(sector, inLen)) return [VIRTIO_BLK_S.IOERR];
    return readIntoGuest(act.mem, this.backend, r.writable, inLen, Number(sector) * SECTOR) ? [VIRTIO_BLK_S.OK, inLen] : null;
  }

  private negotiated(act: VirtioActivation, f: bigint): boolean {
    return (act.features & (1n << f)) !== 0n;
  }

  /** True if `len` bytes at `sector` are a valid data transfer for this disk. */
  private rangeOk(sector: bigint, len: number): boolean {
    if (len % SECTOR !== 0 || len > this.maxRequestBytes) return false;
    return sector <= this.capacity && BigInt(len / SECTOR) <= this.capacity - sector;
  }

  /**
   * Runs one request; resolves to its status and, for reads, the data for the guest, or
   * the bytes already read into its buffers.
   */
  private async execute(act: VirtioActivation, r: Request, type: number, sector: bigint): Promise<[number, (Uint8Array | number)?]> {
    const { IOERR, OK, UNSUPP } = VIRTIO_BLK_S;
    const inLen = r.chain.writableLength - 1;
    const outLen = r.chain.readableLength - HEADER;
    switch (type) {
      case VIRTIO_BLK_T.IN: {
        // In range, and not in the host's page cache whole (readAtOnce).
        const buf = (r.bounce = this.bounce.take(inLen));
        await this.backend.read(Number(sector) * SECTOR, buf);
        return [OK, buf];
      }
      case VIRTIO_BLK_T.OUT: {
        if (this.backend.readOnly || !this.rangeOk(sector, outLen)) return [IOERR];
        const pos = Number(sector) * SECTOR;
        if (this.backend.writev) {
          // Straight from guest RAM, as QEMU's DMA: no copy, no host buffer to allocate.
          const views = guestViews(act.mem, r.readable, HEADER, outLen, false);
          if (!views) return [IOERR];
          await this.backend.writev(pos, views);
        } else {
          const data = gather(act.mem, r.readable, HEADER, outLen);
          if (!data) return [IOERR];
          await this.backend.write(pos, data);
        }
        await this.writeThrough(act);
        return [OK];
      }
      case VIRTIO_BLK_T.FLUSH:
        await this.backend.flush();
        return [OK];
      case VIRTIO_BLK_T.GET_ID:
        return [OK, this.serial.subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, inLen))];
      case VIRTIO_BLK_T.DISCARD:
      case VIRTIO_BLK_T.WRITE_ZEROES: {
        const discard = type === VIRTIO_BLK_T.DISCARD;
        if (!this.negotiated(act, discard ? VIRTIO_BLK_F.DISCARD : VIRTIO_BLK_F.WRITE_ZEROES)) return [UNSUPP];
        if (this.backend.readOnly) return [IOERR];
        // One segment (max_*_seg is 1): sector, num_sectors, flags.
        if (outLen !== 16) return [outLen > 16 && outLen % 16 === 0 ? UNSUPP : IOERR];
        const seg = gather(act.mem, r.readable, HEADER, 16);
        if (!seg) return [IOERR];
        const sdv = new DataView(seg.buffer);
        const start = sdv.getBigUint64(0, true);
        const num = sdv.getUint32(8, true);
        const flags = sdv.getUint32(12, true);
        // Discard must not carry the unmap flag; neither may carry unknown flags (5.2.6.2).
        if (flags & ~DWZ_FLAG_UNMAP || (discard && flags !== 0)) return [UNSUPP];
        if (num > (discard ? MAX_DISCARD_SECTORS : MAX_WRITE_ZEROES_SECTORS)) return [IOERR];
        if (start > this.capacity || BigInt(num) > this.capacity - start) return [IOERR];
        const off = Number(start) * SECTOR;
        if (discard) await this.backend.discard(off, num * SECTOR);
        else {
          await this.backend.writeZeroes(off, num * SECTOR);
          await this.writeThrough(act);
        }
        return [OK];
      }
      default:
        return [UNSUPP];
    }
  }

  /** A driver that did not accept FLUSH expects a write-through disk (5.2.5). */
  private async writeThrough(act: VirtioActivation): Promise<void> {
    if (!this.negotiated(act, VIRTIO_BLK_F.FLUSH)) await this.backend.flush();
  }

  /** Finishes a request that completed on its own time, and takes the next ones. */
  private complete(act: VirtioActivation, q: Virtqueue, r: Request, status: number, data?: Uint8Array | number): void {
    this.finish(act, q, r, status, data);
    this.kick();
    this.settle();
  }

  /** Reports a request's status and data to the guest (or drops it if the device was reset since). */
  private finish(act: VirtioActivation, q: Virtqueue, r: Request, status: number, data?: Uint8Array | number): void {
    if (r.gen !== this.gen) {
      // Reset since: the guest memory and the queue are no longer ours to touch.
      if (r.bounce) this.bounce.give(r.bounce);
      this.stale--;
      return;
    }
    this.inflight--;
    this.inflightBytes -= r.bytes;
    let written = 0;
    if (typeof data === 'number') written = data;
    else if (data && status === VIRTIO_BLK_S.OK) {
      if (scatter(act.mem, r.writable, 0, data)) written = data.length;
      else status = VIRTIO_BLK_S.IOERR;
    }
    if (r.bounce) this.bounce.give(r.bounce);
    if (scatter(act.mem, r.writable, r.chain.writableLength - 1, Uint8Array.of(status))) written++;
    q.pushUsed(r.chain.head, written);
  }

  /** Resolves the drain() callers once the last request (and those it let start) is over. */
  private settle(): void {
    if (this.idle) for (const resolve of this.drained.splice(0)) resolve();
  }
}
