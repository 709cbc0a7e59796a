/**
 * The host side of the JIT: per-hart function tables and translation on request of
 * the core's dispatcher (src/target/riscv/core/jit.ts), the shared map of pages
 * holding code, invalidation (guest stores reach it through the core's slow path,
 * DMA through {@link CodeGuardMemory}; other hart threads through the log of
 * jit-log.ts), and statistics for VIREO_STATS.
 */
import type { GuestMemory } from '../../../hw/core/guest-memory.js';
import { blockModule, chainModule, HELPERS } from './wasm.js';
import { translate, type TranslateEnv, type Translated } from './translate.js';
import { JitLog, LogEntry, STAT_SLOTS } from './jit-log.js';

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
  jitShare(gen: number, seen: number): void;
  jitHartBytes(entries: number): number;
  jitFlush(): void;
  jitDropPage(page: number): void;
  jitDropWrite(page: number): void;
  jitEnter(pcLo: number, pcHi: number, host: number, idx: number, entry: number): void;
  jitCounter(which: number): bigint;
  getInstret(): number;
  flushWriteTlb(): void;
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

const STAT_KEYS = ['regions', 'blocks', 'modules', 'insns', 'wasmBytes', 'compileMs', 'invalidations', 'codeWrites', 'reused', 'flushes'] as const;
/** Slots after the JitStats ones in a hart's statistics in the log: the dispatcher counters and instret. */
const SLOT_CALLS = STAT_KEYS.length;
const SLOT_INSNS = SLOT_CALLS + 1;
const SLOT_RUNS = SLOT_CALLS + 2;
const SLOT_INSTRET = SLOT_CALLS + 3;

/**
 * The JIT state of the harts on one thread: all of a machine's harts with
 * thread=single; with thread=multi, one hart on each hart thread, and none on the main
 * thread (where devices write guest RAM), all sharing the code map and a {@link JitLog}.
 */
export class Jit {
  readonly stats: JitStats = { regions: 0, blocks: 0, modules: 0, insns: 0, wasmBytes: 0, compileMs: 0, invalidations: 0, codeWrites: 0, reused: 0, flushes: 0 };
  readonly harts: JitHart[] = [];
  private readonly codeMap: Uint8Array;
  /** For each page with code: which 2-byte granules translated blocks cover (2048 bits; without a log only). */
  private readonly covered = new Map<number, Uint8Array>();
  /**
   * With a log: the pages marked as code, with the log's entry count after their MARK
   * (the hart may read their code once every other hart has applied it).
   */
  private readonly marks = new Map<number, number>();
  /** With a log, on a hart thread: the dispatcher counters of the hart's earlier threads (a core instance starts at 0). */
  private readonly counterBase = { calls: 0n, insns: 0n, runs: 0n };

  /**
   * `threshold`: guest instructions run from a jump target (counted in a hashed filter,
   * 1..65535; see core/jitmap.ts hotJump) before it is translated; `log`: the invalidation log when harts run on several threads.
   */
  constructor(readonly memory: WebAssembly.Memory, readonly codeMapAddr: number, readonly threshold: number,
    readonly log: JitLog | null = null) {
    this.threshold = Math.max(1, Math.min(65535, Math.floor(threshold) || 1));
    this.codeMap = new Uint8Array(memory.buffer, codeMapAddr, 1 << 20);
    if (log && log.hart >= 0) {
      // A new thread of the hart goes on counting where the last one stopped.
      const slots = this.hartStats(log.hart);
      STAT_KEYS.forEach((k, i) => { this.stats[k] = slots[i]!; });
      this.counterBase = { calls: BigInt(slots[SLOT_CALLS]!), insns: BigInt(slots[SLOT_INSNS]!), runs: BigInt(slots[SLOT_RUNS]!) };
    }
  }

  private hartStats(hart: number): Float64Array {
    return this.log!.stats.subarray(hart * STAT_SLOTS, (hart + 1) * STAT_SLOTS);
  }

  /** True if translated code may be taken from the page at host address `page`. */
  pageUsable(page: number): boolean {
    return this.codeMap[page >>> 12] >>> 1 < MAX_REWRITES;
  }

  /**
   * With a log: true if the hart may translate code of the page at host address `page`
   * now; otherwise marks the page as code if needed (the hart asks again later).
   */
  codeReady(page: number): boolean {
    const log = this.log;
    if (!log) return true;
    // What this hart knows of the page's marks is only complete once it has applied the whole log.
    if (!log.upToDate()) return false;
    const i = page >>> 12;
    const gen = this.marks.get(page);
    if (gen !== undefined && this.codeMap[i]! & 1) return log.seenByAll(gen);
    let usable = true;
    const marked = log.append(() => {
      usable = this.pageUsable(page);
      if (!usable) return null;
      this.codeMap[i]! |= 1;
      return page | LogEntry.Mark;
    });
    if (!usable) return false;
    this.marks.set(page, marked);
    for (const h of this.harts) h.core.jitDropWrite(page);
    return false;
  }

  /** The given [offset, length] ranges of the page at host address `page` now hold translated code. */
  markCode(page: number, ranges: [number, number][]): void {
    if (this.log) return; // marked by codeReady(); invalidation is by whole pages
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
    if (this.log) {
      for (let page = host & ~0xfff; page < end; page += 0x1000) this.invalidatePage(page, this.log);
      return;
    }
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

  /**
   * With a log: drops the page's translations in every hart (other threads through the
   * log: the writer cannot know which bytes their blocks cover).
   */
  private invalidatePage(page: number, log: JitLog): void {
    const i = page >>> 12;
    if (!(this.codeMap[i]! & 1)) return;
    let hit = false;
    log.append(() => {
      hit = (this.codeMap[i]! & 1) !== 0;
      if (!hit) return null;
      this.codeMap[i] = Math.min(this.codeMap[i]! + 2, 0xfe) & ~1;
      return page | LogEntry.Invalidate;
    });
    if (!hit) return;
    this.stats.invalidations++;
    this.marks.delete(page);
    for (const h of this.harts) h.dropPage(page);
  }

  /**
   * With a log, on a hart thread: applies the entries other threads appended (the core's
   * dispatcher asks through jit_sync when there are new ones).
   */
  sync(): void {
    const complete = this.log!.catchUp((kind, page, gen) => {
      if (kind === LogEntry.Mark) {
        this.marks.set(page, gen);
        for (const h of this.harts) h.core.jitDropWrite(page);
        return;
      }
      if (kind === LogEntry.Invalidate) {
        if ((((this.marks.get(page) ?? gen) - gen) | 0) < 0) this.marks.delete(page);
        for (const h of this.harts) h.dropPage(page);
      } else {
        this.flushHarts();
      }
    });
    if (complete) return;
    // Lost entries may have marked pages still in the write TLBs.
    this.stats.flushes++;
    this.flushHarts();
    for (const h of this.harts) h.core.flushWriteTlb();
  }

  /** Drops every translation of this thread's harts (the code map stays). */
  flushHarts(): void {
    this.marks.clear();
    for (const h of this.harts) h.flush();
  }

  /** With a log, on a hart thread: publishes this thread's statistics (see {@link totals}). */
  publishStats(): void {
    const h = this.harts[0]!;
    const slots = this.hartStats(this.log!.hart);
    STAT_KEYS.forEach((k, i) => { slots[i] = this.stats[k]; });
    slots[SLOT_CALLS] = Number(this.counterBase.calls + h.core.jitCounter(0));
    slots[SLOT_INSNS] = Number(this.counterBase.insns + h.core.jitCounter(1));
    slots[SLOT_RUNS] = Number(this.counterBase.runs + h.core.jitCounter(2));
    slots[SLOT_INSTRET] = h.instret();
  }

  /** The statistics of every hart: with a log (on the main thread), its own plus those the hart threads published. */
  totals(): JitStats {
    const t = { ...this.stats };
    if (this.log) {
      for (let h = 0; h < this.log.harts; h++) {
        const slots = this.hartStats(h);
        STAT_KEYS.forEach((k, i) => { t[k] += slots[i]!; });
      }
    }
    return t;
  }

  /** Counters kept by the harts' dispatchers: region calls, instructions run in regions, interpreter runs. */
  counters(): { calls: bigint; insns: bigint; runs: bigint } {
    if (this.log) {
      let calls = 0, insns = 0, runs = 0;
      for (let h = 0; h < this.log.harts; h++) {
        const slots = this.hartStats(h);
        calls += slots[SLOT_CALLS]!;
        insns += slots[SLOT_INSNS]!;
        runs += slots[SLOT_RUNS]!;
      }
      return { calls: BigInt(calls), insns: BigInt(insns), runs: BigInt(runs) };
    }
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
    const s = this.totals();
    const c = this.counters();
    const total = this.log
      ? Array.from({ length: this.log.harts }, (_, h) => this.hartStats(h)[SLOT_INSTRET]!).reduce((n, v) => n + v, 0)
      : this.harts.reduce((n, h) => n + h.instret(), 0);
    const pct = (a: number, b: number): string => (b > 0 ? `${(100 * a / b).toFixed(1)}%` : '-');
    return [
      'Translation state:',
      `regions            ${s.regions} (${s.blocks} blocks, ${s.insns} guest instructions)`,
      `wasm modules       ${s.modules}, ${s.wasmBytes} bytes (${s.insns > 0 ? (s.wasmBytes / s.insns).toFixed(0) : 0} per guest instruction)`,
      `translation time   ${s.compileMs.toFixed(0)} ms (translator, V8 compile and instantiate)`,
      `hot threshold      ${this.threshold} instructions from a jump target`,
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
    if (this.log) {
      this.log.append(() => {
        this.codeMap.fill(0);
        return LogEntry.Flush;
      });
    } else {
      this.codeMap.fill(0);
      this.covered.clear();
    }
    this.flushHarts();
  }
}

/** One hart's translated regions: its function table and the translator entry point. */
export class JitHart {
  readonly table: WebAssembly.Table;
  /** The helper through which regions tail-call each other (wasm.ts chainModule). */
  private readonly chain: WebAssembly.ExportValue;
  /** The functions regions call, in wasm.ts HELPERS order (filled by attach()). */
  private readonly helpers = new WebAssembly.Table({ initial: HELPERS.length, element: 'anyfunc' });
  private next = 1;
  core!: JitCore;
  private env!: TranslateEnv;

  constructor(readonly jit: Jit) {
    this.table = new WebAssembly.Table({ initial: TABLE_SLOTS, element: 'anyfunc' });
    this.chain = new WebAssembly.Instance(new WebAssembly.Module(chainModule()), { env: { table: this.table } }).exports.chain!;
  }

  /** Instructions this hart retired. */
  instret(): number {
    return this.core.getInstret();
  }

  /** Binds to the hart's core instance once it exists and enables the dispatcher. */
  attach(core: JitCore, env: Omit<TranslateEnv, 'hashBase' | 'hashMask' | 'filter'>, hashAddr: number): void {
    this.core = core;
    [core.jitLd, core.jitSt, core.jitMd, core.jitExec, this.chain].forEach((f, i) => this.helpers.set(i, f as never));
    // The hotness filter follows the hash table (core/jit.ts jitInit).
    this.env = { ...env, hashBase: hashAddr, hashMask: HASH_ENTRIES - 1, filter: hashAddr + HASH_ENTRIES * 32 };
    this.jit.harts.push(this);
    if (core.jitHartBytes(HASH_ENTRIES) !== HASH_BYTES) throw new Error('JIT hart memory size differs from the core');
    core.jitInit(this.jit.codeMapAddr, hashAddr, HASH_ENTRIES, this.jit.threshold);
    const log = this.jit.log;
    if (log) core.jitShare(log.genAddr, log.seenAddr);
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
    if (!this.jit.codeReady(page)) return this.jit.pageUsable(page) ? -1 : 0;
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
    this.pendingBytes += region.code.length;
    if (this.pending.length < BATCH && this.pendingBytes < BATCH_BYTES) return -1;
    this.compile();
    return this.enter(pcLo, pcHi, host) ? 1 : -1;
  }

  /** Compiles the queued regions into one module, puts them in the table and enters their blocks. */
  private compile(): void {
    if (this.pending.length === 0) return;
    if (this.next + this.pending.length >= TABLE_SLOTS) {
      // Drops the queue too. The other threads' tables are their own.
      if (this.jit.log) {
        this.jit.stats.flushes++;
        this.jit.flushHarts();
      } else {
        this.jit.flushAll();
      }
      return;
    }
    const t0 = performance.now();
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const bytes = blockModule(batch.map((p) => p.region));
    const core = this.core;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory: this.jit.memory, helpers: this.helpers },
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

  readView(gpa: number, len: number): Uint8Array | null {
    return this.inner.readView(gpa, len);
  }

  contains(gpa: number, len: number): boolean {
    return this.inner.contains(gpa, len);
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
    // A device marks what it wrote through a view: with hart threads, one of them may have
    // translated the page again since view(), from the bytes before the write.
    if (this.jit.log) this.jit.invalidate(this.hostBase + gpa - this.base, len);
  }
}
