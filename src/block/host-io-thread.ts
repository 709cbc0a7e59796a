/**
 * The block I/O thread of host-io.ts: runs queued reads and writes with blocking calls,
 * spins for a while after the last one, then sleeps until the next is submitted. While
 * it spins it yields its core (sched_yield) to any other thread that wants it: on a
 * 2-core host the vCPU thread and V8's compiler thread would otherwise share the other
 * one whenever V8 compiles (the first ~2000 random 4 KiB writes after boot took ~10%
 * longer in one set of interleaved runs; within the noise in another).
 */
import { readSync, writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import {
  COMPLETED, DONE, F_COUNT, F_FD, F_LEN, F_OP, F_RESULT, F_STATE, HOST_IO_MAX_BYTES, HOST_IO_SLOTS, OP_READ, OP_WRITEV, QUEUED, SPIN_MS, SUBMITTED,
  slotWord, type HostIoBuffers,
} from './host-io.js';

const bufs = workerData as HostIoBuffers;
/** sched_yield(), or nothing without koffi (the thread then spins as it is). */
let yieldCore = (): void => {};
/** pwritev(fd, iov, count, pos) with the iovecs in `iov`; without koffi, -1 (the caller takes another way). */
let pwritev = (_fd: number, _iov: Uint32Array, _count: number, _pos: number): number => -1;
try {
  const { default: koffi } = await import('koffi');
  const libc = koffi.load('libc.so.6');
  const schedYield = libc.func('int sched_yield(void)') as () => number;
  yieldCore = () => void schedYield();
  pwritev = libc.func('pwritev', 'long', ['int', 'void *', 'int', 'int64_t']) as typeof pwritev;
} catch {
  // Not Linux, or no koffi.
}
const ctl = new Int32Array(bufs.ctl);
const positions = new Float64Array(bufs.pos);
const data = new Uint8Array(bufs.data);

function perform(slot: number): number {
  const fd = ctl[slotWord(slot, F_FD)]!;
  const len = ctl[slotWord(slot, F_LEN)]!;
  const pos = positions[slot]!;
  const op = ctl[slotWord(slot, F_OP)];
  try {
    if (op === OP_WRITEV) {
      // The iovecs point into shared memory the main thread keeps alive; a short write is
      // reported as such (the caller then writes it all again its own way).
      const count = ctl[slotWord(slot, F_COUNT)]!;
      return pwritev(fd, new Uint32Array(bufs.data, slot * HOST_IO_MAX_BYTES, count * 4), count, pos);
    }
    const buf = data.subarray(slot * HOST_IO_MAX_BYTES, slot * HOST_IO_MAX_BYTES + len);
    let done = 0;
    if (op === OP_READ) {
      while (done < len) {
        const n = readSync(fd, buf, done, len - done, pos + done);
        if (n === 0) break;
        done += n;
      }
    } else {
      while (done < len) done += writeSync(fd, buf, done, len - done, pos + done);
    }
    return done;
  } catch {
    return -1;
  }
}

let idleSince = performance.now();
for (;;) {
  const submitted = Atomics.load(ctl, SUBMITTED);
  let ran = false;
  for (let i = 0; i < HOST_IO_SLOTS; i++) {
    if (Atomics.load(ctl, slotWord(i, F_STATE)) !== QUEUED) continue;
    ctl[slotWord(i, F_RESULT)] = perform(i);
    Atomics.store(ctl, slotWord(i, F_STATE), DONE);
    Atomics.add(ctl, COMPLETED, 1);
    Atomics.notify(ctl, COMPLETED);
    ran = true;
  }
  if (ran) idleSince = performance.now();
  else if (performance.now() - idleSince < SPIN_MS) yieldCore();
  else {
    Atomics.wait(ctl, SUBMITTED, submitted); // returns at once if a request came after the count was read
    idleSince = performance.now();
  }
}
