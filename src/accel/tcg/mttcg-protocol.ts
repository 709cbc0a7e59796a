/**
 * What the main thread and a hart thread of `-accel tcg,thread=multi` share (mttcg.ts,
 * mttcg-hart.ts): the control block layout, the thread's data and the messages.
 */
import type { HartInitArgs } from '../../target/riscv/cpu.js';

/** Int32 slots of a hart thread's control block. */
export const CTL_STOP = 0;
export const CTL_WAKE = 1;
/** Write TLB flush requests (live migration's dirty tracking): the parent bumps CTL_FLUSH, the thread copies it to CTL_FLUSHED once done. */
export const CTL_FLUSH = 2;
export const CTL_FLUSHED = 3;
/** The hart's instructions retired / 1024 (modulo 2^32), stored by the thread after every slice: live statistics. */
export const CTL_RETIRED_K = 4;
export const CTL_WORDS = 5;

/** What the parent passes in workerData. */
export interface HartThreadData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  init: HartInitArgs;
  /** Exit channel for MMIO. */
  channel: SharedArrayBuffer;
  /** CTL_WORDS Int32 slots: CTL_STOP non-zero asks the thread to end; CTL_WAKE is bumped and notified on interrupts. */
  ctl: SharedArrayBuffer;
  /** The machine clock (nanoseconds) at host time `hostMs` (hostNowMs() of mttcg-spawn.ts). */
  clockNs: number;
  hostMs: number;
  /**
   * Int32 slot 0, shared by all hart threads: each thread takes over its hart's state
   * (saved in the hart block by the main thread), posts 'ready', and waits until the parent sets it to 1 once
   * every thread is ready, so that no hart runs (and sends IPIs) before all have been reset.
   */
  go: SharedArrayBuffer;
  /**
   * BigInt64 slot 0, shared by all hart threads: the latest mtime any hart has read. Each
   * thread derives time from its own performance.now(), whose origins differ by microseconds;
   * without this floor one hart could read a time before another's, and Linux takes such a
   * negative delta as a jump of thousands of years.
   */
  timeFloor: SharedArrayBuffer;
  /** Instructions per slice between checks of interrupts and the stop flag. */
  slice: number;
  /** The CLINT, which every hart thread serves itself over the registers' shared state. */
  clint: { base: number; size: number; state: SharedArrayBuffer };
  /** Every hart (by index): where its block is and its control block, to raise its interrupts and wake it. */
  peers: Array<{ hartBase: number; ctl: SharedArrayBuffer }>;
}

/** Messages to the parent. */
export type HartThreadMessage =
  | { kind: 'ready' }
  | { kind: 'stopped' }
  | { kind: 'error'; detail: string };

