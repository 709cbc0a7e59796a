/** A hart thread under Node (a worker_threads Worker started by mttcg-spawn.ts): the body is mttcg-hart.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { runHartThread } from './mttcg-hart.js';
import type { HartThreadData } from './mttcg-protocol.js';

runHartThread(workerData as HartThreadData, (m) => parentPort!.postMessage(m));
