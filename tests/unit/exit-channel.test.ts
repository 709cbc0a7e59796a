/**
 * The vCPU-to-device-thread hand-over (src/system/exit-channel.ts), with a real
 * worker thread: every access arrives once, in order, reads return what the
 * device answered, and the main thread's event loop keeps running meanwhile.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { ExitChannelServer, EXIT_CHANNEL_BYTES, busAccess, type IoRequest } from '../../src/system/exit-channel.js';
import { AddressSpace } from '../../src/hw/core/memory.js';

test('accesses cross from a worker to the main thread in order', async () => {
  const sab = new SharedArrayBuffer(EXIT_CHANNEL_BYTES);
  const written: number[] = [];
  const strings: number[][] = [];
  let reads = 0;
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const server = new ExitChannelServer(sab, (req: IoRequest) => {
    if (req.kind === 'mmio') {
      if (req.addr === 0xdead0000) return false;
      assert.equal(req.addr, 0x1_0000_1000);
      req.data.set([1, 2, 3, 4, 0x78, 0x56, 0x34, 0x12]);
      return true;
    }
    if (req.write && req.count > 1) strings.push([...req.data]);
    else if (req.write) written.push(req.data[0]!);
    else req.data[0] = 100 + reads++;
    return true;
  });
  const worker = new Worker(fileURLToPath(new URL('./exit-channel-worker.js', import.meta.url)), { workerData: sab });
  const results = await new Promise<number[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await server.closed;
  clearInterval(timer);
  assert.equal(written.length, 2000);
  assert.ok(written.every((v, i) => v === (i & 0xff)));
  assert.deepEqual(results, [100, 101, 102, 0x12345678, 0]);
  assert.deepEqual(strings, [[7, 8, 9]]);
  assert.ok(ticks > 0, 'the event loop kept running');
  await worker.terminate();
});

test('busAccess: port reads of nothing are all ones, writes reach the device', () => {
  const bus = new AddressSpace();
  const seen: number[] = [];
  bus.addRegion({ name: 'dev', base: 0x60, size: 8, handler: { read: (o) => 0x40 + o, write: (_o, _s, v) => void seen.push(v) } });
  const data = new Uint8Array(4);
  busAccess(bus, { kind: 'pio', write: false, addr: 0x64, size: 1, count: 1, data: data.subarray(0, 1) });
  assert.equal(data[0], 0x44);
  busAccess(bus, { kind: 'pio', write: false, addr: 0x70, size: 2, count: 1, data: data.subarray(0, 2) });
  assert.deepEqual([...data.subarray(0, 2)], [0xff, 0xff]);
  data.set([5, 6]);
  busAccess(bus, { kind: 'pio', write: true, addr: 0x60, size: 1, count: 2, data: data.subarray(0, 2) });
  assert.deepEqual(seen, [5, 6]);
});
