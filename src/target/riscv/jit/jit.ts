/**
 * The host side of the JIT: per-hart function tables and translation on request of
 * the core's dispatcher (src/target/riscv/core/jit.ts), the shared map of pages
 * holding code, invalidation (guest stores reach it through the core's slow path,
 * DMA through {@link CodeGuardMemory}), and statistics for VIREO_STATS.
 */
import type { GuestMemory } from '../../../hw/core/guest-memory.js';
import { blockModule } from './wasm.js';
import { translate, type TranslateEnv } from './translate.js';

/** Function-table slots per hart; when they run out, every hart's blocks are dropped. */
const TABLE_SLOTS = 1 << 16;
/** A page whose code was overwritten this many times is no longer translated (until a full flush). */
const MAX_REWRITES = 8;
/** Hash table entries per hart (32 bytes each). */
export const HASH_ENTRIES = 1 << 14;
export const HASH_BYTES = HASH_ENTRIES * 32;

/** What the JIT needs from a hart's core instance. */
export interface JitCore {
  jitInit(codeMap: number, hash: number, entries: number, threshold: number): void;
  jitFlush(): void;
  jitDropPage(page: number): void;
  jitDropWrite(page: number): void;
  jitLd: WebAssembly.ExportValue;
  jitSt: WebAssembly.ExportValue;
  jitMd: WebAssembly.ExportValue;
}

export interface JitStats {
  blocks: number;
  insns: number;
  wasmBytes: number;
  compileMs: number;
  invalidations: number;
  flushes: number;
}

/** The JIT state shared by the harts of one machine. */
export class Jit {
  readonly stats: JitStats = { blocks: 0, insns: 0, wasmBytes: 0, compileMs: 0, invalidations: 0, flushes: 0 };
  readonly harts: JitHart[] = [];
  private readonly codeMap: Uint8Array;
  /** For each page with code: which 2-byte granules translated blocks cover (2048 bits). */
  private readonly covered = new Map<number, Uint8Array>();

  constructor(readonly memory: WebAssembly.Memory, readonly codeMapAddr: number, readonly threshold: number) {
    this.codeMap = new Uint8Array(memory.buffer, codeMapAddr, 1 << 20);
  }

  /** True if translated code may be taken from the page at host address `page`. */
  pageUsable(page: number): boolean {
    return this.codeMap[page >>> 12] >>> 1 < MAX_REWRITES;
  }

  /** The given [offset, length] ranges of the page at host address `page` now hold translated code. */
  markCode(page: number, ranges: [number, number][]): void {
    let bits = this.covered.get(page);
    if (!bits) this.covered.set(page, (bits = new Uint8Array(256)));
    for (const [off, len] of ranges) {
      for (let g = off >>> 1; g < (off + len + 1) >>> 1; g++) bits[g >>> 3] |= 1 << (g & 7);
    }
    const i = page >>> 12;
    if (this.codeMap[i] & 1) return;
    this.codeMap[i] |= 1;
    for (const h of this.harts) h.core.jitDropWrite(page);
  }

  /**
   * Something writes host bytes [host, host + len): drop, in every hart, the blocks of
   * each page where the write overlaps translated code. Called by the core's store
   * slow path (stores to pages with code never hit the write TLB) and for DMA.
   */
  invalidate(host: number, len: number): void {
    if (len <= 0) return;
    const end = host + len;
    for (let page = host & ~0xfff; page < end; page += 0x1000) {
      const i = page >>> 12;
      if (!(this.codeMap[i] & 1)) continue;
      const bits = this.covered.get(page)!;
      const from = Math.max(host, page) - page;
      const to = Math.min(end, page + 0x1000) - page;
      let hit = false;
      for (let g = from >>> 1; g < (to + 1) >>> 1 && !hit; g++) hit = (bits[g >>> 3] & (1 << (g & 7))) !== 0;
      if (!hit) continue;
      this.codeMap[i] = Math.min(this.codeMap[i] + 2, 0xfe) & ~1;
      this.covered.delete(page);
      this.stats.invalidations++;
      for (const h of this.harts) h.core.jitDropPage(page);
    }
  }

  /** Drops every translation of every hart (and forgets rewrite counts). */
  flushAll(): void {
    this.stats.flushes++;
    this.codeMap.fill(0);
    this.covered.clear();
    for (const h of this.harts) h.flush();
  }
}

/** One hart's translated blocks: its function table and the translator entry point. */
export class JitHart {
  readonly table: WebAssembly.Table;
  private next = 1;
  core!: JitCore;
  private env!: TranslateEnv;

  constructor(readonly jit: Jit) {
    this.table = new WebAssembly.Table({ initial: TABLE_SLOTS, element: 'anyfunc' });
  }

  /** Binds to the hart's core instance once it exists and enables the dispatcher. */
  attach(core: JitCore, env: TranslateEnv, hashAddr: number): void {
    this.core = core;
    this.env = env;
    this.jit.harts.push(this);
    core.jitInit(this.jit.codeMapAddr, hashAddr, HASH_ENTRIES, this.jit.threshold);
  }

  flush(): void {
    this.core.jitFlush();
    for (let i = 1; i < this.next; i++) this.table.set(i, null);
    this.next = 1;
  }

  /** Called by the core: translate the block at pc (lo, hi) found at host address `host`. */
  translate(pcLo: number, pcHi: number, host: number): number {
    const page = host & ~0xfff;
    if (!this.jit.pageUsable(page)) return 0;
    if (this.next >= TABLE_SLOTS) this.jit.flushAll();
    const t0 = performance.now();
    const pc = (BigInt(pcHi >>> 0) << 32n) | BigInt(pcLo >>> 0);
    const block = translate(this.env, pc, host);
    if (!block) return 0;
    const bytes = blockModule([block]);
    const mod = new WebAssembly.Module(bytes);
    const core = this.core;
    const inst = new WebAssembly.Instance(mod, {
      env: { memory: this.jit.memory, ld: core.jitLd, st: core.jitSt, md: core.jitMd },
    });
    const idx = this.next++;
    this.table.set(idx, inst.exports.f0 as WebAssembly.ExportValue as never);
    this.jit.markCode(page, block.ranges);
    const s = this.jit.stats;
    s.blocks++;
    s.insns += block.count;
    s.wasmBytes += bytes.length;
    s.compileMs += performance.now() - t0;
    return (idx << 8) | block.count;
  }
}

/** GuestMemory for devices that drops translations of the pages a device may write. */
export class CodeGuardMemory implements GuestMemory {
  constructor(private readonly inner: GuestMemory, private readonly jit: Jit, private readonly base: number,
    private readonly hostBase: number) {}

  view(gpa: number, len: number): Uint8Array | null {
    const v = this.inner.view(gpa, len);
    // The device may write through the view: its pages must not keep stale code.
    if (v) this.jit.invalidate(this.hostBase + gpa - this.base, len);
    return v;
  }

  read(gpa: number, dst: Uint8Array): boolean {
    return this.inner.read(gpa, dst);
  }

  write(gpa: number, src: Uint8Array): boolean {
    const ok = this.inner.write(gpa, src);
    if (ok) this.jit.invalidate(this.hostBase + gpa - this.base, src.length);
    return ok;
  }
}
