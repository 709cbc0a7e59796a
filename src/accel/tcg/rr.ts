/**
 * Single-threaded round-robin vCPU execution (QEMU's tcg-accel-ops-rr.c, i.e.
 * `-accel tcg,thread=single`): the main thread runs each hart for a slice of
 * instructions in turn, fires expired timers between slices, yields to Node's
 * event loop often enough for I/O to flow, and sleeps when every hart is in WFI
 * until the next timer deadline or an interrupt wakes one.
 */
import type { Clock } from '../../hw/core/clock.js';
import type { Hart } from '../../target/riscv/cpu.js';
import { pollIoBriefly } from '../../system/io-poll.js';

/** Why the machine stopped. */
export type StopReason = { kind: 'poweroff'; code: number } | { kind: 'reset' } | { kind: 'quit' };

/** Instructions per hart per slice: short enough for timely timers, long enough to amortise the loop. */
const SLICE = 200_000;
/** Yield to the event loop at least this often while the guest is busy (ms). */
const YIELD_MS = 8;

/**
 * Lets pending I/O events run, then resumes: setImmediate under Node; in a browser, a
 * message to itself (setTimeout would be clamped to 4 ms once nested).
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise<void>((r) => setImmediate(r));
  return new Promise<void>((r) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      r();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * Sleeps `ms` milliseconds, or until the function handed to `arm` is called: `arm` gets
 * the early wake-up when the sleep starts, and null when it ends by itself.
 */
export function wakeableSleep(ms: number, arm: (wake: (() => void) | null) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      arm(null);
      resolve();
    }, ms);
    arm(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Runs the harts until `check` (called between slices) reports a reason to stop.
 */
export async function runRoundRobin(clock: Clock, harts: Hart[], check: () => StopReason | null): Promise<StopReason> {
  let wake: (() => void) | null = null;
  const wakeUp = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  for (const h of harts) h.onWake = wakeUp;
  clock.onChange = wakeUp;
  let lastYield = performance.now();
  try {
    for (;;) {
      clock.runExpired();
      let busy = false;
      for (const h of harts) {
        if (h.halted && !h.wakeable) continue;
        h.run(SLICE);
        if (!h.halted) busy = true;
        const stop = check();
        if (stop) return stop;
      }
      const stop = check();
      if (stop) return stop;
      const now = performance.now();
      if (busy) {
        if (now - lastYield >= YIELD_MS) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
        continue;
      }
      // Every hart waits for an interrupt: first poll in-flight host I/O for a moment (a
      // disk read from the host's cache completes within it), then sleep until the next
      // deadline or a wake-up; a completion polled here wakes a hart at the sleep's first await.
      pollIoBriefly();
      const deadline = clock.nextDeadline();
      const ms = deadline === Infinity ? 1000 : Math.max(0, (deadline - clock.now()) / 1e6);
      await wakeableSleep(ms, (w) => { wake = w; });
      lastYield = performance.now();
    }
  } finally {
    for (const h of harts) h.onWake = null;
    clock.onChange = null;
  }
}
