/**
 * What the gdbstub may do to a machine, and all it knows of it (as MachineControl is for
 * the monitors): vCPU registers by gdb's register numbers, guest virtual memory, the
 * breakpoints and watchpoints, and all-stop execution control. A board implements it;
 * the stub never sees a board, a CPU model or a device.
 */

/** A target description: the XML gdb reads, and the layout of the registers it names. */
export interface TargetDescription {
  /** `target.xml` for qXfer:features:read. */
  readonly xml: string;
  /** The program counter's register number. */
  readonly pcRegister: number;
  /** The registers of the `g` packet, in order (gdb's register numbers). */
  readonly gRegisters: readonly number[];
  /** Size in bytes of register `regnum`, or 0 when there is no such register. */
  registerSize(regnum: number): number;
}

/** A watchpoint: gdb's type (2 write, 3 read, 4 access) on `len` bytes at virtual address `addr`. */
export interface Watchpoint {
  type: 2 | 3 | 4;
  addr: bigint;
  len: number;
}

/** Why the vCPUs stopped. `cpu` is the vCPU concerned (null: none in particular). */
export type StopEvent =
  /** At a breakpoint, before the instruction at `pc`. */
  | { kind: 'breakpoint'; cpu: number; pc: bigint }
  /** Before an access at `addr` that a watchpoint of `type` covers, at the instruction at `pc`. */
  | { kind: 'watchpoint'; cpu: number; pc: bigint; type: 2 | 3 | 4; addr: bigint }
  /** A single-step ended. */
  | { kind: 'step'; cpu: number }
  /** Stopped from outside: gdb's Ctrl-C, a monitor's `stop`. */
  | { kind: 'interrupt'; cpu: number | null };

export interface GdbTarget {
  readonly tdesc: TargetDescription;
  /** The number of vCPUs (gdb threads 1..N). */
  cpuCount(): number;
  /** A few words on vCPU `cpu` for `info threads` (QEMU: `CPU#0 [running]`). */
  cpuDescription(cpu: number): string;
  /** Register `regnum` of vCPU `cpu`; null when it cannot be read. */
  readRegister(cpu: number, regnum: number): bigint | null;
  /** Writes register `regnum`; false when it cannot be written. */
  writeRegister(cpu: number, regnum: number, value: bigint): boolean;
  /**
   * Reads up to `len` bytes of virtual memory as vCPU `cpu` sees it, without side effects;
   * fewer (possibly none) when the range reaches an unmapped or non-memory address.
   */
  readMemory(cpu: number, addr: bigint, len: number): Uint8Array;
  /** Writes virtual memory as vCPU `cpu` sees it; false (nothing written) unless all of it is mapped memory. */
  writeMemory(cpu: number, addr: bigint, data: Uint8Array): boolean;
  /** Replaces the breakpoints (virtual pcs, on every vCPU); false when there are too many. */
  setBreakpoints(pcs: readonly bigint[]): boolean;
  /** Replaces the watchpoints (on every vCPU); false when there are too many. */
  setWatchpoints(wps: readonly Watchpoint[]): boolean;
  /** True while the vCPUs run. */
  running(): boolean;
  /** Stops the vCPUs if they run; resolves once they are stopped. */
  stop(): Promise<void>;
  /**
   * Lets every vCPU run (all-stop mode); a vCPU stopped at a breakpoint or watchpoint first
   * executes the instruction there. {@link onStop} reports the next stop.
   */
  resume(): void;
  /** Executes one instruction on vCPU `cpu` (the others stay stopped) and says how it ended. */
  step(cpu: number): Promise<StopEvent>;
  /** Ends the emulator (gdb's `kill`). */
  kill(): void;
  /** Set by the stub: the vCPUs stopped, for a breakpoint, a watchpoint or from outside. */
  onStop: ((ev: StopEvent) => void) | null;
}
