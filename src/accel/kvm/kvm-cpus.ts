/**
 * KVM vCPUs running truly in parallel (`-accel kvm`): one worker thread per vCPU,
 * each blocking in KVM_RUN, with every I/O exit served on the main thread, which owns
 * the devices (see src/system/exit-channel.ts). Stopping a vCPU sets its stop flag
 * and kvm_run.immediate_exit, then sends the thread SIGUSR2 so that a KVM_RUN in
 * progress returns with EINTR (Firecracker kicks its vCPUs the same way).
 */
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import type { KvmVcpu } from './kvm.js';
import { ExitChannelServer, EXIT_CHANNEL_BYTES, type IoRequest } from '../../system/exit-channel.js';
import type { VcpuThreadData, VcpuThreadMessage } from './vcpu-thread.js';

const SIGUSR2 = 12;
type StopMessage = Extract<VcpuThreadMessage, { kind: 'stopped' }>;

let pthreadKill: ((thread: bigint, sig: number) => number) | null = null;
function kick(tid: bigint): void {
  pthreadKill ??= koffi.load('libc.so.6').func('int pthread_kill(unsigned long thread, int sig)') as (t: bigint, s: number) => number;
  pthreadKill(tid, SIGUSR2);
}
// The signal only has to interrupt KVM_RUN; Node must not die of it.
const ignoreSignal = (): void => {};

/** One vCPU's thread, as the main thread sees it. */
class VcpuThread {
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker;
  private tid: bigint | null = null;
  /** Resolves with the reason the thread stopped. */
  readonly stopped: Promise<StopMessage>;

  constructor(readonly vcpu: KvmVcpu, mmapSize: number, handler: (req: IoRequest) => boolean) {
    const channel = new SharedArrayBuffer(EXIT_CHANNEL_BYTES);
    const server = new ExitChannelServer(channel, handler);
    const data: VcpuThreadData = { vcpuFd: vcpu.fd, mmapSize, channel, stop: this.stopFlag.buffer as SharedArrayBuffer };
    this.worker = new Worker(new URL('./vcpu-thread.js', import.meta.url), { workerData: data });
    this.stopped = new Promise<StopMessage>((resolve) => {
      this.worker.on('message', (msg: VcpuThreadMessage) => {
        if (msg.kind === 'started') {
          this.tid = msg.tid;
          if (Atomics.load(this.stopFlag, 0) !== 0) kick(msg.tid);
        } else {
          void server.closed.then(() => resolve(msg));
        }
      });
      this.worker.on('error', (err) => resolve({ kind: 'stopped', reason: 'error', detail: err.message }));
    });
  }

  /** Asks the thread to leave KVM_RUN and end. */
  requestStop(): void {
    Atomics.store(this.stopFlag, 0, 1);
    this.vcpu.setImmediateExit(true);
    if (this.tid !== null) kick(this.tid);
  }

  async join(): Promise<void> {
    await this.stopped;
    await this.worker.terminate();
  }
}

/** All vCPU threads of a VM. */
export class KvmVcpuThreads {
  private readonly threads: VcpuThread[];
  /** Resolves with the first thread that stopped on its own (triple fault, errors). */
  readonly firstStop: Promise<StopMessage & { vcpu: number }>;

  constructor(vcpus: KvmVcpu[], mmapSize: number, handler: (req: IoRequest) => boolean) {
    process.on('SIGUSR2', ignoreSignal);
    this.threads = vcpus.map((v) => new VcpuThread(v, mmapSize, handler));
    this.firstStop = Promise.race(this.threads.map((t, i) => t.stopped.then((m) => ({ ...m, vcpu: i }))));
  }

  /** Stops every vCPU thread and waits until they have all ended. */
  async stop(): Promise<void> {
    for (const t of this.threads) t.requestStop();
    await Promise.all(this.threads.map((t) => t.join()));
    process.off('SIGUSR2', ignoreSignal);
  }
}
