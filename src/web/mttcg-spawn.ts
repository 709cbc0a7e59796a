/**
 * The host end of hart threads in the browser, in place of src/accel/tcg/mttcg-spawn.ts
 * (the bundler swaps them): a Web Worker (vireo-hart.js, beside vireo-worker.js) per hart,
 * started from the machine's worker, on the same shared WebAssembly memory.
 */
import type { HartThreadData, HartThreadMessage } from '../accel/tcg/mttcg-protocol.js';
import type { HartThreadEvents } from '../accel/tcg/mttcg-spawn.js';

/** performance.now() counts from each thread's own origin: add it to get one time for all. */
export function hostNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function spawnHartThread(data: HartThreadData, on: HartThreadEvents): { terminate(): Promise<void> } {
  const worker = new Worker(new URL('vireo-hart.js', location.href));
  worker.onmessage = (e: MessageEvent<HartThreadMessage>) => on.message(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    on.error(e.message);
  };
  worker.postMessage(data);
  return {
    terminate: async () => {
      worker.terminate();
      on.exit();
    },
  };
}
