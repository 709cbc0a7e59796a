/**
 * What the monitors (QMP, HMP) may do to a machine, and all they know of it. Each board
 * implements this in a few lines; the monitors never see a board, a CPU model or a device.
 */
import type { Snapshots } from '../migration/savevm.js';
import type { Migration } from '../migration/migration.js';
import type { Picture } from '../ui/screendump.js';
import type { InputEvent } from '../ui/input-keys.js';

/**
 * QEMU's run states, as query-status reports them ('debug': stopped by the gdbstub at a breakpoint, watchpoint or step;
 * 'inmigrate': waiting for an incoming migration; 'postmigrate': the guest went to another process).
 */
export type RunStatus = 'prelaunch' | 'running' | 'paused' | 'debug' | 'shutdown' | 'internal-error' | 'inmigrate' | 'postmigrate';

/** One vCPU, as query-cpus-fast reports it. */
export interface CpuInfo {
  index: number;
  /** The host thread running it (the process id when vCPUs share the main thread). */
  threadId: number;
  /** The CPU's path in QEMU's object tree (`/machine/soc0/harts[0]`, `/machine/unattached/device[0]`). */
  qomPath: string;
  /** QOM properties: socket/core/thread ids (x86) or node and hart ids. */
  props: Record<string, number>;
}

/** One address-space region, for `info mtree`. */
export interface RegionInfo {
  name: string;
  base: number;
  size: number;
}

/** The events a machine reports (QEMU's QAPI events), with their `data`. */
export type MachineEventName = 'STOP' | 'RESUME' | 'RESET' | 'SHUTDOWN' | 'POWERDOWN' | 'MIGRATION' | 'MIGRATION_PASS';

export interface MachineControl {
  /** QEMU's target name: riscv64, x86_64. */
  readonly target: string;
  /** The QOM type of the CPUs (`rv64-riscv-cpu`, `host-x86_64-cpu`). */
  readonly cpuType: string;
  /** The current run state. */
  status(): RunStatus;
  /** Stops the vCPUs; resolves once no instruction retires any more. */
  pause(): Promise<void>;
  /** Lets the vCPUs run again (also leaves prelaunch). */
  resume(): void;
  /** Resets the machine as the reset button would (QMP system_reset). */
  reset(): void;
  /** Presses the power button; false when the board has none (the guest is not told). */
  powerdown(): boolean;
  /** Ends the emulator (QMP quit). */
  quit(): void;
  cpus(): CpuInfo[];
  /** The registers of vCPU `index` as HMP's `info registers` prints them; undefined when unavailable. */
  registers(index: number): string | undefined;
  /** Reads guest physical memory; null where there is no RAM or ROM. */
  readPhys(addr: number, len: number): Uint8Array | null;
  /** The address spaces and their regions, for `info mtree`. */
  regions(): Array<{ space: string; regions: readonly RegionInfo[] }>;
  /** savevm, loadvm, delvm and info snapshots; absent where the board cannot take snapshots. */
  readonly snapshots?: Snapshots;
  /** Live migration (migrate, -incoming); absent where the board cannot migrate. */
  readonly migration?: Migration;
  /** JIT statistics for `info jit`; absent or undefined when there is no JIT. */
  jitStats?(): string | undefined;
  /** What the display shows (screendump); null or absent without one. */
  screen?(): Picture | null;
  /** Passes evdev events to the input devices that report them (input-send-event); false if the board has none. */
  sendInput?(events: readonly InputEvent[]): boolean;
}

/**
 * The run state a board's vCPU loop obeys: pause requests, resume, and the wake-ups in
 * between. A board runs its loop through {@link RunState.run}, and its loop leaves when
 * {@link RunState.pausing} turns true; the monitor side calls {@link RunState.pause} and
 * {@link RunState.resume}. Events (STOP, RESUME, and those the board {@link RunState.emit}s)
 * go to {@link RunState.onEvent}.
 */
export class RunState {
  private state: RunStatus;
  private wantPause: boolean;
  /** The state a requested pause ends in: paused, or debug for the gdbstub. */
  private stopAs: 'paused' | 'debug' = 'paused';
  private paused: Array<() => void> = [];
  private resumed: Array<() => void> = [];
  /** Reports a machine event to the monitors (QEMU's QAPI events: RESET, SHUTDOWN, POWERDOWN, ...). */
  emit(name: MachineEventName, data: Record<string, unknown> = {}): void {
    this.onEvent?.(name, data);
  }

  /** Set by the monitors: a machine event happened. */
  onEvent: ((name: MachineEventName, data: Record<string, unknown>) => void) | null = null;
  /** Set by the board: called when a pause is requested, to wake an idle vCPU loop. */
  onPauseRequest: (() => void) | null = null;
  /** Set by the gdbstub: the vCPUs stopped running, whatever the cause. */
  onStopped: (() => void) | null = null;
  /** Set by the gdbstub: the vCPUs are about to run again, whoever resumed them. */
  onResume: (() => void) | null = null;

  constructor(startPaused: boolean) {
    this.state = startPaused ? 'prelaunch' : 'running';
    this.wantPause = startPaused;
  }

  get status(): RunStatus {
    return this.state;
  }

  /** True when the vCPU loop should stop running guest code. */
  get pausing(): boolean {
    return this.wantPause;
  }

  /**
   * Requests a pause; resolves once the board reports it stopped ({@link stopped}).
   * `as` is the state it ends in: debug when the gdbstub stops the machine at a breakpoint.
   */
  pause(as: 'paused' | 'debug' = 'paused'): Promise<void> {
    if (this.state !== 'running') {
      if (this.state === 'prelaunch') this.state = as;
      return Promise.resolve();
    }
    const wasPausing = this.wantPause;
    this.wantPause = true;
    if (as === 'debug') this.stopAs = as;
    const done = new Promise<void>((resolve) => this.paused.push(resolve));
    if (!wasPausing) this.onPauseRequest?.();
    return done;
  }

  /** Called by the board once its vCPUs stopped for a pause. */
  stopped(): void {
    if (this.state === 'running') {
      this.state = this.stopAs;
      this.stopAs = 'paused';
      this.emit('STOP');
      this.onStopped?.();
    }
    for (const r of this.paused.splice(0)) r();
  }

  /** The debugger ran a vCPU by itself while the machine was stopped (a single-step): the state becomes debug. */
  debugged(): void {
    if (this.state === 'paused' || this.state === 'prelaunch') this.state = 'debug';
  }

  /** A stopped machine waits for an incoming migration, or its guest went to another process, or (paused) came from one. */
  setMigrationState(s: 'inmigrate' | 'postmigrate' | 'paused'): void {
    if (this.state === 'running' || this.state === 'shutdown') return;
    this.state = s;
    this.wantPause = true;
  }

  resume(): void {
    if (this.state !== 'paused' && this.state !== 'prelaunch' && this.state !== 'debug' && this.state !== 'inmigrate' &&
      this.state !== 'postmigrate') return;
    this.onResume?.();
    this.wantPause = false;
    this.state = 'running';
    this.emit('RESUME');
    for (const r of this.resumed.splice(0)) r();
  }

  /** The machine ended (the process is about to exit). */
  shutdown(): void {
    this.state = 'shutdown';
    this.wantPause = true;
    for (const r of this.paused.splice(0)) r();
  }

  /** Ends a wait in {@link run} early: a reset or quit was requested while paused. */
  wake(): void {
    const w = this.wakeWait;
    this.wakeWait = null;
    w?.();
  }

  private wakeWait: (() => void) | null = null;

  /**
   * Runs `slice` (a board's vCPU loop) until it returns something other than `pauseMark`,
   * sitting out pauses in between. `pending` (the board's stop check) is asked before
   * each run, so that a reset or quit requested while paused (see {@link wake}) ends the
   * wait at once.
   */
  async run<R>(slice: () => Promise<R>, pauseMark: R, pending: () => R | null): Promise<R> {
    for (;;) {
      const p = pending();
      if (p !== null && p !== pauseMark) return p;
      if (this.wantPause) {
        this.stopped();
        let done = (): void => {};
        await new Promise<void>((resolve) => {
          done = resolve;
          this.wakeWait = resolve;
          this.resumed.push(resolve);
        });
        this.wakeWait = null;
        // Woken without a resume (see wake): forget this wait.
        this.resumed = this.resumed.filter((r) => r !== done);
        continue;
      }
      const r = await slice();
      if (r !== pauseMark) return r;
    }
  }
}
