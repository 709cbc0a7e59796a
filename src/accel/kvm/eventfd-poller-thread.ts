/**
 * The poller thread of {@link EventfdPoller}: poll(2) on the wake eventfd and the watched
 * ones, reset the counters of those that fired and post their numbers to the parent.
 * Commands arrive while the thread is blocked, so they are drained synchronously.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { eventfdRead } from './kvm.js';
import { EINTR, POLLIN, libc } from './kvm-sys.js';
import type { PollerCommand } from './eventfd-poller.js';

const POLLFD_SIZE = 8;
const wake = (workerData as { wake: number }).wake;
const port = parentPort!;
let fds: number[] = [];

for (;;) {
  let ended = false;
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const command = m.message as PollerCommand;
    if (command === null) ended = true;
    else fds = command;
  }
  if (ended) break;
  const all = [wake, ...fds];
  const buf = new Uint8Array(all.length * POLLFD_SIZE);
  const view = new DataView(buf.buffer);
  all.forEach((fd, i) => {
    view.setInt32(i * POLLFD_SIZE, fd, true);
    view.setInt16(i * POLLFD_SIZE + 4, POLLIN, true);
  });
  if (libc().poll(buf, all.length, -1) < 0) {
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    throw new Error(`poll: ${libc().strerror(errno)}`);
  }
  const ready: number[] = [];
  all.forEach((fd, i) => {
    if (!(view.getInt16(i * POLLFD_SIZE + 6, true) & POLLIN)) return;
    eventfdRead(fd);
    if (i > 0) ready.push(fd);
  });
  if (ready.length > 0) port.postMessage(ready);
}
