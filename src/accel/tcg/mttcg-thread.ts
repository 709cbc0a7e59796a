/**
 * One RISC-V hart on its own host thread (a worker_threads Worker), for
 * `-accel tcg,thread=multi` (see mttcg.ts). The thread instantiates the core module
 * on the machine's shared WebAssembly.Memory, so guest RAM, the hart block (registers,
 * mip, TLBs) and the other harts' RAM accesses are the same bytes as on the main thread;
 * only MMIO leaves the thread, through an exit channel to the main thread, which owns
 * every device. The loop runs slices of instructions, re-checking interrupts (mip is
 * set by devices on the main thread) and the stop flag between slices, and sleeps in
 * Atomics.wait on the hart's wake word while the hart is in WFI.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ExitChannelClient } from '../../system/exit-channel.js';
import type { CoreExports } from '../../target/riscv/cpu.js';
import { CTL_STOP, CTL_WAKE, type HartThreadData, type HartThreadMessage } from './mttcg-protocol.js';

/** mtime ticks (10 MHz) per host millisecond. */
const TICKS_PER_MS = 10_000;
/** Longest sleep in WFI before looking at the flags again (a safety net: wake-ups are notified). */
const WFI_WAIT_MS = 100;
const EXIT_WFI = 1;

const data = workerData as HartThreadData;
const channel = new ExitChannelClient(data.channel);
const chanView = new DataView(channel.data.buffer, channel.data.byteOffset, 8);
const ctl = new Int32Array(data.ctl);
const timeFloor = new BigInt64Array(data.timeFloor);
const words = new Uint32Array(data.memory.buffer);
const init = data.init;
// The machine clock as performance.now() of this thread sees it (both count host monotonic time).
const clockMsAtZero = data.clockNs / 1e6 + Number(process.hrtime.bigint() - data.hrtime) / 1e6 - performance.now();
let scratch = 0;

const instance = new WebAssembly.Instance(data.module, {
  env: {
    memory: data.memory,
    mmio_read(addr: number, size: number): number {
      if (!channel.request('mmio', false, addr, size)) return 1;
      words[scratch] = size === 1 ? chanView.getUint8(0) : size === 2 ? chanView.getUint16(0, true) : chanView.getUint32(0, true);
      words[scratch + 1] = size === 8 ? chanView.getUint32(4, true) : 0;
      return 0;
    },
    mmio_write(addr: number, size: number, lo: number, hi: number): number {
      // The full 64-bit register value goes over (as the single-threaded bus sees it); the
      // main thread reads it from the first 8 bytes whatever the size.
      chanView.setUint32(0, lo >>> 0, true);
      chanView.setUint32(4, hi >>> 0, true);
      return channel.request('mmio', true, addr, size) ? 0 : 1;
    },
    host_mtime(): number {
      // Never earlier than what another hart already read (see HartThreadData.timeFloor).
      const t = BigInt(Math.floor((performance.now() + clockMsAtZero) * TICKS_PER_MS));
      let floor = Atomics.load(timeFloor, 0);
      while (t > floor) {
        const seen = Atomics.compareExchange(timeFloor, 0, floor, t);
        if (seen === floor) return Number(t);
        floor = seen;
      }
      return Number(floor);
    },
    // No JIT on hart threads yet (-accel tcg,jit=on is refused with thread=multi).
    table: new WebAssembly.Table({ initial: 1, element: 'anyfunc' }),
    jit_translate: (): number => 0,
    jit_invalidate: (): void => {},
    abort(): never {
      throw new Error('RISC-V core aborted');
    },
  },
});
const core = instance.exports as unknown as CoreExports;
scratch = (init.hartBase + (core.OFF_SCRATCH.value as number)) >> 2;
const exitIndex = (init.hartBase + (core.OFF_EXIT.value as number)) >> 2;
const mem32 = new Int32Array(data.memory.buffer);
// The compressed-instruction table was filled by hart 0 on the main thread: do not fill it again.
core.init(init.hartBase, init.hartId, init.rvcTable, 0, init.ramBase, init.ramSize, init.ramHost,
  init.romBase, init.romSize, init.romHost);
core.reset(data.pc);
parentPort!.postMessage({ kind: 'ready' } satisfies HartThreadMessage);
const go = new Int32Array(data.go);

function stopping(): boolean {
  return Atomics.load(ctl, CTL_STOP) !== 0 || Atomics.load(mem32, exitIndex) !== 0;
}

function loop(): void {
  const slice = data.slice;
  while (Atomics.load(go, 0) === 0 && !stopping()) Atomics.wait(go, 0, 0, WFI_WAIT_MS);
  while (!stopping()) {
    // Devices on the main thread may have changed mip: re-check interrupts before the slice.
    core.kick();
    if (core.run(slice) !== EXIT_WFI) continue;
    // WFI: sleep until an interrupt is pending and enabled, or the parent stops us. Reading the
    // wake word before checking mip closes the race with a notification in between.
    for (;;) {
      const seq = Atomics.load(ctl, CTL_WAKE);
      if (core.wfiWake() || stopping()) break;
      Atomics.wait(ctl, CTL_WAKE, seq, WFI_WAIT_MS);
    }
  }
}

let result: HartThreadMessage;
try {
  loop();
  result = { kind: 'stopped', instret: core.getInstret() };
} catch (err) {
  result = { kind: 'error', detail: err instanceof Error ? err.message : String(err) };
}
channel.close();
parentPort!.postMessage(result);
