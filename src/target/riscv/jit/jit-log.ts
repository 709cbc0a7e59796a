/**
 * The JIT's invalidation log for harts on several threads (`-accel tcg,thread=multi`),
 * in the shared memory. Each thread has its own function table and translations; what
 * one thread does to the shared code map, the others learn from the log:
 *
 * - INVALIDATE page: a hart's store (or a device's write) hit a page with code: every
 *   hart drops its translations of the page;
 * - MARK page: a hart is about to translate the page: every hart drops it from its write
 *   TLBs, so that its stores there take the slow path (which invalidates);
 * - FLUSH: every hart drops all its translations (the code map was cleared).
 *
 * Appending (under a spin lock, which also orders the code map updates) bumps the entry
 * count `gen`; each hart applies the entries between its `seen` count and `gen` whenever
 * its dispatcher looks at a pc (core/jit.ts), then publishes the new `seen`. A hart that
 * falls more than RING entries behind drops everything instead. A hart that translates a
 * page reads its code only once every other running hart has applied the MARK (so no
 * store can still reach the page without the slow path, and every earlier store is
 * visible); a hart that sleeps or is stopped says so (`active` 0) and applies the log
 * before it runs again.
 */

/** Entries in the ring (a power of 2). */
const RING = 4096;
/** Harts the log has room for (at least MAX_HARTS of cpu.ts). */
const HARTS = 16;
/** Statistics slots per hart (see {@link JitLog.stats}). */
export const STAT_SLOTS = 16;

// Int32 word indexes.
const GEN = 0;
const LOCK = 1;
const SEEN = 16;
const ACTIVE = SEEN + HARTS;
const ENTRIES = ACTIVE + HARTS;
const STATS_BYTE = (ENTRIES + RING) * 4;

/** Bytes of shared memory the log takes. */
export const JIT_LOG_BYTES = STATS_BYTE + HARTS * STAT_SLOTS * 8;

export const enum LogEntry {
  Invalidate = 0,
  Mark = 1,
  Flush = 2,
}

export class JitLog {
  private readonly words: Int32Array;
  /** Per hart, STAT_SLOTS numbers its thread publishes for `info jit` and VIREO_STATS. */
  readonly stats: Float64Array;

  /** `hart`: the hart whose thread this is, or -1 on the main thread (it runs no guest code). */
  constructor(memory: WebAssembly.Memory, readonly addr: number, readonly harts: number, readonly hart: number) {
    if (harts > HARTS) throw new RangeError(`the JIT log has room for ${HARTS} harts`);
    this.words = new Int32Array(memory.buffer, addr, ENTRIES + RING);
    this.stats = new Float64Array(memory.buffer, addr + STATS_BYTE, HARTS * STAT_SLOTS);
  }

  /** Host addresses of the entry count and of this hart's `seen` (for the core's dispatcher). */
  get genAddr(): number {
    return this.addr + GEN * 4;
  }

  get seenAddr(): number {
    return this.addr + (SEEN + this.hart) * 4;
  }

  /**
   * Runs `update` (changes of the code map) and appends the entry it returns, if any,
   * atomically with respect to the other threads; returns the entry count after it.
   */
  append(update: () => number | null): number {
    const w = this.words;
    while (Atomics.compareExchange(w, LOCK, 0, 1) !== 0);
    try {
      const entry = update();
      const gen = w[GEN]!;
      if (entry === null) return gen;
      w[ENTRIES + (gen & (RING - 1))] = entry;
      Atomics.store(w, GEN, (gen + 1) | 0);
      return (gen + 1) | 0;
    } finally {
      Atomics.store(w, LOCK, 0);
    }
  }

  /** True once every other hart has applied the entries before `gen` or sleeps. */
  seenByAll(gen: number): boolean {
    const w = this.words;
    for (let h = 0; h < this.harts; h++) {
      if (h === this.hart || Atomics.load(w, ACTIVE + h) === 0) continue;
      if (((Atomics.load(w, SEEN + h) - gen) | 0) < 0) return false;
    }
    return true;
  }

  /** True if this hart has applied every entry. */
  upToDate(): boolean {
    return Atomics.load(this.words, GEN) === this.words[SEEN + this.hart];
  }

  /** This hart runs guest code (true: it applies the log first, see the class comment) or sleeps. */
  setActive(active: boolean): void {
    Atomics.store(this.words, ACTIVE + this.hart, active ? 1 : 0);
  }

  /**
   * Calls `apply` for each entry this hart has not applied yet, in order, with the entry
   * count after it, and publishes them as applied. Returns false if some were lost (the
   * hart fell more than RING entries behind): the hart must drop everything.
   */
  catchUp(apply: (kind: LogEntry, page: number, gen: number) => void): boolean {
    const w = this.words;
    const seen = w[SEEN + this.hart]!;
    const gen = Atomics.load(w, GEN);
    let complete = ((gen - seen) >>> 0) <= RING;
    for (let g = seen; complete && g !== gen; g = (g + 1) | 0) {
      const e = w[ENTRIES + (g & (RING - 1))]!;
      apply(e & 3, e & ~0xfff, (g + 1) | 0);
    }
    // Appenders may have overwritten entries while they were read.
    complete &&= ((Atomics.load(w, GEN) - seen) >>> 0) <= RING;
    Atomics.store(w, SEEN + this.hart, gen);
    return complete;
  }
}
