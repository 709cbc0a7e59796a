/**
 * SiFive Platform-Level Interrupt Controller, as on QEMU's virt board (base 0xc000000,
 * size 0x600000). Follows the RISC-V PLIC Specification 1.0.0: 32-bit registers for
 * source priorities (0x0 + 4*src), pending bits (0x1000), per-context enables
 * (0x2000 + 0x80*ctx), threshold (0x200000 + 0x1000*ctx) and claim/complete (+4).
 * On virt, hart h owns context 2h (M-mode) and 2h+1 (S-mode).
 *
 * Sources are level-triggered: the pending bit follows the input level, but a claimed
 * source is not pended again until the hart completes it (the spec's gateway).
 * Registers are 32-bit: map the region with valid = impl = {4, 4}.
 */
import type { MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import type { FdtBuilder } from '../core/fdt.js';
import { arrayField, type DeviceState, type VMStateDevice } from '../../migration/vmstate.js';

const PRIORITY_MASK = 7; // 7 priority levels (1..7), 0 = never interrupt
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x200000;
const CONTEXT_STRIDE = 0x1000;

/** Interrupt cause numbers a PLIC context drives in the hart's local interrupt controller. */
const IRQ_M_EXT = 11;
const IRQ_S_EXT = 9;

/** The PLIC: an {@link MmioHandler} that also hands out device input lines. */
export class RiscvPlic implements MmioHandler, VMStateDevice {
  private readonly words: number;
  private readonly priority: Uint32Array;
  private readonly level: Uint32Array;
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  private readonly outLevel: boolean[];

  /**
   * @param outputs one line per context, in context order (M then S for each hart on virt)
   * @param numSources number of source ids including the reserved id 0 (virt: 96, so
   *   "riscv,ndev" = numSources - 1)
   */
  constructor(private readonly outputs: IrqLine[], private readonly numSources: number) {
    if (numSources < 1 || numSources > 1024 || outputs.length > 15872) throw new RangeError('plic: bad geometry');
    this.words = Math.ceil(numSources / 32);
    this.priority = new Uint32Array(numSources);
    this.level = new Uint32Array(this.words);
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * outputs.length);
    this.threshold = new Uint32Array(outputs.length);
    this.outLevel = outputs.map(() => false);
  }

  saveState(): DeviceState {
    const { priority, level, pending, claimed, enable, threshold } = this;
    return { priority: [...priority], level: [...level], pending: [...pending], claimed: [...claimed], enable: [...enable], threshold: [...threshold] };
  }

  /** Loads the registers and drives the outputs from them. */
  loadState(s: DeviceState): void {
    for (const name of ['priority', 'level', 'pending', 'claimed', 'enable', 'threshold'] as const) arrayField(s, name, this[name]);
    this.outLevel.fill(false);
    for (const o of this.outputs) o.set(false);
    this.update();
  }

  /** The input line of source `n` (1 <= n < numSources), for a device to drive. */
  line(n: number): IrqLine {
    if (!Number.isInteger(n) || n < 1 || n >= this.numSources) throw new RangeError(`plic: no source ${n}`);
    return { set: (level) => this.setLevel(n, level) };
  }

  read(offset: number, size: number): number {
    if (size !== 4 || (offset & 3) !== 0) return 0;
    if (offset < PENDING_BASE) {
      const src = offset >> 2;
      return src < this.numSources ? this.priority[src] : 0;
    }
    if (offset < ENABLE_BASE) {
      const w = (offset - PENDING_BASE) >> 2;
      return w < this.words ? this.pending[w] : 0;
    }
    if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      return ctx < this.outputs.length && w < this.words ? this.enable[ctx * this.words + w] : 0;
    }
    const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
    if (ctx >= this.outputs.length) return 0;
    switch ((offset - CONTEXT_BASE) % CONTEXT_STRIDE) {
      case 0: return this.threshold[ctx];
      case 4: return this.claim(ctx);
      default: return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4 || (offset & 3) !== 0) return;
    if (offset < PENDING_BASE) {
      const src = offset >> 2;
      if (src === 0 || src >= this.numSources) return;
      this.priority[src] = value & PRIORITY_MASK;
    } else if (offset < ENABLE_BASE) {
      return; // pending bits are read-only
    } else if (offset < CONTEXT_BASE) {
      const ctx = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      if (ctx >= this.outputs.length || w >= this.words) return;
      this.enable[ctx * this.words + w] = value & this.validMask(w);
    } else {
      const ctx = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
      if (ctx >= this.outputs.length) return;
      const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (reg === 0) this.threshold[ctx] = value & PRIORITY_MASK;
      else if (reg === 4) this.complete(ctx, value >>> 0);
      else return;
    }
    this.update();
  }

  /** Bits of word `w` that name existing sources (source 0 does not exist). */
  private validMask(w: number): number {
    const bits = Math.min(32, this.numSources - w * 32);
    const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
    return (w === 0 ? mask & ~1 : mask) >>> 0;
  }

  private setLevel(src: number, high: boolean): void {
    const w = src >> 5;
    const bit = 1 << (src & 31);
    if (high) {
      this.level[w] |= bit;
      if (!(this.claimed[w] & bit)) this.pending[w] |= bit;
    } else {
      this.level[w] &= ~bit;
      this.pending[w] &= ~bit;
    }
    this.update();
  }

  /** The best source context `ctx` may take: highest priority above threshold, lowest id on ties; 0 if none. */
  private best(ctx: number): number {
    let best = 0;
    let bestPrio = this.threshold[ctx];
    const base = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pending[w] & ~this.claimed[w] & this.enable[base + w];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const src = w * 32 + b;
        if (this.priority[src] > bestPrio) {
          best = src;
          bestPrio = this.priority[src];
        }
      }
    }
    return best;
  }

  private claim(ctx: number): number {
    const src = this.best(ctx);
    if (src !== 0) {
      const bit = 1 << (src & 31);
      this.pending[src >> 5] &= ~bit;
      this.claimed[src >> 5] |= bit;
      this.update();
    }
    return src;
  }

  /** Ends the handling of `src`; ignored unless it is a valid source enabled for `ctx` (spec 1.0.0). */
  private complete(ctx: number, src: number): void {
    if (src === 0 || src >= this.numSources) return;
    const w = src >> 5;
    const bit = 1 << (src & 31);
    if (!(this.enable[ctx * this.words + w] & bit)) return;
    this.claimed[w] &= ~bit;
    // Level-triggered: a line still asserted raises a new request.
    if (this.level[w] & bit) this.pending[w] |= bit;
  }

  private update(): void {
    for (let ctx = 0; ctx < this.outputs.length; ctx++) {
      const high = this.best(ctx) !== 0;
      if (high !== this.outLevel[ctx]) {
        this.outLevel[ctx] = high;
        this.outputs[ctx].set(high);
      }
    }
  }
}

/**
 * Writes the PLIC node as QEMU virt does, at the current position (inside /soc): one
 * M-external and one S-external context per hart, in hart order.
 */
export function plicFdtNode(
  f: FdtBuilder, base: number, size: number, phandle: number, cpuIntcPhandles: readonly number[], ndev: number,
): void {
  f.beginNode(`plic@${base.toString(16)}`);
  f.propU32('phandle', phandle);
  f.propU32('riscv,ndev', ndev);
  f.propCells64('reg', [base, size]);
  f.propCells('interrupts-extended', cpuIntcPhandles.flatMap((ph) => [ph, IRQ_M_EXT, ph, IRQ_S_EXT]));
  f.propEmpty('interrupt-controller');
  f.propStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  f.propU32('#address-cells', 0);
  f.propU32('#interrupt-cells', 1);
  f.endNode();
}
