/**
 * RISC-V harts backed by the WebAssembly core (src/target/riscv/core, built to
 * dist/riscv-core.wasm). This file owns the layout of the shared linear memory:
 *
 *   0x000000  core's static data
 *   0x100000  compressed-instruction expansion table (256 KiB, shared by all harts)
 *   0x140000  boot ROM (up to 64 KiB)
 *   0x200000  JIT code map (1 MiB, one byte per 4 KiB page; with jit=on)
 *   0x300000  hart blocks, 128 KiB each (registers, mip, TLBs)
 *   0x400000  guest RAM, then the dirty map (one byte per RAM page, for live
 *            migration), then (with jit=on) one JIT hash table per hart and,
 *            with hart threads, the JIT's invalidation log
 *
 * A hart is one instance of the core module; all instances share the memory, so
 * that vCPU threads can later run them in parallel on the same guest RAM.
 */
import { AddressSpace, BUS_ERROR } from '../../hw/core/memory.js';
import type { IrqLine } from '../../hw/core/irq.js';
import { Jit, JitHart, HASH_BYTES, type JitCore } from './jit/jit.js';
import { JitLog, JIT_LOG_BYTES } from './jit/jit-log.js';
// Node reads the core from dist/; the browser bundle puts src/web/core-module.ts in its place.
import { loadCoreModule } from './core-module.js';
import { adviseGuestRam } from '../../system/host-memory.js';

/** Host address of the compressed-instruction expansion table (65536 u32, filled by the core). */
export const RVC_TABLE = 0x100000;
const ROM_HOST = 0x140000;
/** Largest boot ROM the layout leaves room for. */
export const MAX_ROM_SIZE = 0x10000;
const CODE_MAP = 0x200000;
const HART_BLOCKS = 0x300000;
const HART_BLOCK_SIZE = 0x20000;
const RAM_HOST = 0x400000;
const WASM_PAGE = 0x10000;
/** Largest guest RAM that fits in a 4 GiB WebAssembly memory next to the core's own data and the dirty map (at most 1 MiB). */
export const MAX_RAM_SIZE = 4 * 1024 ** 3 - RAM_HOST - 2 * WASM_PAGE - 0x100000;
/** Most harts the layout leaves room for. */
export const MAX_HARTS = (RAM_HOST - HART_BLOCKS) / HART_BLOCK_SIZE;

/** Why {@link Hart.run} returned. */
export const enum RunExit {
  Budget = 0,
  Wfi = 1,
  Request = 2,
  /** Stopped before an instruction at a debugger's breakpoint or watchpoint ({@link Hart.debugHit}). */
  Debug = 3,
}

/** Interrupt bits of mip (Privileged Architecture, 3.1.9). */
export const enum Mip {
  SSIP = 1,
  MSIP = 3,
  STIP = 5,
  MTIP = 7,
  SEIP = 9,
  MEIP = 11,
}

/** The core's exports, as the host calls them (also used by the MTTCG hart threads). */
export interface CoreExports extends JitCore {
  runJit(budget: number): number;
  OFF_JIT: WebAssembly.Global;
  init(hartBase: number, hartId: number, rvcTable: number, fillRvc: number, resetHart: number, ramBase: number, ramSize: number,
    ramHost: number, romBase: number, romSize: number, romHost: number, dirtyMap: number): void;
  flushWriteTlb(): void;
  reset(pc: number): void;
  run(budget: number): number;
  getPc(): bigint;
  setPc(v: bigint): void;
  getPriv(): number;
  debugCsr(csr: number): bigint;
  debugSetCsr(csr: number, v: bigint): number;
  debugSetPriv(p: number): number;
  debugTranslate(vaddr: bigint): bigint;
  debugSet(bps: number, wps: number): void;
  debugStep(watch: number): number;
  debugHit(): number;
  debugHitAddr(): bigint;
  saveState(): void;
  loadState(): void;
  getInstret(): number;
  wfiWake(): number;
  kick(): void;
  OFF_MIP: WebAssembly.Global;
  OFF_EXIT: WebAssembly.Global;
  OFF_SCRATCH: WebAssembly.Global;
  OFF_X: WebAssembly.Global;
  OFF_PMPCFG: WebAssembly.Global;
  OFF_SAVED: WebAssembly.Global;
  SAVED_SLOTS: WebAssembly.Global;
  OFF_F: WebAssembly.Global;
  OFF_BP: WebAssembly.Global;
  BP_MAX: WebAssembly.Global;
  OFF_WP: WebAssembly.Global;
  WP_MAX: WebAssembly.Global;
  HART_BLOCK_SIZE: WebAssembly.Global;
}

let compiled: WebAssembly.Module | null = null;
/** The compiled core (one per process; worker threads receive it by postMessage). */
export function coreModule(): WebAssembly.Module {
  compiled ??= loadCoreModule();
  return compiled;
}

/** The guest-visible physical memory map the core accesses directly. */
export interface RiscvMemoryMap {
  ramBase: number;
  ramSize: number;
  romBase: number;
  romSize: number;
}

/** Arguments of the core's init() for one hart (see {@link RiscvCpus.hartInit}). */
export interface HartInitArgs {
  hartBase: number;
  hartId: number;
  rvcTable: number;
  ramBase: number;
  ramSize: number;
  ramHost: number;
  romBase: number;
  romSize: number;
  romHost: number;
  dirtyMap: number;
  /** With jit=on: what the hart's thread needs for its own JIT (see {@link RiscvCpus.hartInit}). */
  jit: { codeMap: number; hash: number; threshold: number; log: number; harts: number } | null;
}

/**
 * Guest RAM and boot ROM in one shared WebAssembly memory, plus the harts running on it.
 * MMIO accesses the core cannot serve from RAM go to `bus`.
 */
export class RiscvCpus {
  readonly memory: WebAssembly.Memory;
  /** Guest RAM, as a byte view (zero-copy). */
  readonly ram: Uint8Array;
  /** Boot ROM contents (zero-copy view; written by the board before reset). */
  readonly rom: Uint8Array;
  readonly harts: Hart[] = [];
  /** The JIT (-accel tcg,jit=on), or null. */
  readonly jit: Jit | null = null;
  /** Host address of guest RAM (for device-side views). */
  readonly ramHost = RAM_HOST;
  /**
   * One byte per 4 KiB page of RAM, set to 1 by every write of the harts (and of devices,
   * through the board's GuestMemory); live migration reads and clears it (see
   * src/migration/dirty-log.ts).
   */
  readonly dirty: Uint8Array;
  private readonly dirtyHost: number;
  /** Host address of hart 0's JIT hash table (the others follow; with jit=on). */
  private readonly hashBase: number;
  /** Flushes the harts' write TLBs here, where they run unless hart threads have them. */
  readonly flushHartWriteTlbs = async (): Promise<void> => {
    for (const h of this.harts) h.flushWriteTlb();
  };
  /** Flushes every hart's write TLB wherever it runs (mttcg.ts replaces this while its threads run). */
  flushWriteTlbs: () => Promise<void> = this.flushHartWriteTlbs;
  /** Instructions retired by the harts here. */
  readonly hartsRetired = (): number => this.harts.reduce((n, h) => n + h.instret, 0);
  /** Instructions retired by all harts, wherever they run (mttcg.ts replaces this while its threads run; to 1024 there). */
  retired: () => number = this.hartsRetired;

  /**
   * What a hart thread needs to run hart `id` on this memory in its own instance of the
   * core (src/accel/tcg/mttcg.ts): the arguments of the core's init().
   */
  hartInit(id: number): HartInitArgs {
    const m = this.map;
    return {
      hartBase: HART_BLOCKS + id * HART_BLOCK_SIZE, hartId: id, rvcTable: RVC_TABLE,
      ramBase: m.ramBase, ramSize: m.ramSize, ramHost: RAM_HOST, romBase: m.romBase, romSize: m.romSize, romHost: ROM_HOST,
      dirtyMap: this.dirtyHost,
      jit: this.jit?.log ? { codeMap: CODE_MAP, hash: this.hashBase + id * HASH_BYTES, threshold: this.jit.threshold, log: this.jit.log.addr, harts: this.jit.log.harts } : null,
    };
  }

  /**
   * `jit`: the JIT's hotness threshold, and whether the harts run on threads of their own
   * (each then translates on its thread, see src/accel/tcg/mttcg-hart.ts), or null.
   */
  constructor(readonly map: RiscvMemoryMap, nharts: number, bus: AddressSpace, mtime: () => number,
    jit: { threshold: number; threads?: boolean } | null = null) {
    if (map.ramSize > MAX_RAM_SIZE) throw new RangeError(`guest RAM larger than ${MAX_RAM_SIZE} bytes`);
    if (map.romSize > MAX_ROM_SIZE) throw new RangeError('boot ROM too large');
    if (nharts < 1 || nharts > MAX_HARTS) throw new RangeError(`between 1 and ${MAX_HARTS} harts are supported`);
    const ramPages = Math.ceil(map.ramSize / 4096);
    this.dirtyHost = Math.ceil((RAM_HOST + map.ramSize) / WASM_PAGE) * WASM_PAGE;
    const hashBase = Math.ceil((this.dirtyHost + ramPages) / WASM_PAGE) * WASM_PAGE;
    this.hashBase = hashBase;
    const logBase = hashBase + nharts * HASH_BYTES;
    const end = jit ? logBase + (jit.threads ? JIT_LOG_BYTES : 0) : this.dirtyHost + ramPages;
    if (end + WASM_PAGE > 4 * 1024 ** 3) throw new RangeError('guest RAM too large for the JIT tables (use less -m or jit=off)');
    const pages = Math.ceil((end + WASM_PAGE) / WASM_PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.ram = new Uint8Array(this.memory.buffer, RAM_HOST, map.ramSize);
    adviseGuestRam(this.ram);
    this.rom = new Uint8Array(this.memory.buffer, ROM_HOST, map.romSize);
    this.dirty = new Uint8Array(this.memory.buffer, this.dirtyHost, ramPages);
    if (jit) this.jit = new Jit(this.memory, CODE_MAP, jit.threshold, jit.threads ? new JitLog(this.memory, logBase, nharts, -1) : null);
    for (let i = 0; i < nharts; i++) this.harts.push(new Hart(this, i, bus, mtime, hashBase + i * HASH_BYTES));
  }
}

/** One RISC-V hart: an instance of the core module. */
export class Hart {
  private readonly core: CoreExports;
  private readonly mip: Int32Array;
  private readonly mipIndex: number;
  private readonly exitIndex: number;
  /** The 32 integer registers as a live view (BigUint64Array over the hart block). */
  readonly x: BigUint64Array;
  /** This hart's block (registers, mip, PMP, saved state, TLBs) in the shared memory. */
  private readonly block: Uint8Array;
  /** The 32 floating-point registers as a live view (bit patterns; singles are NaN-boxed). */
  readonly f: BigUint64Array;
  /** True while the hart waits in WFI. */
  halted = false;
  /** Called when an interrupt line of this hart rises (wakes an idle main loop). */
  onWake: (() => void) | null = null;
  /** Called when run() stopped at a debugger's breakpoint or watchpoint. */
  onDebug: (() => void) | null = null;
  /** How many breakpoints and watchpoints {@link setDebug} takes. */
  readonly maxBreakpoints: number;
  readonly maxWatchpoints: number;
  private readonly bpTable: BigUint64Array;
  private readonly wpTable: BigUint64Array;

  private readonly jit: JitHart | null;

  constructor(private readonly cpus: RiscvCpus, readonly id: number, bus: AddressSpace, mtime: () => number, jitHash = 0) {
    const base = HART_BLOCKS + id * HART_BLOCK_SIZE;
    // With hart threads, each thread has the hart's JIT; this instance only runs while they are stopped (never guest code).
    const jit = cpus.jit && !cpus.jit.log ? new JitHart(cpus.jit) : null;
    this.jit = jit;
    const words = new Uint32Array(cpus.memory.buffer);
    let scratch = 0;
    const imports = {
      env: {
        memory: cpus.memory,
        mmio_read(addr: number, size: number): number {
          const lo = bus.read(addr, size);
          if (lo === BUS_ERROR) return 1;
          words[scratch] = lo;
          words[scratch + 1] = bus.hi;
          return 0;
        },
        mmio_write(addr: number, size: number, lo: number, hi: number): number {
          return bus.write(addr, size, lo >>> 0, hi >>> 0) ? 0 : 1;
        },
        host_mtime: mtime,
        table: jit ? jit.table : new WebAssembly.Table({ initial: 1, element: 'anyfunc' }),
        jit_translate: (lo: number, hi: number, host: number): number => jit ? jit.translate(lo, hi, host) : 0,
        jit_invalidate: (host: number, size: number): void => cpus.jit?.invalidate(host, size),
        jit_sync: (): void => {},
        abort(): never {
          throw new Error('RISC-V core aborted');
        },
      },
    };
    const instance = new WebAssembly.Instance(coreModule(), imports);
    this.core = instance.exports as unknown as CoreExports;
    if ((this.core.HART_BLOCK_SIZE.value as number) > HART_BLOCK_SIZE) throw new Error('core hart block larger than the layout allows');
    scratch = (base + (this.core.OFF_SCRATCH.value as number)) >> 2;
    this.mip = new Int32Array(cpus.memory.buffer);
    this.mipIndex = (base + (this.core.OFF_MIP.value as number)) >> 2;
    this.exitIndex = (base + (this.core.OFF_EXIT.value as number)) >> 2;
    this.x = new BigUint64Array(cpus.memory.buffer, base + (this.core.OFF_X.value as number), 32);
    this.block = new Uint8Array(cpus.memory.buffer, base, HART_BLOCK_SIZE);
    this.f = new BigUint64Array(cpus.memory.buffer, base + (this.core.OFF_F.value as number), 32);
    this.maxBreakpoints = this.core.BP_MAX.value as number;
    this.maxWatchpoints = this.core.WP_MAX.value as number;
    this.bpTable = new BigUint64Array(cpus.memory.buffer, base + (this.core.OFF_BP.value as number), this.maxBreakpoints);
    this.wpTable = new BigUint64Array(cpus.memory.buffer, base + (this.core.OFF_WP.value as number), 3 * this.maxWatchpoints);
    const m = cpus.map;
    const init = cpus.hartInit(id);
    this.core.init(base, id, RVC_TABLE, id === 0 ? 1 : 0, 1, m.ramBase, m.ramSize, RAM_HOST, m.romBase, m.romSize, ROM_HOST, init.dirtyMap);
    jit?.attach(this.core, {
      mem16: new Uint16Array(cpus.memory.buffer),
      mem32: new Uint32Array(cpus.memory.buffer),
      rvcTable: RVC_TABLE,
      hb: base,
      offJit: this.core.OFF_JIT.value as number,
    }, jitHash);
  }

  /** Resets the hart to M-mode at `pc`. */
  reset(pc: number): void {
    // The board may have rewritten RAM: drop every translation.
    if (this.id === 0) this.cpus.jit?.flushAll();
    this.core.reset(pc);
    this.halted = false;
    Atomics.store(this.mip, this.exitIndex, 0);
  }

  /** Writes the state held in the core's globals into the hart block, for another thread to load. */
  saveState(): void {
    this.core.saveState();
  }

  /** Drops the write TLB entries, so that the next store to each page marks {@link RiscvCpus.dirty} again. */
  flushWriteTlb(): void {
    this.core.flushWriteTlb();
  }

  /** Takes over the state another thread saved in the hart block. */
  loadState(): void {
    this.core.loadState();
    this.halted = false;
  }

  /**
   * The hart's architectural state as bytes, for a snapshot: x and f registers, mip, PMP
   * and the state kept in the core's globals (pc, privilege, CSRs, counters). TLBs, the
   * LR reservation and the debugger's tables are not part of it.
   */
  snapshot(): Uint8Array {
    this.core.saveState();
    return Uint8Array.from([...this.snapshotRanges()].flatMap(([from, to]) => [...this.block.subarray(from, to)]));
  }

  /** The size of a {@link snapshot}. */
  get snapshotBytes(): number {
    return [...this.snapshotRanges()].reduce((n, [from, to]) => n + to - from, 0);
  }

  /** Takes over a {@link snapshot} (of {@link snapshotBytes} bytes) of a hart of the same core. */
  restore(bytes: Uint8Array): void {
    if (bytes.length !== this.snapshotBytes) throw new RangeError('hart snapshot of the wrong size');
    let at = 0;
    for (const [from, to] of this.snapshotRanges()) {
      this.block.set(bytes.subarray(at, at + to - from), from);
      at += to - from;
    }
    Atomics.store(this.mip, this.exitIndex, 0);
    this.loadState();
  }

  /** [from, to) offsets of the hart block that a snapshot holds. */
  private *snapshotRanges(): Generator<[number, number]> {
    const c = this.core;
    yield [c.OFF_X.value as number, c.OFF_EXIT.value as number]; // x, f, mip
    const saved = c.OFF_SAVED.value as number;
    yield [c.OFF_PMPCFG.value as number, saved + 8 * (c.SAVED_SLOTS.value as number)];
  }

  /** Runs up to `budget` instructions. */
  run(budget: number): RunExit {
    const exit = (this.jit ? this.core.runJit(budget) : this.core.run(budget)) as RunExit;
    this.halted = exit === RunExit.Wfi;
    if (exit === RunExit.Debug) this.onDebug?.();
    return exit;
  }

  /**
   * Executes exactly one instruction for a debugger, with interrupts masked and breakpoints
   * ignored; with `watch` false, watchpoints are ignored too (to step over the access that
   * hit one). A hit watchpoint returns {@link RunExit.Debug} without calling onDebug.
   */
  step(watch: boolean): RunExit {
    const exit = this.core.debugStep(watch ? 1 : 0) as RunExit;
    this.halted = exit === RunExit.Wfi;
    return exit;
  }

  /**
   * Sets the debugger's breakpoints (virtual pcs) and watchpoints (virtual byte ranges
   * `first`..`last`, of gdb's type 2 write, 3 read, 4 access); at most
   * {@link maxBreakpoints} and {@link maxWatchpoints}.
   */
  setDebug(bps: readonly bigint[], wps: readonly { first: bigint; last: bigint; type: 2 | 3 | 4 }[]): void {
    if (bps.length > this.maxBreakpoints || wps.length > this.maxWatchpoints) throw new RangeError('too many breakpoints or watchpoints');
    bps.forEach((a, i) => { this.bpTable[i] = BigInt.asUintN(64, a); });
    wps.forEach((w, i) => {
      this.wpTable[3 * i] = BigInt.asUintN(64, w.first);
      this.wpTable[3 * i + 1] = BigInt.asUintN(64, w.last);
      this.wpTable[3 * i + 2] = BigInt(w.type);
    });
    this.core.debugSet(bps.length, wps.length);
  }

  /** Why run() or step() last stopped for the debugger: 1 breakpoint, 2-4 watchpoint type (0: neither), and the pc or data address. */
  debugHit(): { kind: number; addr: bigint } {
    return { kind: this.core.debugHit(), addr: BigInt.asUintN(64, this.core.debugHitAddr()) };
  }

  /** The physical address of `vaddr` as the debugger sees it (no side effects), or null when unmapped. */
  translate(vaddr: bigint): bigint | null {
    const pa = BigInt.asUintN(64, this.core.debugTranslate(BigInt.asUintN(64, vaddr)));
    return pa === 0xffff_ffff_ffff_ffffn ? null : pa;
  }

  /** Reads a CSR as M-mode would, without side effects; -1 (all ones) when it does not exist. */
  csr(n: number): bigint {
    return BigInt.asUintN(64, this.core.debugCsr(n));
  }

  /** Writes a CSR as M-mode would; false when it does not exist or is read-only. */
  setCsr(n: number, v: bigint): boolean {
    return this.core.debugSetCsr(n, BigInt.asUintN(64, v)) !== 0;
  }

  /** Sets the privilege level (0 U, 1 S, 3 M); false for any other value. */
  setPriv(p: number): boolean {
    return this.core.debugSetPriv(p) !== 0;
  }

  /** True when an enabled interrupt is pending: a halted hart should run again. */
  get wakeable(): boolean {
    return this.core.wfiWake() !== 0;
  }

  /** Asks a running hart to return from run() at the next instruction boundary. */
  requestExit(): void {
    Atomics.store(this.mip, this.exitIndex, 1);
    this.core.kick();
  }

  get pc(): bigint {
    return this.core.getPc();
  }

  set pc(v: bigint) {
    this.core.setPc(BigInt.asUintN(64, v));
  }

  get priv(): number {
    return this.core.getPriv();
  }

  /** Instructions retired since reset. */
  get instret(): number {
    return this.core.getInstret();
  }

  /** The IrqLine driving bit `bit` of this hart's mip (devices never see the CPU itself). */
  irqLine(bit: Mip): IrqLine {
    const mask = 1 << bit;
    return {
      set: (level: boolean) => {
        if (level) {
          Atomics.or(this.mip, this.mipIndex, mask);
          this.core.kick();
          this.onWake?.();
        } else {
          Atomics.and(this.mip, this.mipIndex, ~mask);
        }
      },
    };
  }
}
