/**
 * Waits for eventfds on a thread of its own and runs each one's handler on the main
 * thread: how the device thread hears of KVM ioeventfds (a guest's virtqueue kick that
 * the kernel caught without a vCPU exit). Node's event loop cannot watch an eventfd, so
 * a worker blocks in poll(2) and posts the ready fds; a private eventfd wakes it when
 * the set changes or the poller closes.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { closeFd, eventfd, eventfdWrite, EFD_CLOEXEC, EFD_NONBLOCK } from './kvm.js';

/** What the parent posts to the thread: the fds to watch, or null to end. */
export type PollerCommand = number[] | null;

export class EventfdPoller {
  private readonly handlers = new Map<number, () => void>();
  private readonly wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  private readonly worker: Worker;
  private closed = false;

  constructor() {
    this.worker = new Worker(new URL('./eventfd-poller-thread.js', import.meta.url), { workerData: { wake: this.wake } });
    this.worker.on('message', (ready: number[]) => {
      for (const fd of ready) this.handlers.get(fd)?.();
    });
    // The VM keeps the process alive while it runs; an idle poller must not.
    this.worker.unref();
  }

  /**
   * Runs `handler` on this thread whenever `fd` (a non-blocking eventfd, whose counter the
   * poller resets) is signalled. Keep `fd` open until {@link close} resolved: poll(2) on a
   * closed fd would return at once, forever.
   */
  add(fd: number, handler: () => void): void {
    this.handlers.set(fd, handler);
    if (!this.closed) this.post([...this.handlers.keys()]);
  }

  /** Ends the thread; resolves once it exited, so every fd it watched may be closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = once(this.worker, 'exit');
    this.worker.ref(); // or the event loop may end before the exit arrives
    this.post(null);
    await exited;
    closeFd(this.wake);
  }

  private post(command: PollerCommand): void {
    this.worker.postMessage(command);
    eventfdWrite(this.wake);
  }
}
