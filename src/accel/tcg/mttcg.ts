/**
 * Multi-threaded vCPU execution (QEMU's MTTCG, `-accel tcg,thread=multi`): one host
 * thread per RISC-V hart (mttcg-hart.ts: a worker_threads Worker, or a Web Worker in the
 * browser, see mttcg-spawn.ts), all on the machine's shared
 * WebAssembly.Memory. Guest RAM accesses, including LR/SC and AMOs (wasm atomics), stay
 * on the hart's thread; MMIO goes through an exit channel to the main thread, which
 * owns every device and serves one access at a time (the global lock, as for KVM
 * vCPUs, see src/system/exit-channel.ts). The main thread also fires the device timers
 * (RTC, ...): devices raise a hart's interrupt by setting its mip bits atomically, and the
 * hart's onWake hook bumps and notifies the hart's wake word, so that a hart sleeping in
 * WFI wakes; a running hart sees mip at its next slice.
 *
 * The CLINT is the exception: each hart thread serves it itself, over registers in shared
 * memory. Linux reprograms the timer at every tick; through the main thread, each write
 * would take as long as the host takes to schedule that thread (milliseconds on a busy
 * host), and a deadline one tick ahead could have passed on arrival: the hart would then
 * spend all its time taking timer interrupts and never get back to its work.
 */
import type { Clock } from '../../hw/core/clock.js';
import { BUS_ERROR, type AddressSpace } from '../../hw/core/memory.js';
import type { RiscvAclint } from '../../hw/intc/riscv-aclint.js';
import { coreModule, type RiscvCpus } from '../../target/riscv/cpu.js';
import { ExitChannelServer, EXIT_CHANNEL_BYTES, type IoRequest } from '../../system/exit-channel.js';
import { CTL_FLUSH, CTL_FLUSHED, CTL_RETIRED_K, CTL_STOP, CTL_WAKE, CTL_WORDS, type HartThreadData, type HartThreadMessage } from './mttcg-protocol.js';
import { wakeableSleep, type StopReason } from './rr.js';
import { pollIoBriefly } from '../../system/io-poll.js';
import { hostNowMs, spawnHartThread } from './mttcg-spawn.js';

/** Instructions per slice on a hart thread: the latency of an interrupt raised while the hart runs. */
const SLICE = 20_000;
/** How often the main thread looks at the stop conditions (HTIF tohost is polled) when nothing else wakes it (ms). */
const POLL_MS = 10;


/** Serves a hart thread's MMIO on `bus`, with the same results as the single-threaded path (bus errors fault). */
function mmioHandler(bus: AddressSpace, after: () => void): (req: IoRequest) => boolean {
  return (req) => {
    // The hart thread exchanges the whole 64-bit register in the first 8 bytes of the data area.
    const v = new DataView(req.data.buffer, req.data.byteOffset, 8);
    let ok: boolean;
    if (req.write) {
      ok = bus.write(req.addr, req.size, v.getUint32(0, true), v.getUint32(4, true));
    } else {
      const lo = bus.read(req.addr, req.size);
      ok = lo !== BUS_ERROR;
      if (ok) {
        v.setUint32(0, lo >>> 0, true);
        v.setUint32(4, req.size === 8 ? bus.hi >>> 0 : 0, true);
      }
    }
    after();
    return ok;
  };
}

/** One hart's thread, as the main thread sees it. */
class HartThread {
  readonly ctl: Int32Array;
  /** Instructions the hart had retired when the thread started (CTL_RETIRED_K counts on from there). */
  private readonly retiredAtStart: number;
  private readonly thread: { terminate(): Promise<void> };
  /** Resolves when the thread has ended (its channel closed). */
  readonly stopped: Promise<HartThreadMessage>;

  /** Resolves when the thread has initialised its hart and waits for the start signal. */
  readonly ready: Promise<void>;

  constructor(cpus: RiscvCpus, id: number, clock: Clock,
    shared: Pick<HartThreadData, 'go' | 'timeFloor' | 'clint' | 'peers'>, handler: (req: IoRequest) => boolean) {
    this.ctl = new Int32Array(shared.peers[id]!.ctl);
    this.retiredAtStart = cpus.harts[id]!.instret;
    Atomics.store(this.ctl, CTL_RETIRED_K, Math.floor(this.retiredAtStart / 1024) | 0);
    const channel = new SharedArrayBuffer(EXIT_CHANNEL_BYTES);
    const server = new ExitChannelServer(channel, handler);
    const data: HartThreadData = {
      module: coreModule(),
      memory: cpus.memory,
      init: cpus.hartInit(id),
      channel,
      ctl: this.ctl.buffer as SharedArrayBuffer,
      hostMs: hostNowMs(),
      clockNs: clock.now(),
      slice: SLICE,
      ...shared,
    };
    let ready = (): void => {};
    this.ready = new Promise<void>((resolve) => { ready = resolve; });
    let resolveStopped = (_m: HartThreadMessage): void => {};
    this.stopped = new Promise<HartThreadMessage>((resolve) => { resolveStopped = resolve; });
    let reported = false;
    this.thread = spawnHartThread(data, {
      message: (msg) => {
        if (msg.kind === 'ready') {
          ready();
          return;
        }
        reported = true;
        void server.closed.then(() => resolveStopped(msg));
      },
      error: (detail) => resolveStopped({ kind: 'error', detail }),
      exit: () => {
        if (!reported) resolveStopped({ kind: 'error', detail: 'hart thread exited' });
      },
    });
  }

  /** Wakes the hart if it sleeps in WFI (an interrupt line rose). */
  wake(): void {
    Atomics.add(this.ctl, CTL_WAKE, 1);
    Atomics.notify(this.ctl, CTL_WAKE);
  }

  /** Has the thread flush its hart's write TLB; resolves false if the thread ended first. */
  async flushWriteTlb(): Promise<boolean> {
    const gen = (Atomics.add(this.ctl, CTL_FLUSH, 1) + 1) | 0;
    this.wake();
    let ended = false;
    void this.stopped.then(() => { ended = true; });
    for (;;) {
      const seen = Atomics.load(this.ctl, CTL_FLUSHED);
      if (seen === gen) return true;
      if (ended) return false;
      const w = Atomics.waitAsync(this.ctl, CTL_FLUSHED, seen, 20);
      if (w.async) await w.value;
      else await Promise.resolve();
    }
  }

  /** The hart's instructions retired, to 1024. */
  retired(): number {
    const start = this.retiredAtStart;
    return start - (start % 1024) + ((Atomics.load(this.ctl, CTL_RETIRED_K) - (Math.floor(start / 1024) | 0)) >>> 0) * 1024;
  }

  requestStop(): void {
    Atomics.store(this.ctl, CTL_STOP, 1);
    this.wake();
  }

  async join(): Promise<HartThreadMessage> {
    const msg = await this.stopped;
    await this.thread.terminate();
    return msg;
  }
}

/**
 * Runs every hart of `cpus` on its own thread until `check` (called on the main thread
 * after device accesses, timers, and every POLL_MS) reports a reason to stop; then stops
 * all the threads and waits for them to end. The threads take over the harts' state from the
 * main thread's cores and hand it back when they end, so that a pause (a stop reason like any
 * other) leaves the harts where a monitor can read them and the next run can continue them.
 */
export async function runMultiThreaded(clock: Clock, cpus: RiscvCpus, bus: AddressSpace,
  clint: { base: number; size: number; device: RiscvAclint }, check: () => StopReason | null): Promise<StopReason> {
  let stop: StopReason | null = null;
  let wake: (() => void) | null = null;
  const wakeUp = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const poll = (): StopReason | null => {
    stop ??= check();
    return stop;
  };
  // After each device access: a write to the test finisher or HTIF may end the run.
  const handler = mmioHandler(bus, () => {
    if (poll()) wakeUp();
  });
  const go = new Int32Array(new SharedArrayBuffer(4));
  const shared = {
    go: go.buffer as SharedArrayBuffer,
    timeFloor: new SharedArrayBuffer(8),
    clint: { base: clint.base, size: clint.size, state: clint.device.state },
    peers: cpus.harts.map((h) => ({ hartBase: cpus.hartInit(h.id).hartBase, ctl: new SharedArrayBuffer(CTL_WORDS * 4) })),
  };
  for (const h of cpus.harts) h.saveState();
  const threads = cpus.harts.map((h) => new HartThread(cpus, h.id, clock, shared, handler));
  cpus.harts.forEach((h, i) => {
    const t = threads[i]!;
    h.onWake = () => t.wake();
  });
  // A hart whose thread ended is back in the hart block: flush it from here.
  cpus.flushWriteTlbs = async () => {
    await Promise.all(threads.map(async (t, i) => {
      if (!await t.flushWriteTlb()) cpus.harts[i]!.flushWriteTlb();
    }));
  };
  cpus.retired = () => threads.reduce((n, t) => n + t.retired(), 0);
  clock.onChange = wakeUp;
  let failure: string | null = null;
  for (const t of threads) {
    void t.stopped.then((m) => {
      if (m.kind === 'error') failure ??= m.detail;
      wakeUp();
    });
  }
  try {
    // Start every hart at once, after all have been reset (a thread that failed first ends the wait too).
    await Promise.race([Promise.all(threads.map((t) => t.ready)), Promise.race(threads.map((t) => t.stopped))]);
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    for (;;) {
      clock.runExpired();
      if (poll() || failure !== null) break;
      pollIoBriefly(); // as the round-robin loop does before it sleeps
      await wakeableSleep(clock.msUntilNext(POLL_MS), (w) => { wake = w; });
    }
  } finally {
    clock.onChange = null;
    for (const t of threads) t.requestStop();
    for (const [i, t] of threads.entries()) {
      const m = await t.join();
      if (m.kind === 'stopped') cpus.harts[i]!.loadState();
      else if (m.kind === 'error') failure ??= m.detail;
    }
    for (const h of cpus.harts) h.onWake = null;
    cpus.flushWriteTlbs = cpus.flushHartWriteTlbs;
    cpus.retired = cpus.hartsRetired;
  }
  if (failure !== null && stop === null) throw new Error(`hart thread failed: ${failure}`);
  return stop ?? { kind: 'quit' };
}
