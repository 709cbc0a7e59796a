/**
 * SiFive-compatible CLINT (the RISC-V ACLINT spec's MSWI + MTIMER devices in their
 * legacy combined layout), as on QEMU's virt board (base 0x2000000, size 0x10000):
 * msip for hart h at 4*h, mtimecmp at 0x4000 + 8*h, mtime at 0xbff8.
 *
 * mtime counts at 10 MHz (virt's timebase-frequency) from the virtual clock and is
 * read-only here. 64-bit registers are accessed as two 32-bit halves (the bus splits
 * 8-byte accesses); values are kept as exact JS numbers or 32-bit halves.
 * Registers are 32-bit: map the region with valid = {4, 8}, impl = {4, 4}.
 */
import type { MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import type { Clock, Timer } from '../core/clock.js';
import type { FdtBuilder } from '../core/fdt.js';
import { arrayField, type DeviceState, type VMStateDevice } from '../../migration/vmstate.js';

/** mtime ticks per second (the "timebase-frequency" of virt's /cpus node). */
export const CLINT_TIMEBASE_FREQ = 10_000_000;
const NS_PER_TICK = 1e9 / CLINT_TIMEBASE_FREQ;

const MTIMECMP_BASE = 0x4000;
const MTIME = 0xbff8;

/** Access sizes the registers accept (8-byte accesses are split into halves). */
export const CLINT_VALID_ACCESS = { min: 4, max: 8 } as const;

/** Interrupt cause numbers of the hart-local interrupts the CLINT drives. */
const IRQ_M_SOFT = 3;
const IRQ_M_TIMER = 7;

/** The CLINT: machine software interrupts and machine timer for every hart. */
export class RiscvAclint implements MmioHandler, VMStateDevice {
  /**
   * The registers, in shared memory: msip (one Int32 per hart), then the low and the high
   * halves of every mtimecmp. Each hart thread of `-accel tcg,thread=multi` runs its own
   * RiscvAclint over the same state (see mttcg-hart.ts), so that programming the timer
   * or sending an IPI costs no round trip to the main thread.
   */
  readonly state: SharedArrayBuffer;
  private readonly msipBits: Int32Array;
  private readonly cmpLo: Uint32Array;
  private readonly cmpHi: Uint32Array;
  private readonly timers: Timer[];

  /**
   * @param msip MSIP line per hart; @param mtip MTIP line per hart (same length).
   * @param state the registers of another instance to share, or none for a reset CLINT.
   */
  constructor(private readonly clock: Clock, private readonly msip: IrqLine[], private readonly mtip: IrqLine[],
    state?: SharedArrayBuffer) {
    if (msip.length !== mtip.length || msip.length > 4095) throw new RangeError('clint: bad hart count');
    const n = msip.length;
    this.state = state ?? new SharedArrayBuffer(12 * n);
    this.msipBits = new Int32Array(this.state, 0, n);
    this.cmpLo = new Uint32Array(this.state, 4 * n, n);
    this.cmpHi = new Uint32Array(this.state, 8 * n, n);
    if (state === undefined) {
      // Reset value all ones: no timer interrupt until software programs a deadline.
      this.cmpLo.fill(0xffffffff);
      this.cmpHi.fill(0xffffffff);
    }
    this.timers = Array.from({ length: n }, (_, h) => clock.newTimer(() => this.updateTimer(h)));
  }

  /** The current mtime value in ticks. */
  mtime(): number {
    return Math.floor(this.clock.now() / NS_PER_TICK);
  }

  read(offset: number, size: number): number {
    if (size !== 4 || (offset & 3) !== 0) return 0;
    const n = this.msip.length;
    if (offset < MTIMECMP_BASE) {
      const h = offset >> 2;
      return h < n ? Atomics.load(this.msipBits, h) : 0;
    }
    if (offset < MTIME) {
      const h = (offset - MTIMECMP_BASE) >> 3;
      if (h >= n) return 0;
      return offset & 4 ? this.cmpHi[h] : this.cmpLo[h];
    }
    if (offset === MTIME) return this.mtime() >>> 0;
    if (offset === MTIME + 4) return Math.floor(this.mtime() / 2 ** 32) >>> 0;
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4 || (offset & 3) !== 0) return;
    const n = this.msip.length;
    if (offset < MTIMECMP_BASE) {
      const h = offset >> 2;
      if (h >= n) return;
      Atomics.store(this.msipBits, h, value & 1);
      this.msip[h].set((value & 1) !== 0);
    } else if (offset < MTIME) {
      const h = (offset - MTIMECMP_BASE) >> 3;
      if (h >= n) return;
      if (offset & 4) this.cmpHi[h] = value;
      else this.cmpLo[h] = value;
      this.updateTimer(h);
    }
    // mtime is read-only: writes are ignored.
  }

  saveState(): DeviceState {
    return { msip: [...this.msipBits], mtimecmpLo: [...this.cmpLo], mtimecmpHi: [...this.cmpHi] };
  }

  /** Loads the registers and drives the lines and timers from them (the clock is restored first). */
  loadState(s: DeviceState): void {
    const msip = new Int32Array(this.msipBits.length);
    const lo = new Uint32Array(this.cmpLo.length);
    const hi = new Uint32Array(this.cmpHi.length);
    arrayField(s, 'msip', msip);
    arrayField(s, 'mtimecmpLo', lo);
    arrayField(s, 'mtimecmpHi', hi);
    for (let h = 0; h < msip.length; h++) {
      Atomics.store(this.msipBits, h, msip[h]! & 1);
      this.msip[h]!.set((msip[h]! & 1) !== 0);
      this.cmpLo[h] = lo[h]!;
      this.cmpHi[h] = hi[h]!;
      this.updateTimer(h);
    }
  }

  /**
   * Sets MTIP for hart `h` from mtime >= mtimecmp and arms its timer for a future deadline
   * (a new instance over shared state calls it for the harts whose timers it is to fire).
   */
  updateTimer(h: number): void {
    // Above 2^53 the sum rounds, but stays above any reachable mtime: the comparison holds.
    const cmp = this.cmpHi[h] * 2 ** 32 + this.cmpLo[h];
    const expired = this.mtime() >= cmp;
    this.mtip[h].set(expired);
    const deadline = cmp * NS_PER_TICK;
    if (expired || deadline > Number.MAX_SAFE_INTEGER) this.timers[h].del();
    else this.timers[h].mod(deadline);
  }
}

/** Writes the CLINT node as QEMU virt does, at the current position (inside /soc). */
export function clintFdtNode(f: FdtBuilder, base: number, size: number, cpuIntcPhandles: readonly number[]): void {
  f.beginNode(`clint@${base.toString(16)}`);
  f.propCells('interrupts-extended', cpuIntcPhandles.flatMap((ph) => [ph, IRQ_M_SOFT, ph, IRQ_M_TIMER]));
  f.propCells64('reg', [base, size]);
  f.propStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  f.endNode();
}
