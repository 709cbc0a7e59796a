/**
 * The hand-over of an I/O access from a vCPU thread to the device thread.
 *
 * Device models are JavaScript objects and cannot be shared between threads, so the
 * main thread, which owns every device, is Vireo's global lock (QEMU's BQL): a vCPU
 * thread that exits on port I/O or MMIO writes the access into a shared block, wakes
 * the main thread and sleeps until the access is done. Requests are strictly one at
 * a time per vCPU; the main thread serves them from its event loop with
 * Atomics.waitAsync, so it never blocks.
 */
import { BUS_ERROR, type AddressSpace } from '../hw/core/memory.js';

/** Layout of the shared block (Int32 indices; data bytes from DATA_OFFSET). */
const STATE = 0;
const KIND = 1;
const WRITE = 2;
const SIZE = 3;
const COUNT = 4;
const ADDR_LO = 5;
const ADDR_HI = 6;
const STATUS = 7;
const DATA_OFFSET = 64;
/** Largest transfer: one page, the most KVM hands over for string port I/O. */
export const MAX_DATA = 4096;
/** Bytes to allocate for one channel. */
export const EXIT_CHANNEL_BYTES = DATA_OFFSET + MAX_DATA;

const IDLE = 0;
const REQUEST = 1;
const DONE = 2;
const CLOSED = 3;

/** An access as the device side sees it. `data` holds the bytes to write, or receives the bytes read. */
export interface IoRequest {
  kind: 'pio' | 'mmio';
  write: boolean;
  addr: number;
  /** Bytes per element (1, 2, 4 or 8). */
  size: number;
  /** Elements (string port I/O repeats an access); data holds size * count bytes. */
  count: number;
  data: Uint8Array;
}

/** vCPU side: blocks the calling thread until the device thread has served the access. */
export class ExitChannelClient {
  private readonly ctl: Int32Array;
  readonly data: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.ctl = new Int32Array(buffer, 0, DATA_OFFSET / 4);
    this.data = new Uint8Array(buffer, DATA_OFFSET, MAX_DATA);
  }

  /**
   * Performs one access. For writes, the bytes must already be in `this.data`; for
   * reads, they are there on return. Returns false if the device side reported a bus error.
   */
  request(kind: 'pio' | 'mmio', write: boolean, addr: number, size: number, count = 1): boolean {
    const c = this.ctl;
    c[KIND] = kind === 'pio' ? 0 : 1;
    c[WRITE] = write ? 1 : 0;
    c[SIZE] = size;
    c[COUNT] = count;
    c[ADDR_LO] = addr >>> 0;
    c[ADDR_HI] = Math.floor(addr / 2 ** 32);
    Atomics.store(c, STATE, REQUEST);
    Atomics.notify(c, STATE);
    while (Atomics.load(c, STATE) === REQUEST) Atomics.wait(c, STATE, REQUEST);
    const ok = c[STATUS] === 0;
    Atomics.store(c, STATE, IDLE);
    return ok;
  }

  /** Tells the device side that this vCPU will send no more requests. */
  close(): void {
    Atomics.store(this.ctl, STATE, CLOSED);
    Atomics.notify(this.ctl, STATE);
  }
}

/** Device-thread side: serves one vCPU's requests with `handler` until the vCPU closes the channel. */
export class ExitChannelServer {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  /** Resolves when the vCPU side has closed the channel. */
  readonly closed: Promise<void>;

  /** `handler` performs the access; it returns false for a bus error. */
  constructor(buffer: SharedArrayBuffer, private readonly handler: (req: IoRequest) => boolean) {
    this.ctl = new Int32Array(buffer, 0, DATA_OFFSET / 4);
    this.data = new Uint8Array(buffer, DATA_OFFSET, MAX_DATA);
    this.closed = this.serve();
  }

  private async serve(): Promise<void> {
    const c = this.ctl;
    for (;;) {
      const state = Atomics.load(c, STATE);
      if (state === CLOSED) return;
      if (state !== REQUEST) {
        const w = Atomics.waitAsync(c, STATE, state);
        if (w.async) await w.value;
        continue;
      }
      const size = c[SIZE]!;
      const count = c[COUNT]!;
      const bytes = size * count;
      let ok = false;
      if (bytes > 0 && bytes <= MAX_DATA) {
        ok = this.handler({
          kind: c[KIND] === 0 ? 'pio' : 'mmio',
          write: c[WRITE] === 1,
          addr: (c[ADDR_HI]! >>> 0) * 2 ** 32 + (c[ADDR_LO]! >>> 0),
          size,
          count,
          data: this.data.subarray(0, bytes),
        });
      }
      c[STATUS] = ok ? 0 : 1;
      Atomics.store(c, STATE, DONE);
      Atomics.notify(c, STATE);
    }
  }
}

/** Reads or writes `req` on `bus`, element by element; unassigned addresses read as all ones (pio) or zero (mmio). */
export function busAccess(bus: AddressSpace, req: IoRequest): boolean {
  const { data, size } = req;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const missing = req.kind === 'pio' ? 0xffffffff : 0;
  for (let i = 0; i < req.count; i++) {
    // String port I/O repeats the same port; MMIO elements are consecutive.
    const addr = req.kind === 'pio' ? req.addr : req.addr + i * size;
    const at = i * size;
    if (req.write) {
      const lo = size >= 4 ? view.getUint32(at, true) : size === 2 ? view.getUint16(at, true) : view.getUint8(at);
      const hi = size === 8 ? view.getUint32(at + 4, true) : 0;
      bus.write(addr, size, lo, hi);
    } else {
      let lo = bus.read(addr, size);
      let hi = bus.hi;
      if (lo === BUS_ERROR) {
        lo = missing;
        hi = missing;
      }
      if (size === 1) view.setUint8(at, lo & 0xff);
      else if (size === 2) view.setUint16(at, lo & 0xffff, true);
      else {
        view.setUint32(at, lo >>> 0, true);
        if (size === 8) view.setUint32(at + 4, hi >>> 0, true);
      }
    }
  }
  return true;
}
