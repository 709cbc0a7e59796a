/**
 * The host side of the JIT: per-hart function tables and translation on request of
 * the core's dispatcher (src/target/riscv/core/jit.ts), the shared map of pages
 * holding code, invalidation (guest stores reach it through the core's slow path,
 * DMA through {@link CodeGuardMemory}), and statistics for VIREO_STATS.
 */
import type { GuestMemory } from '../../../hw/core/guest-memory.js';
import { blockModule } from './wasm.js';
import { translate, type TranslateEnv, type Translated } from './translate.js';

/** Blocks compiled together in one WebAssembly module (V8's cost is mostly per module). */
const BATCH = 64;
/** Function-table slots per hart; when they run out, every hart's blocks are dropped. */
const TABLE_SLOTS = 1 << 16;
/** A page whose code was overwritten this many times is no longer translated (until a full flush). */
const MAX_REWRITES = 8;
/** Hash table entries per hart (32 bytes each). */
export const HASH_ENTRIES = 1 << 16;
/** Per-hart JIT memory: the hash table and the 64 KiB hotness filter (checked against the core). */
export const HASH_BYTES = HASH_ENTRIES * 32 + 65536;

/** What the JIT needs from a hart's core instance. */
export interface JitCore {
  jitInit(codeMap: number, hash: number, entries: number, threshold: number): void;
  jitHartBytes(entries: number): number;
  jitFlush(): void;
  jitDropPage(page: number): void;
  jitDropWrite(page: number): void;
  jitLd: WebAssembly.ExportValue;
  jitSt: WebAssembly.ExportValue;
  jitMd: WebAssembly.ExportValue;
}

export interface JitStats {
  blocks: number;
  /** WebAssembly modules compiled (one per batch of blocks). */
  modules: number;
  insns: number;
  wasmBytes: number;
  compileMs: number;
  invalidations: number;
  /** Stores that reached invalidate() (slow-path stores to pages with code, device writes). */
  codeWrites: number;
  /** Translation requests answered with an already compiled block. */
  reused: number;
  flushes: number;
}

/** The JIT state shared by the harts of one machine. */
export class Jit {
  readonly stats: JitStats = { blocks: 0, modules: 0, insns: 0, wasmBytes: 0, compileMs: 0, invalidations: 0, codeWrites: 0, reused: 0, flushes: 0 };
  readonly harts: JitHart[] = [];
  private readonly codeMap: Uint8Array;
  /** For each page with code: which 2-byte granules translated blocks cover (2048 bits). */
  private readonly covered = new Map<number, Uint8Array>();

  /** `threshold`: taken jumps to a pc (counted in a hashed filter, 1..255) before it is translated. */
  constructor(readonly memory: WebAssembly.Memory, readonly codeMapAddr: number, readonly threshold: number) {
    this.threshold = Math.max(1, Math.min(255, Math.floor(threshold) || 1));
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
    this.stats.codeWrites++;
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
      for (const h of this.harts) h.dropPage(page);
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
    if (core.jitHartBytes(HASH_ENTRIES) !== HASH_BYTES) throw new Error('JIT hart memory size differs from the core');
    core.jitInit(this.jit.codeMapAddr, hashAddr, HASH_ENTRIES, this.jit.threshold);
  }

  /**
   * Blocks already compiled, by host address of their start: the core's hash table is
   * direct-mapped, so an evicted block is found here again instead of being recompiled.
   */
  private readonly known = new Map<number, { lo: number; hi: number; result: number }[]>();

  flush(): void {
    this.core.jitFlush();
    for (let i = 1; i < this.next; i++) this.table.set(i, null);
    this.next = 1;
    this.known.clear();
    this.pending = [];
  }

  dropPage(page: number): void {
    this.core.jitDropPage(page);
    for (let h = page; h < page + 0x1000; h += 2) this.known.delete(h);
    this.pending = this.pending.filter((p) => p.page !== page);
  }

  /** Blocks decoded but not compiled yet: they are compiled together, one module per batch. */
  private pending: { lo: number; hi: number; host: number; page: number; block: Translated }[] = [];

  /**
   * Called by the core when the block at pc (lo, hi), host address `host`, is hot.
   * Returns table index << 8 | most instructions per call, 0 if it cannot be translated,
   * or -1 if it is queued (the core asks again later). A batch is compiled when it is
   * full or when a queued block is asked for again.
   */
  translate(pcLo: number, pcHi: number, host: number): number {
    const found = (): number | undefined => this.known.get(host)?.find((b) => b.lo === pcLo && b.hi === pcHi)?.result;
    const seen = found();
    if (seen !== undefined) {
      this.jit.stats.reused++;
      return seen;
    }
    if (this.pending.some((p) => p.host === host && p.lo === pcLo && p.hi === pcHi)) {
      this.compile();
      return found() ?? -1;
    }
    const page = host & ~0xfff;
    if (!this.jit.pageUsable(page)) return 0;
    const t0 = performance.now();
    const pc = (BigInt(pcHi >>> 0) << 32n) | BigInt(pcLo >>> 0);
    const block = translate(this.env, pc, host);
    this.jit.stats.compileMs += performance.now() - t0;
    if (!block) return 0;
    // From now on, writes to this code drop the queued block too.
    this.jit.markCode(page, block.ranges);
    this.pending.push({ lo: pcLo, hi: pcHi, host, page, block });
    if (this.pending.length < BATCH) return -1;
    this.compile();
    return found() ?? -1;
  }

  /** Compiles the queued blocks into one module and enters them in the table. */
  private compile(): void {
    if (this.pending.length === 0) return;
    if (this.next + this.pending.length >= TABLE_SLOTS) {
      this.jit.flushAll(); // drops the queue too
      return;
    }
    const t0 = performance.now();
    const batch = this.pending;
    this.pending = [];
    const bytes = blockModule(batch.map((p) => p.block));
    const core = this.core;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory: this.jit.memory, ld: core.jitLd, st: core.jitSt, md: core.jitMd },
    });
    const s = this.jit.stats;
    batch.forEach((p, i) => {
      const idx = this.next++;
      this.table.set(idx, inst.exports[`f${i}`] as never);
      const result = (idx << 8) | p.block.maxRun;
      const list = this.known.get(p.host);
      if (list) list.push({ lo: p.lo, hi: p.hi, result });
      else this.known.set(p.host, [{ lo: p.lo, hi: p.hi, result }]);
      s.blocks++;
      s.insns += p.block.count;
    });
    s.modules++;
    s.wasmBytes += bytes.length;
    s.compileMs += performance.now() - t0;
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

  markDirty(gpa: number, len: number): void {
    this.inner.markDirty(gpa, len);
  }
}
