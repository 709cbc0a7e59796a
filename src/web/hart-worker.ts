/** A hart thread in the browser (vireo-hart.js): its data comes in the first message; the body is mttcg-hart.ts. */
import { runHartThread } from '../accel/tcg/mttcg-hart.js';
import type { HartThreadData, HartThreadMessage } from '../accel/tcg/mttcg-protocol.js';

const scope = self as unknown as { onmessage: ((e: MessageEvent<HartThreadData>) => void) | null; postMessage(m: HartThreadMessage): void };
scope.onmessage = (e) => {
  scope.onmessage = null;
  runHartThread(e.data, (m) => scope.postMessage(m));
};
