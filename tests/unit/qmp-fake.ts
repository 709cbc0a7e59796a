/** Test helper for the monitor tests: a fake machine and the context the monitors see. */
import type { MonitorContext } from '../../src/monitor/qmp.js';
import { Hmp } from '../../src/monitor/hmp.js';
import { RunState, type MachineControl, type MachineEventName } from '../../src/monitor/machine-control.js';
import { Jobs } from '../../src/monitor/jobs.js';

/** A machine that only keeps its run state and counts requests. */
export class FakeMachine implements MachineControl {
  readonly target = 'riscv64';
  readonly cpuType = 'rv64-riscv-cpu';
  readonly runState: RunState;
  resets = 0;
  quits = 0;
  ram = new Uint8Array(64).map((_, i) => i);
  constructor(startPaused = false) {
    this.runState = new RunState(startPaused);
  }
  status() { return this.runState.status; }
  pause() {
    const p = this.runState.pause();
    this.runState.stopped(); // the fake's vCPUs stop at once
    return p;
  }
  resume() { this.runState.resume(); }
  reset() { this.resets++; this.runState.emit('RESET', { guest: false, reason: 'host-qmp-system-reset' }); }
  powerdown() { this.runState.emit('POWERDOWN'); return false; }
  quit() { this.quits++; this.runState.emit('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' }); }
  cpus() { return [0, 1].map((i) => ({ index: i, threadId: 4242, qomPath: `/machine/soc0/harts[${i}]`, props: { 'core-id': i } })); }
  registers(i: number) { return ` pc       00000000800000${i}0\n`; }
  readPhys(addr: number, len: number) { return addr >= 0x1000 && addr + len <= 0x1040 ? this.ram.slice(addr - 0x1000, addr - 0x1000 + len) : null; }
  regions() { return [{ space: 'memory', regions: [{ name: 'ram', base: 0x1000, size: 0x40 }] }]; }
}

/** The context the monitors see; job events go where the fake machine's events go. */
export function context(machine: MachineControl): MonitorContext {
  const ctx: MonitorContext = {
    machine,
    name: 'vm1',
    version: { major: 7, minor: 2, micro: 0, package: 'vireo-test' },
    blocks: () => [{ device: 'hd0', file: '/tmp/disk.img', format: 'raw', readOnly: true }],
    chardevs: () => [{ label: 'serial0', filename: 'stdio', frontendOpen: true }],
    hmp: (line) => new Hmp(ctx).execute(line),
    jobs: new Jobs((name, data) => (machine as Partial<FakeMachine>).runState?.onEvent?.(name as MachineEventName, data)),
  };
  return ctx;
}

