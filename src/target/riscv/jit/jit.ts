/**
 * The host side of the JIT: per-hart function tables and translation on request of
 * the core's dispatcher (src/target/riscv/core/jit.ts), the shared map of pages
 * holding code, invalidation (guest stores reach it through the core's slow path,
 * DMA through {@link CodeGuardMemory}), and statistics for VIREO_STATS.
 */
import type { GuestMemory } from '../../../hw/core/guest-memory.js';
import { blockModule } from './wasm.js';
import { translate, type TranslateEnv, type Translated } from './translate.js';

/** Regions compiled together in one WebAssembly module (V8's cost is partly per module)... */
const BATCH = 32;
/** ...unless their code reaches this many bytes first. */
const BATCH_BYTES = 256 * 1024;
/** Function-table slots per hart; when they run out, every hart's blocks are dropped. */
const TABLE_SLOTS = 1 << 16;
/** A page whose code was overwritten this many times is no longer translated (until a full flush). */
const MAX_REWRITES = 8;
/** Hash table entries per hart (32 bytes each). */
export const HASH_ENTRIES = 1 << 16;
/** Per-hart JIT memory: the hash table, the hotness filter (64 Ki u16) and the entry bitmap (1 Mi bits); checked against the core. */
export const HASH_BYTES = HASH_ENTRIES * 32 + 65536 * 2 + (1 << 17);

/** What the JIT needs from a hart's core instance. */
export interface JitCore {
  jitInit(codeMap: number, hash: number, entries: number, threshold: number): void;
  jitHartBytes(entries: number): number;
  jitFlush(): void;
  jitDropPage(page: number): void;
  jitDropWrite(page: number): void;
  jitEnter(pcLo: number, pcHi: number, host: number, idx: number, entry: number): void;
  jitCounter(which: number): bigint;
  getInstret(): number;
  jitLd: WebAssembly.ExportValue;
  jitSt: WebAssembly.ExportValue;
  jitMd: WebAssembly.ExportValue;
  jitExec: WebAssembly.ExportValue;
}

export interface JitStats {
  /** Regions compiled. */
  regions: number;
  /** Their blocks (each an entry point). */
  blocks: number;
  /** WebAssembly modules compiled (one per batch of blocks). */
  modules: number;
  insns: number;
  wasmBytes: number;
  compileMs: number;
  invalidations: number;
  /** Stores that reached invalidate() (slow-path stores to pages with code, device writes). */
  codeWrites: number;
  /** Translation requests answered with an already compiled region block. */
  reused: number;
  flushes: number;
}

/** The JIT state shared by the harts of one machine. */
export class Jit {
  readonly stats: JitStats = { regions: 0, blocks: 0, modules: 0, insns: 0, wasmBytes: 0, compileMs: 0, invalidations: 0, codeWrites: 0, reused: 0, flushes: 0 };
  readonly harts: JitHart[] = [];
  private readonly codeMap: Uint8Array;
  /** For each page with code: which 2-byte granules translated blocks cover (2048 bits). */
  private readonly covered = new Map<number, Uint8Array>();

  /** `threshold`: taken jumps to a pc (counted in a hashed filter, 1..65535) before it is translated. */
  constructor(readonly memory: WebAssembly.Memory, readonly codeMapAddr: number, readonly threshold: number) {
    this.threshold = Math.max(1, Math.min(65535, Math.floor(threshold) || 1));
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

  /** Counters kept by the harts' dispatchers: region calls, instructions run in regions, interpreter runs. */
  counters(): { calls: bigint; insns: bigint; runs: bigint } {
    let calls = 0n, insns = 0n, runs = 0n;
    for (const h of this.harts) {
      calls += h.core.jitCounter(0);
      insns += h.core.jitCounter(1);
      runs += h.core.jitCounter(2);
    }
    return { calls, insns, runs };
  }

  /** The statistics as HMP `info jit` prints them. */
  report(): string {
    const s = this.stats;
    const c = this.counters();
    const total = this.harts.reduce((n, h) => n + h.instret(), 0);
    const pct = (a: number, b: number): string => (b > 0 ? `${(100 * a / b).toFixed(1)}%` : '-');
    return [
      'Translation state:',
      `regions            ${s.regions} (${s.blocks} blocks, ${s.insns} guest instructions)`,
      `wasm modules       ${s.modules}, ${s.wasmBytes} bytes (${s.insns > 0 ? (s.wasmBytes / s.insns).toFixed(0) : 0} per guest instruction)`,
      `translation time   ${s.compileMs.toFixed(0)} ms (translator, V8 compile and instantiate)`,
      `hot threshold      ${this.threshold} taken jumps`,
      `invalidations      ${s.invalidations} pages (${s.codeWrites} writes to code pages), ${s.flushes} full flushes`,
      'Execution:',
      `region calls       ${c.calls} (${c.calls > 0n ? (Number(c.insns) / Number(c.calls)).toFixed(1) : 0} instructions per call)`,
      `in regions         ${c.insns} instructions (${pct(Number(c.insns), total)} of ${total})`,
      `interpreter runs   ${c.runs}`,
      '',
    ].join('\n');
  }

  /** Drops every translation of every hart (and forgets rewrite counts). */
  flushAll(): void {
    this.stats.flushes++;
    this.codeMap.fill(0);
    this.covered.clear();
    for (const h of this.harts) h.flush();
  }
}

/** One hart's translated regions: its function table and the translator entry point. */
export class JitHart {
  readonly table: WebAssembly.Table;
  private next = 1;
  core!: JitCore;
  private env!: TranslateEnv;

  constructor(readonly jit: Jit) {
    this.table = new WebAssembly.Table({ initial: TABLE_SLOTS, element: 'anyfunc' });
  }

  /** Instructions this hart retired. */
  instret(): number {
    return this.core.getInstret();
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
   * Entry points of the compiled regions, by host address: the core's hash table is
   * direct-mapped, so an evicted entry is found here again instead of being recompiled.
   */
  private readonly known = new Map<number, { lo: number; hi: number; idx: number; entry: number }[]>();

  /** Block starts of the live (compiled or queued) regions of each guest page, by `pageKey`. */
  private readonly starts = new Map<string, Set<number>>();

  private static pageKey(page: number, lo: number, hi: number): string {
    return `${page}/${lo}/${hi}`;
  }

  flush(): void {
    this.core.jitFlush();
    for (let i = 1; i < this.next; i++) this.table.set(i, null);
    this.next = 1;
    this.known.clear();
    this.starts.clear();
    this.pending = [];
    this.pendingBytes = 0;
  }

  dropPage(page: number): void {
    this.core.jitDropPage(page);
    for (let h = page; h < page + 0x1000; h += 2) this.known.delete(h);
    for (const k of this.starts.keys()) if (k.startsWith(`${page}/`)) this.starts.delete(k);
    this.pending = this.pending.filter((p) => p.page !== page);
  }

  /** Regions translated but not compiled yet: they are compiled together, one module per batch. */
  private pending: { lo: number; hi: number; page: number; region: Translated }[] = [];
  private pendingBytes = 0;

  /** Enters the known region block at pc (lo, hi), host `host`, in the core's hash table; false if there is none. */
  private enter(lo: number, hi: number, host: number): boolean {
    const k = this.known.get(host)?.find((b) => b.lo === lo && b.hi === hi);
    if (!k) return false;
    this.core.jitEnter(lo, hi, host, k.idx, k.entry);
    return true;
  }

  /**
   * Called by the core when the pc (lo, hi), host address `host`, is hot. Returns 1 if
   * a region block starting there is now in the core's hash table, 0 if it cannot be
   * translated, or -1 if its region is queued (the core asks again later). A batch is
   * compiled when it is big enough or when a queued region is asked for again.
   */
  translate(pcLo: number, pcHi: number, host: number): number {
    pcLo >>>= 0; // the core passes i32 halves
    host >>>= 0;
    if (this.enter(pcLo, pcHi, host)) {
      this.jit.stats.reused++;
      return 1;
    }
    const page = host & ~0xfff;
    const lo = (pcLo & ~0xfff) >>> 0;
    const off = pcLo & 0xfff;
    if (this.pending.some((p) => p.page === page && p.lo === lo && p.hi === pcHi && p.region.starts.includes(off))) {
      this.compile();
      return this.enter(pcLo, pcHi, host) ? 1 : -1;
    }
    if (!this.jit.pageUsable(page)) return 0;
    const t0 = performance.now();
    const key = JitHart.pageKey(page, lo, pcHi);
    let taken = this.starts.get(key);
    const region = translate(this.env, lo, pcHi, page, off, taken ?? new Set());
    this.jit.stats.compileMs += performance.now() - t0;
    if (!region) return 0;
    if (!taken) this.starts.set(key, (taken = new Set()));
    for (const o of region.starts) taken.add(o);
    // From now on, writes to this code drop the queued region too.
    this.jit.markCode(page, region.ranges);
    this.pending.push({ lo, hi: pcHi, page, region });
    this.pendingBytes += region.code.len;
    if (this.pending.length < BATCH && this.pendingBytes < BATCH_BYTES) return -1;
    this.compile();
    return this.enter(pcLo, pcHi, host) ? 1 : -1;
  }

  /** Compiles the queued regions into one module, puts them in the table and enters their blocks. */
  private compile(): void {
    if (this.pending.length === 0) return;
    if (this.next + this.pending.length >= TABLE_SLOTS) {
      this.jit.flushAll(); // drops the queue too
      return;
    }
    const t0 = performance.now();
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const bytes = blockModule(batch.map((p) => p.region));
    const core = this.core;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory: this.jit.memory, ld: core.jitLd, st: core.jitSt, md: core.jitMd, ex: core.jitExec },
    });
    const s = this.jit.stats;
    batch.forEach((p, i) => {
      const idx = this.next++;
      this.table.set(idx, inst.exports[`f${i}`] as never);
      p.region.starts.forEach((off, entry) => {
        const host = p.page + off;
        const lo = p.lo + off;
        const list = this.known.get(host);
        if (list) list.push({ lo, hi: p.hi, idx, entry });
        else this.known.set(host, [{ lo, hi: p.hi, idx, entry }]);
        this.core.jitEnter(lo, p.hi, host, idx, entry);
      });
      s.blocks += p.region.starts.length;
      s.regions++;
      s.insns += p.region.count;
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
