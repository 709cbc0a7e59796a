/**
 * The virt board as the gdbstub sees it ({@link GdbTarget}), under `-accel tcg,thread=single`:
 * the harts' registers by gdb's riscv64 numbers, guest virtual memory through each hart's
 * MMU (RAM and ROM only: device registers are never touched, so reads have no side
 * effects), and all-stop execution control on the run state the monitors share.
 *
 * A hart that reaches a breakpoint or watchpoint leaves its slice at once (before the
 * instruction); the round-robin loop then sees the pause this requests and stops every
 * hart, and the run state becomes `debug`, as in QEMU. Timers keep following the host
 * clock meanwhile, as with a monitor's `stop`. A single-step runs one instruction on one
 * hart outside the loop, with interrupts masked and no timer fired (QEMU's default
 * SSTEP_NOIRQ | SSTEP_NOTIMER).
 */
import type { GdbTarget, StopEvent, Watchpoint } from '../../gdbstub/target.js';
import { RISCV64_TDESC, riscvRegister } from '../../gdbstub/tdesc-riscv.js';
import { RunExit, type Hart } from '../../target/riscv/cpu.js';
import type { VirtControl } from './virt-control.js';
import type { VirtMachine } from './virt.js';

const PAGE = 4096;

export class VirtGdb implements GdbTarget {
  readonly tdesc = RISCV64_TDESC;
  onStop: ((ev: StopEvent) => void) | null = null;
  private machine: VirtMachine | null = null;
  private breakpoints: readonly bigint[] = [];
  private watchpoints: Array<{ first: bigint; last: bigint; type: 2 | 3 | 4 }> = [];
  /** The breakpoint or watchpoint a hart stopped at, until the loop has stopped for it. */
  private hit: StopEvent | null = null;
  /** The last stop, when at a breakpoint or watchpoint: that hart first steps over it on resume. */
  private atHit: StopEvent | null = null;

  constructor(private readonly control: VirtControl) {
    control.runState.onStopped = () => this.stopped();
    control.runState.onResume = () => this.stepOver();
  }

  /** The machine now running (a new one after each reset); it keeps the breakpoints and watchpoints. */
  attach(machine: VirtMachine): void {
    this.machine = machine;
    this.hit = null;
    this.atHit = null;
    machine.cpus.harts.forEach((h, i) => {
      h.onDebug = () => this.debugExit(i);
      h.setDebug(this.breakpoints, this.watchpoints);
    });
  }

  private get harts(): readonly Hart[] {
    return this.machine?.cpus.harts ?? [];
  }

  cpuCount(): number {
    return this.harts.length;
  }

  cpuDescription(cpu: number): string {
    return `CPU#${cpu} [${this.harts[cpu]?.halted ? 'halted' : 'running'}]`;
  }

  readRegister(cpu: number, regnum: number): bigint | null {
    const h = this.harts[cpu];
    const r = riscvRegister(regnum);
    if (h === undefined || r === null) return null;
    switch (r.kind) {
      case 'x': return h.x[r.index]!;
      case 'pc': return BigInt.asUintN(64, h.pc);
      case 'f': return h.f[r.index]!;
      case 'csr': return h.csr(r.csr);
      case 'priv': return BigInt(h.priv);
    }
  }

  writeRegister(cpu: number, regnum: number, value: bigint): boolean {
    const h = this.harts[cpu];
    const r = riscvRegister(regnum);
    if (h === undefined || r === null) return false;
    switch (r.kind) {
      case 'x':
        if (r.index !== 0) h.x[r.index] = value; // x0 stays zero
        return true;
      case 'pc':
        h.pc = value;
        return true;
      case 'f':
        h.f[r.index] = value;
        return true;
      case 'csr': return h.setCsr(r.csr, value);
      case 'priv': return value < 4n && h.setPriv(Number(value));
    }
  }

  /** The RAM or ROM bytes at physical `pa`, at most `len` of them; null when `pa` is not memory. */
  private physView(pa: bigint, len: number): Uint8Array | null {
    const m = this.machine;
    if (m === null) return null;
    const { ram, rom, map } = m.cpus;
    for (const [mem, base] of [[ram, map.ramBase], [rom, map.romBase]] as const) {
      if (pa >= BigInt(base) && pa < BigInt(base + mem.length)) {
        const off = Number(pa - BigInt(base));
        return mem.subarray(off, Math.min(mem.length, off + len));
      }
    }
    return null;
  }

  /** The memory behind `len` bytes at virtual `addr` for `cpu`, in pieces, as far as it is mapped memory. */
  private views(cpu: number, addr: bigint, len: number): Uint8Array[] {
    const h = this.harts[cpu];
    const out: Uint8Array[] = [];
    if (h === undefined) return out;
    for (let done = 0; done < len;) {
      const va = BigInt.asUintN(64, addr + BigInt(done));
      const pa = h.translate(va);
      const v = pa === null ? null : this.physView(pa, Math.min(len - done, PAGE - Number(va & 0xfffn)));
      if (v === null) break;
      out.push(v);
      done += v.length;
    }
    return out;
  }

  readMemory(cpu: number, addr: bigint, len: number): Uint8Array {
    return Buffer.concat(this.views(cpu, addr, len));
  }

  writeMemory(cpu: number, addr: bigint, data: Uint8Array): boolean {
    const views = this.views(cpu, addr, data.length);
    if (views.reduce((n, v) => n + v.length, 0) < data.length) return false;
    const { ram, dirty } = this.machine!.cpus;
    let at = 0;
    for (const v of views) {
      v.set(data.subarray(at, at + v.length));
      at += v.length;
      // A live migration must send the patched RAM pages again.
      const off = v.byteOffset - ram.byteOffset;
      if (off >= 0 && off < ram.length) dirty.fill(1, Math.floor(off / 4096), Math.floor((off + v.length - 1) / 4096) + 1);
    }
    return true;
  }

  setBreakpoints(pcs: readonly bigint[]): boolean {
    if (pcs.length > (this.harts[0]?.maxBreakpoints ?? 0)) return false;
    this.breakpoints = [...pcs];
    for (const h of this.harts) h.setDebug(this.breakpoints, this.watchpoints);
    return true;
  }

  setWatchpoints(wps: readonly Watchpoint[]): boolean {
    if (wps.length > (this.harts[0]?.maxWatchpoints ?? 0)) return false;
    this.watchpoints = wps.map((w) => ({ first: w.addr, last: BigInt.asUintN(64, w.addr + BigInt(w.len) - 1n), type: w.type }));
    for (const h of this.harts) h.setDebug(this.breakpoints, this.watchpoints);
    return true;
  }

  running(): boolean {
    return this.control.status() === 'running';
  }

  stop(): Promise<void> {
    return this.running() ? this.control.pause() : Promise.resolve();
  }

  resume(): void {
    this.control.resume();
  }

  /**
   * Whoever resumes the machine (gdb, a monitor's cont), a hart stopped at a breakpoint or
   * watched access first executes that instruction, or it would stop there again at once
   * (a watchpoint that a breakpoint's instruction hits still stops it, when the loop runs it).
   */
  private stepOver(): void {
    const at = this.atHit;
    this.atHit = null;
    if (at === null || (at.kind !== 'breakpoint' && at.kind !== 'watchpoint')) return;
    const h = this.harts[at.cpu];
    if (h !== undefined && BigInt.asUintN(64, h.pc) === at.pc) h.step(at.kind === 'breakpoint');
  }

  async step(cpu: number): Promise<StopEvent> {
    await this.stop();
    const h = this.harts[cpu];
    if (h === undefined) return { kind: 'step', cpu };
    const at = this.atHit;
    this.atHit = null;
    const overWatch = at?.kind === 'watchpoint' && at.cpu === cpu && at.pc === BigInt.asUintN(64, h.pc);
    const ev: StopEvent = h.step(!overWatch) === RunExit.Debug ? this.hitEvent(cpu, h) : { kind: 'step', cpu };
    if (ev.kind === 'watchpoint') this.atHit = ev;
    this.control.runState.debugged();
    // The loop, waiting for resume, notices a power-off or reset the instruction asked for.
    this.control.runState.wake();
    return ev;
  }

  kill(): void {
    this.control.quit();
  }

  private hitEvent(cpu: number, h: Hart): StopEvent {
    const { kind, addr } = h.debugHit();
    const pc = BigInt.asUintN(64, h.pc);
    return kind === 2 || kind === 3 || kind === 4 ? { kind: 'watchpoint', cpu, pc, type: kind, addr } : { kind: 'breakpoint', cpu, pc };
  }

  /** A hart stopped at a breakpoint or watchpoint (inside the loop): the whole machine stops. */
  private debugExit(cpu: number): void {
    const h = this.harts[cpu];
    if (h === undefined) return;
    this.hit = this.hitEvent(cpu, h);
    void this.control.runState.pause('debug');
  }

  private stopped(): void {
    const ev: StopEvent = this.hit ?? { kind: 'interrupt', cpu: null };
    this.hit = null;
    this.atHit = ev.kind === 'breakpoint' || ev.kind === 'watchpoint' ? ev : null;
    this.onStop?.(ev);
  }
}
