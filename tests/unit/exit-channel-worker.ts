/** Worker for exit-channel.test.ts: plays a vCPU issuing accesses through the channel. */
import { workerData, parentPort } from 'node:worker_threads';
import { ExitChannelClient } from '../../src/system/exit-channel.js';

const ch = new ExitChannelClient(workerData as SharedArrayBuffer);
const results: number[] = [];
// Write 0..n-1 to port 0x3f8, then read port 0x3f9 n times (the device counts).
const n = 2000;
for (let i = 0; i < n; i++) {
  ch.data[0] = i & 0xff;
  ch.request('pio', true, 0x3f8, 1);
}
for (let i = 0; i < 3; i++) {
  ch.request('pio', false, 0x3f9, 1);
  results.push(ch.data[0]!);
}
// An 8-byte MMIO read above 4 GiB and a string write of 3 bytes.
ch.request('mmio', false, 0x1_0000_1000, 8);
results.push(new DataView(ch.data.buffer, ch.data.byteOffset).getUint32(4, true));
ch.data.set([7, 8, 9]);
ch.request('pio', true, 0x80, 1, 3);
results.push(ch.request('mmio', false, 0xdead0000, 4) ? 1 : 0);
ch.close();
parentPort!.postMessage(results);
