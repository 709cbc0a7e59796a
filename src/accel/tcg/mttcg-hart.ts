/**
 * One RISC-V hart on its own host thread, for `-accel tcg,thread=multi` (see mttcg.ts):
 * the thread's body, whatever runs it (a worker_threads Worker, mttcg-thread.ts; a
 * browser Worker, src/web/hart-worker.ts). The thread instantiates the core module
 * on the machine's shared WebAssembly.Memory, so guest RAM, the hart block (registers,
 * mip, TLBs) and the other harts' RAM accesses are the same bytes as on the main thread;
 * only MMIO leaves the thread, through an exit channel to the main thread, which owns
 * every device but the CLINT: the thread serves the CLINT with its own RiscvAclint over
 * the registers' shared state (see mttcg.ts for why), and fires the CLINT timers it armed.
 * The loop runs slices of instructions, re-checking timers, interrupts (mip is set by
 * devices on the main thread and by the other harts' CLINTs) and the stop flag between
 * slices, and sleeps in Atomics.wait on the hart's wake word while the hart is in WFI.
 * With jit=on, the thread translates its hart's code into its own function table (a
 * WebAssembly.Table cannot be shared between threads); the code map is shared and the
 * threads learn of each other's invalidations through the JIT's log (jit-log.ts).
 */
import { ExitChannelClient } from '../../system/exit-channel.js';
import { Clock } from '../../hw/core/clock.js';
import type { IrqLine } from '../../hw/core/irq.js';
import { AddressSpace, BUS_ERROR } from '../../hw/core/memory.js';
import { CLINT_TIMEBASE_FREQ, CLINT_VALID_ACCESS, RiscvAclint } from '../../hw/intc/riscv-aclint.js';
import { Mip, type CoreExports } from '../../target/riscv/cpu.js';
import { Jit, JitHart } from '../../target/riscv/jit/jit.js';
import { JitLog } from '../../target/riscv/jit/jit-log.js';
import { CTL_FLUSH, CTL_FLUSHED, CTL_RETIRED_K, CTL_STOP, CTL_WAKE, type HartThreadData, type HartThreadMessage } from './mttcg-protocol.js';
import { hostNowMs } from './mttcg-spawn.js';

/** mtime ticks per host millisecond, and nanoseconds per tick. */
const TICKS_PER_MS = CLINT_TIMEBASE_FREQ / 1000;
const NS_PER_TICK = 1e9 / CLINT_TIMEBASE_FREQ;
/** Longest sleep in WFI before looking at the flags again (a safety net: wake-ups are notified). */
const WFI_WAIT_MS = 100;
const EXIT_WFI = 1;

/** Runs the hart of `data` until the parent stops it; `post` sends the messages to the parent. */
export function runHartThread(data: HartThreadData, post: (m: HartThreadMessage) => void): void {
  const channel = new ExitChannelClient(data.channel);
  const chanView = new DataView(channel.data.buffer, channel.data.byteOffset, 8);
  const ctl = new Int32Array(data.ctl);
  const timeFloor = new BigInt64Array(data.timeFloor);
  const words = new Uint32Array(data.memory.buffer);
  const init = data.init;
  // The machine clock as performance.now() of this thread sees it (both count host monotonic time).
  const clockMsAtZero = data.clockNs / 1e6 + (hostNowMs() - data.hostMs) - performance.now();
  let scratch = 0;

  /** The machine's mtime in ticks, never earlier than what another hart already read (see HartThreadData.timeFloor). */
  function mtime(): number {
    const t = BigInt(Math.floor((performance.now() + clockMsAtZero) * TICKS_PER_MS));
    let floor = Atomics.load(timeFloor, 0);
    while (t > floor) {
      const seen = Atomics.compareExchange(timeFloor, 0, floor, t);
      if (seen === floor) return Number(t);
      floor = seen;
    }
    return Number(floor);
  }

  // The CLINT, served on this thread (its timers fire between slices and end WFI sleeps).
  const clock = new Clock(() => mtime() * NS_PER_TICK);
  const local = new AddressSpace();
  const inClint = (addr: number): boolean => addr >= data.clint.base && addr - data.clint.base < data.clint.size;

  const jitInit = init.jit;
  const jit = jitInit ? new Jit(data.memory, jitInit.codeMap, jitInit.threshold, new JitLog(data.memory, jitInit.log, jitInit.harts, init.hartId)) : null;
  const jitHart = jit ? new JitHart(jit) : null;
  const instance = new WebAssembly.Instance(data.module, {
    env: {
      memory: data.memory,
      mmio_read(addr: number, size: number): number {
        if (inClint(addr)) {
          const lo = local.read(addr, size);
          if (lo === BUS_ERROR) return 1;
          words[scratch] = lo;
          words[scratch + 1] = size === 8 ? local.hi : 0;
          return 0;
        }
        if (!channel.request('mmio', false, addr, size)) return 1;
        words[scratch] = size === 1 ? chanView.getUint8(0) : size === 2 ? chanView.getUint16(0, true) : chanView.getUint32(0, true);
        words[scratch + 1] = size === 8 ? chanView.getUint32(4, true) : 0;
        return 0;
      },
      mmio_write(addr: number, size: number, lo: number, hi: number): number {
        if (inClint(addr)) return local.write(addr, size, lo, hi) ? 0 : 1;
        // The full 64-bit register value goes over (as the single-threaded bus sees it); the
        // main thread reads it from the first 8 bytes whatever the size.
        chanView.setUint32(0, lo >>> 0, true);
        chanView.setUint32(4, hi >>> 0, true);
        return channel.request('mmio', true, addr, size) ? 0 : 1;
      },
      host_mtime: mtime,
      table: jitHart ? jitHart.table : new WebAssembly.Table({ initial: 1, element: 'anyfunc' }),
      jit_translate: (lo: number, hi: number, host: number): number => jitHart ? jitHart.translate(lo, hi, host) : 0,
      jit_invalidate: (host: number, size: number): void => jit?.invalidate(host, size),
      jit_sync: (): void => jit?.sync(),
      abort(): never {
        throw new Error('RISC-V core aborted');
      },
    },
  });
  const core = instance.exports as unknown as CoreExports;
  scratch = (init.hartBase + (core.OFF_SCRATCH.value as number)) >> 2;
  const exitIndex = (init.hartBase + (core.OFF_EXIT.value as number)) >> 2;
  const mem32 = new Int32Array(data.memory.buffer);
  // The compressed-instruction table was filled by hart 0 on the main thread: do not fill it
  // again. The hart's state is as the main thread (or this hart's thread before a pause) left it.
  core.init(init.hartBase, init.hartId, init.rvcTable, 0, 0, init.ramBase, init.ramSize, init.ramHost,
    init.romBase, init.romSize, init.romHost, init.dirtyMap);
  if (jitHart && jitInit) {
    jitHart.attach(core, {
      mem16: new Uint16Array(data.memory.buffer),
      mem32: new Uint32Array(data.memory.buffer),
      rvcTable: init.rvcTable,
      hb: init.hartBase,
      offJit: core.OFF_JIT.value as number,
    }, jitInit.hash);
  }
  /** Runs a slice; with the JIT, the hart applies the log before its first instruction (see JitLog.setActive). */
  const runSlice = jit
    ? (budget: number): number => {
      jit.log!.setActive(true);
      const exit = core.runJit(budget);
      jit.publishStats();
      return exit;
    }
    : (budget: number): number => core.run(budget);

  /** Bit `bit` of hart `i`'s mip, raised from this thread: sets it in shared memory and wakes the hart. */
  function hartLine(i: number, bit: Mip): IrqLine {
    const peer = data.peers[i]!;
    const index = (peer.hartBase + (core.OFF_MIP.value as number)) >> 2;
    const wake = new Int32Array(peer.ctl);
    const mask = 1 << bit;
    return {
      set(level: boolean): void {
        if (!level) {
          Atomics.and(mem32, index, ~mask);
          return;
        }
        Atomics.or(mem32, index, mask);
        if (i === init.hartId) core.kick();
        Atomics.add(wake, CTL_WAKE, 1);
        Atomics.notify(wake, CTL_WAKE);
      },
    };
  }
  const harts = data.peers.map((_, i) => i);
  const clint = new RiscvAclint(clock, harts.map((i) => hartLine(i, Mip.MSIP)), harts.map((i) => hartLine(i, Mip.MTIP)), data.clint.state);
  local.addRegion({ name: 'clint', base: data.clint.base, size: data.clint.size, handler: clint, valid: CLINT_VALID_ACCESS, impl: { min: 1, max: 4 } });
  // This thread fires its hart's timer, programmed before the thread started (or resumed).
  clint.updateTimer(init.hartId);
  post({ kind: 'ready' });
  const go = new Int32Array(data.go);

  function stopping(): boolean {
    return Atomics.load(ctl, CTL_STOP) !== 0 || Atomics.load(mem32, exitIndex) !== 0;
  }

  /** Serves a write TLB flush the parent asked for (see CTL_FLUSH). */
  function serveFlush(): void {
    const wanted = Atomics.load(ctl, CTL_FLUSH);
    if (wanted === Atomics.load(ctl, CTL_FLUSHED)) return;
    core.flushWriteTlb();
    Atomics.store(ctl, CTL_FLUSHED, wanted);
    Atomics.notify(ctl, CTL_FLUSHED);
  }

  function loop(): void {
    const slice = data.slice;
    while (Atomics.load(go, 0) === 0 && !stopping()) Atomics.wait(go, 0, 0, WFI_WAIT_MS);
    while (!stopping()) {
      // Timers may have expired and devices elsewhere may have changed mip: re-check interrupts before the slice.
      serveFlush();
      clock.runExpired();
      core.kick();
      const exit = runSlice(slice);
      Atomics.store(ctl, CTL_RETIRED_K, Math.floor(core.getInstret() / 1024) | 0);
      if (exit !== EXIT_WFI) continue;
      // WFI: sleep until an interrupt is pending and enabled, a CLINT timer of this thread is
      // due, or the parent stops us. Reading the wake word before checking mip closes the race
      // with a notification in between. Asleep, the hart does not hold up other harts' translations.
      jit?.log!.setActive(false);
      for (;;) {
        const seq = Atomics.load(ctl, CTL_WAKE);
        serveFlush();
        clock.runExpired();
        if (core.wfiWake() || stopping()) break;
        Atomics.wait(ctl, CTL_WAKE, seq, clock.msUntilNext(WFI_WAIT_MS));
      }
    }
  }

  let result: HartThreadMessage;
  try {
    loop();
    // Hand the hart back to the main thread (for a monitor, or the threads of the next resume).
    core.saveState();
    result = { kind: 'stopped' };
  } catch (err) {
    result = { kind: 'error', detail: err instanceof Error ? err.message : String(err) };
  }
  jit?.log!.setActive(false);
  channel.close();
  post(result);
}
