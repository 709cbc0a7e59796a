/**
 * The virt board as the monitors see it ({@link MachineControl}): run state, reset and
 * quit requests, the harts' registers and guest memory. Pausing leaves the round-robin
 * loop between slices, or ends the hart threads of thread=multi, which hand the harts'
 * state back to the main thread (no instruction retires while paused; guest time, which
 * follows the host clock, goes on, and timers that expired meanwhile fire on resume).
 *
 * system_powerdown: QEMU's virt board has no power button (no ACPI, no GPIO key), so the
 * request only produces the POWERDOWN event and the guest is not told; Vireo does the same.
 */
import type { MachineControl, CpuInfo, RegionInfo, RunStatus } from '../../monitor/machine-control.js';
import { RunState } from '../../monitor/machine-control.js';
import type { StopReason } from '../../accel/tcg/rr.js';
import type { VirtMachine } from './virt.js';
import { Snapshots, type SnapshotDisk } from '../../migration/savevm.js';
import { saveVirtState, loadVirtState, checkSnapshottable } from './virt-snapshot.js';
import { Migration, type MigrationMachine } from '../../migration/migration.js';
import type { Picture } from '../../ui/screendump.js';
import type { InputEvent } from '../../ui/input-keys.js';
import { VirtioInput } from '../virtio/virtio-input.js';

const ABI = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];
const PRIV = ['U', 'S', '?', 'M'];

/** Why the machine was asked to stop, for the SHUTDOWN and RESET events. */
type Cause = 'guest' | 'host-qmp-quit' | 'host-ui' | 'host-qmp-system-reset';

export class VirtControl implements MachineControl {
  readonly target = 'riscv64';
  readonly cpuType = 'rv64-riscv-cpu';
  readonly runState: RunState;
  private machine: VirtMachine | null = null;
  private resetWanted = false;
  private quitCause: Cause = 'host-ui';
  /** The loop's answer meaning "paused": identity matters, not the contents. */
  private readonly pauseMark: StopReason = { kind: 'quit' };
  /** Snapshots under way: the harts stay stopped until they end (see whileStopped). */
  private holds = 0;
  /** Resume when the last hold ends. */
  private resumeHeld = false;

  readonly snapshots: Snapshots;
  readonly migration: Migration;
  private migrating: MigrationMachine | null = null;

  /**
   * `quit` stops the loop (as C-a x does); `snapshotFile` is -snapshot-file; with `incoming`
   * (-incoming) the machine waits for a migration source before it runs; `drives` lists the
   * images (for savevm), flushes them (migration source) and opens them again (destination).
   */
  constructor(startPaused: boolean, private readonly quitLoop: () => void, snapshotFile: string | undefined, incoming: boolean,
    private readonly drives: { list(): readonly SnapshotDisk[]; flush(): Promise<void>; reopen(): Promise<void> }) {
    this.runState = new RunState(startPaused || incoming);
    if (incoming) this.runState.setMigrationState('inmigrate');
    this.migration = new Migration(this.runState, () => {
      if (this.migrating === null) throw new Error('no machine attached');
      return this.migrating;
    }, !startPaused);
    this.snapshots = new Snapshots(snapshotFile, () => {
      const m = this.machine;
      if (m === null) throw new Error('no machine attached');
      return { drain: () => m.drain(), save: () => saveVirtState(m), load: (name, data) => loadVirtState(m, name, data), clockNs: () => m.clock.now() };
    }, (fn) => this.whileStopped(fn), () => drives.list());
    // An idle loop sleeps until a timer or interrupt: wake it so that it sees the pause.
    this.runState.onPauseRequest = () => this.machine?.cpus.harts[0]?.onWake?.();
  }

  /** The machine now running (a new one after each reset). */
  attach(machine: VirtMachine): void {
    this.machine = machine;
    this.resetWanted = false;
    const { cpus } = machine;
    this.migrating = {
      ram: cpus.ram,
      dirty: cpus.dirty,
      flushWriteTlbs: () => cpus.flushWriteTlbs(),
      check: () => checkSnapshottable(machine),
      drain: () => machine.drain(),
      flushDisks: () => this.drives.flush(),
      reopenDisks: () => this.drives.reopen(),
      config: () => machine.migrationConfig(),
      saveState: () => saveVirtState(machine, false),
      loadState: (data) => loadVirtState(machine, 'migration', data),
    };
  }

  /**
   * Runs `loop` (the round-robin or the multi-threaded loop, whose stop check ends with {@link check}) with
   * pauses in between; `check` is the same stop check, asked while paused.
   */
  run(loop: () => Promise<StopReason>, check: () => StopReason | null): Promise<StopReason> {
    return this.runState.run(loop, this.pauseMark, check);
  }

  /** The last part of the loop's stop check: a pause or a reset requested by a monitor. */
  check(): StopReason | null {
    if (this.resetWanted) return { kind: 'reset' };
    return this.runState.pausing ? this.pauseMark : null;
  }

  /** The loop ended for `reason`: report RESET or SHUTDOWN as QEMU does. */
  ended(reason: StopReason, noReboot: boolean): void {
    const host = this.resetWanted;
    if (reason.kind === 'reset' && !noReboot) {
      this.runState.emit('RESET', { guest: !host, reason: host ? 'host-qmp-system-reset' : 'guest-reset' });
      return;
    }
    const why = reason.kind === 'quit' ? this.quitCause : reason.kind === 'reset' ? (host ? 'host-qmp-system-reset' : 'guest-reset') : 'guest-shutdown';
    this.runState.emit('SHUTDOWN', { guest: why.startsWith('guest'), reason: why });
    this.runState.shutdown();
  }

  screen(): Picture | null {
    const m = this.machine;
    const fb = m?.framebuffer;
    if (!m || !fb) return null;
    return { width: fb.width, height: fb.height, rgb: fb.rgb(m.framebufferPixels()!) };
  }

  sendInput(events: readonly InputEvent[]): boolean {
    const inputs = (this.machine?.virtio ?? []).map((v) => v.transport.device).filter((d) => d instanceof VirtioInput);
    for (const d of inputs) d.send(events);
    return inputs.length > 0;
  }

  status(): RunStatus {
    return this.runState.status;
  }

  pause(): Promise<void> {
    this.resumeHeld = false;
    return this.runState.pause();
  }

  resume(): void {
    if (this.holds > 0) this.resumeHeld = true;
    else this.runState.resume();
  }

  /**
   * Runs `fn` with the harts stopped until it settles (STOP and RESUME around it if they
   * were running, as QEMU's savevm). `fn` may wait (for the disks to drain): a resume or
   * pause asked for meanwhile (cont, stop, the gdbstub) takes effect when it is done, as a
   * QEMU monitor command would wait for savevm.
   */
  private async whileStopped(fn: () => void | Promise<void>): Promise<void> {
    if (this.runState.status === 'running') {
      await this.pause();
      this.resumeHeld = true;
    }
    this.holds++;
    try {
      await fn();
    } finally {
      if (--this.holds === 0 && this.resumeHeld) {
        this.resumeHeld = false;
        this.runState.resume();
      }
    }
  }

  reset(): void {
    this.resetWanted = true;
    for (const h of this.machine?.cpus.harts ?? []) h.onWake?.();
    this.runState.wake();
  }

  powerdown(): boolean {
    this.runState.emit('POWERDOWN');
    return false;
  }

  quit(): void {
    this.quitCause = 'host-qmp-quit';
    this.quitLoop();
    this.runState.wake();
  }

  cpus(): CpuInfo[] {
    return (this.machine?.cpus.harts ?? []).map((h, i) => ({
      index: i,
      threadId: process.pid, // the hart threads' kernel ids (thread=multi) are not known here
      qomPath: `/machine/soc0/harts[${i}]`,
      props: { 'core-id': h.id, 'socket-id': 0, 'thread-id': 0 },
    }));
  }

  jitStats(): string | undefined {
    return this.machine?.cpus.jit?.report();
  }

  registers(index: number): string | undefined {
    const h = this.machine?.cpus.harts[index];
    if (h === undefined) return undefined;
    const hex = (v: bigint) => v.toString(16).padStart(16, '0');
    const lines = [` pc       ${hex(BigInt.asUintN(64, h.pc))}`, ` mhartid  ${hex(BigInt(h.id))}`, ` priv     ${PRIV[h.priv] ?? h.priv}`];
    for (let i = 0; i < 32; i += 4) {
      lines.push([0, 1, 2, 3].map((j) => ` ${`x${i + j}/${ABI[i + j]}`.padEnd(8)} ${hex(h.x[i + j]!)}`).join(''));
    }
    return `${lines.join('\n')}\n`;
  }

  readPhys(addr: number, len: number): Uint8Array | null {
    const m = this.machine;
    if (m === null) return null;
    const { ram, rom, map } = m.cpus;
    for (const [mem, base] of [[ram, map.ramBase], [rom, map.romBase]] as const) {
      if (addr >= base && addr + len <= base + mem.length) return mem.slice(addr - base, addr - base + len);
    }
    return null;
  }

  regions(): Array<{ space: string; regions: readonly RegionInfo[] }> {
    const m = this.machine;
    if (m === null) return [];
    const map = m.cpus.map;
    return [{
      space: 'memory',
      regions: [
        { name: 'riscv_virt_board.mrom', base: map.romBase, size: map.romSize },
        { name: 'riscv_virt_board.ram', base: map.ramBase, size: map.ramSize },
        ...m.bus.list().map((r) => ({ name: r.name, base: r.base, size: r.size })),
      ],
    }];
  }
}
