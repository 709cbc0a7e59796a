/**
 * A KVM vCPU thread (a worker_threads Worker): loops in KVM_RUN and hands every port
 * I/O and MMIO exit to the device thread through its exit channel. Anything else that
 * stops the vCPU (triple fault, a system event, an entry failure) is reported to the
 * parent and ends the thread. The parent stops a running vCPU by setting the stop flag
 * and immediate_exit, then kicking the thread out of KVM_RUN with a signal.
 */
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { KvmVcpu } from './kvm.js';
import { ExitChannelClient } from '../../system/exit-channel.js';

/** What the parent passes in workerData. */
export interface VcpuThreadData {
  vcpuFd: number;
  mmapSize: number;
  channel: SharedArrayBuffer;
  /** Int32Array slot 0: non-zero asks the thread to stop. */
  stop: SharedArrayBuffer;
}

/** Messages to the parent. */
export type VcpuThreadMessage =
  | { kind: 'started'; tid: bigint }
  | { kind: 'stopped'; reason: 'requested' | 'shutdown' | 'system-event' | 'fail-entry' | 'internal-error' | 'unknown' | 'error'; detail: string };

const data = workerData as VcpuThreadData;
const vcpu = KvmVcpu.attach(data.vcpuFd, data.mmapSize);
const channel = new ExitChannelClient(data.channel);
const stop = new Int32Array(data.stop);
const pthreadSelf = koffi.load('libc.so.6').func('unsigned long pthread_self()') as () => bigint | number;

function post(msg: VcpuThreadMessage): void {
  parentPort!.postMessage(msg);
}

post({ kind: 'started', tid: BigInt(pthreadSelf()) });

function loop(): VcpuThreadMessage {
  for (;;) {
    if (Atomics.load(stop, 0) !== 0) return { kind: 'stopped', reason: 'requested', detail: '' };
    const exit = vcpu.run();
    switch (exit.kind) {
      case 'io': {
        const bytes = exit.size * exit.count;
        if (exit.write) channel.data.set(exit.data.subarray(0, bytes));
        channel.request('pio', exit.write, exit.port, exit.size, exit.count);
        if (!exit.write) exit.data.set(channel.data.subarray(0, bytes));
        break;
      }
      case 'mmio':
        if (exit.write) channel.data.set(exit.data.subarray(0, exit.len));
        channel.request('mmio', exit.write, exit.addr, exit.len);
        if (!exit.write) exit.data.set(channel.data.subarray(0, exit.len));
        break;
      case 'intr':
      case 'hlt':
        break;
      case 'shutdown':
        return { kind: 'stopped', reason: 'shutdown', detail: 'triple fault' };
      case 'system-event':
        return { kind: 'stopped', reason: 'system-event', detail: `type ${exit.type}` };
      case 'fail-entry':
        return { kind: 'stopped', reason: 'fail-entry', detail: `hardware entry failure reason 0x${exit.reason.toString(16)}` };
      case 'internal-error':
        return { kind: 'stopped', reason: 'internal-error', detail: `KVM internal error, suberror ${exit.suberror}` };
      default:
        return { kind: 'stopped', reason: 'unknown', detail: `exit reason ${exit.reason}` };
    }
  }
}

let result: VcpuThreadMessage;
try {
  result = loop();
} catch (err) {
  result = { kind: 'stopped', reason: 'error', detail: err instanceof Error ? err.message : String(err) };
}
channel.close();
post(result);
