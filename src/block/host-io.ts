/**
 * The block I/O thread: positional reads and writes of up to {@link HOST_IO_MAX_BYTES}
 * each, handed over in shared memory rather than through libuv's thread pool, and larger
 * writes from shared memory (guest RAM), which the thread makes as one pwritev from where
 * the bytes lie: the slot then holds their iovecs. The thread
 * (host-io-thread.ts) does the I/O with blocking calls, so the main loop never waits for
 * a disk; what it adds is polling. After each request it spins for {@link SPIN_MS} before
 * it sleeps, so that the next request of a stream (a guest's 4 KiB reads come every few
 * hundred microseconds) finds it awake: on a virtual machine host, waking an idle
 * thread costs ~75 us (see io-poll.ts). The main thread learns of completions from
 * Atomics.waitAsync, or sooner by polling (pollIoBriefly) when its vCPUs are idle.
 *
 * Layout of the control words (Int32, shared): SUBMITTED and COMPLETED count requests
 * (each side waits on one of them); then per slot its state, operation, fd, length and
 * result, and its position as a Float64 in a view of its own. Slot i's data is bytes
 * [i * HOST_IO_MAX_BYTES, +HOST_IO_MAX_BYTES) of the data buffer.
 */
import { Worker } from 'node:worker_threads';
import { addPolledIo, type PolledIo } from '../system/io-poll.js';
import { copyViews } from './range.js';
import { writeIovecs } from './nowait-read.js';

export const HOST_IO_SLOTS = 32;
export const HOST_IO_MAX_BYTES = 128 * 1024;
/** How long the thread spins for a next request before it sleeps (ms). */
export const SPIN_MS = 0.5;

export const SUBMITTED = 0;
export const COMPLETED = 1;
const HEADER = 2;
const SLOT_WORDS = 6;
export const slotWord = (slot: number, field: number): number => HEADER + slot * SLOT_WORDS + field;
export const F_STATE = 0;
export const F_OP = 1;
export const F_FD = 2;
export const F_LEN = 3;
/** Bytes done, or -1 if the call failed (the caller redoes it the ordinary way, which reports the error). */
export const F_RESULT = 4;
/** OP_WRITEV: how many struct iovec the slot's data holds. */
export const F_COUNT = 5;
export const FREE = 0;
export const QUEUED = 1;
export const DONE = 2;
export const OP_READ = 1;
export const OP_WRITE = 2;
/** A write larger than a slot, from shared memory: the slot's data holds its iovecs. */
export const OP_WRITEV = 3;

export interface HostIoBuffers {
  ctl: SharedArrayBuffer;
  pos: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

interface Request {
  resolve(result: number): void;
  /** Where a read's bytes go. */
  dst: Uint8Array | null;
  /** An OP_WRITEV's buffers, referenced until the thread is done with their memory. */
  srcs: readonly Uint8Array[] | null;
}

class HostIo implements PolledIo {
  private readonly ctl: Int32Array;
  private readonly pos: Float64Array;
  private readonly data: Uint8Array;
  private readonly requests: (Request | null)[] = new Array<Request | null>(HOST_IO_SLOTS).fill(null);
  private inflight = 0;
  private watching = false;
  private readonly worker: Worker;
  private ended = false;

  constructor() {
    const bufs: HostIoBuffers = {
      ctl: new SharedArrayBuffer(4 * (HEADER + HOST_IO_SLOTS * SLOT_WORDS)),
      pos: new SharedArrayBuffer(8 * HOST_IO_SLOTS),
      data: new SharedArrayBuffer(HOST_IO_SLOTS * HOST_IO_MAX_BYTES),
    };
    this.ctl = new Int32Array(bufs.ctl);
    this.pos = new Float64Array(bufs.pos);
    this.data = new Uint8Array(bufs.data);
    // No execArgv: the thread needs no flags, and some (--input-type) are refused in a worker.
    this.worker = new Worker(new URL('./host-io-thread.js', import.meta.url), { workerData: bufs, execArgv: [] });
    // The thread keeps the process alive while requests are in flight (a pending
    // Atomics.waitAsync does not), and only then.
    this.worker.unref();
    // Should the thread ever end, its requests and all later ones take the ordinary path.
    this.worker.on('error', () => {});
    this.worker.on('exit', () => {
      this.ended = true;
      for (const [i, req] of this.requests.entries()) {
        if (req === null) continue;
        this.requests[i] = null;
        req.resolve(-1);
      }
      this.inflight = 0;
    });
    addPolledIo(this);
  }

  /** Reads into `dst` from `pos`; resolves to the bytes read (short at the end of the file), -1 on failure; null if no slot is free. */
  read(fd: number, dst: Uint8Array, pos: number): Promise<number> | null {
    return this.submit(OP_READ, fd, [dst], dst.length, pos);
  }

  /**
   * Writes `srcs` (`len` bytes together) one after the other at `pos`; resolves to the bytes
   * written, -1 on failure; null if no slot is free, or if `len` is too big for a slot and
   * the buffers are not all shared memory the thread can write from where it lies.
   */
  writev(fd: number, srcs: readonly Uint8Array[], len: number, pos: number): Promise<number> | null {
    if (len <= HOST_IO_MAX_BYTES) return this.submit(OP_WRITE, fd, srcs, len, pos);
    if (!srcs.every((b) => b.buffer instanceof SharedArrayBuffer)) return null;
    return this.submit(OP_WRITEV, fd, srcs, len, pos);
  }

  /** Requests the thread has completed so far. */
  get completed(): number {
    return Atomics.load(this.ctl, COMPLETED);
  }

  inFlight(): boolean {
    return this.inflight > 0;
  }

  poll(): number {
    let n = 0;
    for (let i = 0; i < HOST_IO_SLOTS; i++) {
      const req = this.requests[i];
      if (req === null || Atomics.load(this.ctl, slotWord(i, F_STATE)) !== DONE) continue;
      const result = this.ctl[slotWord(i, F_RESULT)]!;
      if (req.dst !== null && result > 0) req.dst.set(this.data.subarray(i * HOST_IO_MAX_BYTES, i * HOST_IO_MAX_BYTES + result));
      this.requests[i] = null;
      Atomics.store(this.ctl, slotWord(i, F_STATE), FREE);
      if (--this.inflight === 0) this.worker.unref();
      n++;
      req.resolve(result);
    }
    return n;
  }

  /** A read has one buffer (`bufs[0]`), a write any number: copied to the slot here (OP_WRITE), or their iovecs (OP_WRITEV). */
  private submit(op: number, fd: number, bufs: readonly Uint8Array[], len: number, pos: number): Promise<number> | null {
    if ((op !== OP_WRITEV && len > HOST_IO_MAX_BYTES) || this.ended) return null;
    const i = this.requests.indexOf(null);
    if (i < 0) return null;
    if (op === OP_WRITEV && !writeIovecs(bufs, new Uint32Array(this.data.buffer, i * HOST_IO_MAX_BYTES, bufs.length * 4))) return null;
    return new Promise<number>((resolve) => {
      this.requests[i] = { resolve, dst: op === OP_READ ? bufs[0]! : null, srcs: op === OP_WRITEV ? bufs : null };
      if (op === OP_WRITE) copyViews(this.data, i * HOST_IO_MAX_BYTES, bufs);
      this.ctl[slotWord(i, F_COUNT)] = bufs.length;
      this.ctl[slotWord(i, F_OP)] = op;
      this.ctl[slotWord(i, F_FD)] = fd;
      this.ctl[slotWord(i, F_LEN)] = len;
      this.pos[i] = pos;
      Atomics.store(this.ctl, slotWord(i, F_STATE), QUEUED);
      Atomics.add(this.ctl, SUBMITTED, 1);
      Atomics.notify(this.ctl, SUBMITTED);
      if (this.inflight++ === 0) this.worker.ref();
      this.watch();
    });
  }

  /** Keeps one Atomics.waitAsync on COMPLETED while requests are in flight. */
  private watch(): void {
    while (!this.watching && this.inflight > 0) {
      const seen = Atomics.load(this.ctl, COMPLETED);
      this.poll(); // after reading the count, so that no completion is missed
      if (this.inflight === 0) return;
      const w = Atomics.waitAsync(this.ctl, COMPLETED, seen);
      if (!w.async) continue; // completed meanwhile: poll again
      this.watching = true;
      void w.value.then(() => {
        this.watching = false;
        this.watch();
      });
    }
  }
}

let shared: HostIo | null = null;

/** The process's block I/O thread, started on first use. */
export function hostIo(): HostIo {
  shared ??= new HostIo();
  return shared;
}
