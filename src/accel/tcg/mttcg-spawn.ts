/**
 * The host end of hart threads under Node: worker_threads Workers running mttcg-thread.ts,
 * and the host clock they share. The browser build swaps this module for
 * src/web/mttcg-spawn.ts (Web Workers), see scripts/build.mjs.
 */
import { Worker } from 'node:worker_threads';
import type { HartThreadData, HartThreadMessage } from './mttcg-protocol.js';

/** Host monotonic time in milliseconds, the same on every thread of the process. */
export function hostNowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** What the parent hears from a hart thread. */
export interface HartThreadEvents {
  message(m: HartThreadMessage): void;
  error(detail: string): void;
  /** The thread is gone (after its last message, or without one if it died). */
  exit(): void;
}

/** Starts a thread running one hart; `terminate` ends it. */
export function spawnHartThread(data: HartThreadData, on: HartThreadEvents): { terminate(): Promise<void> } {
  const worker = new Worker(new URL('./mttcg-thread.js', import.meta.url), { workerData: data });
  worker.on('message', on.message);
  worker.on('error', (err) => on.error(err.message));
  worker.on('exit', on.exit);
  return { terminate: async () => { await worker.terminate(); } };
}
