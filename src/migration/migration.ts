/**
 * Live migration (QEMU's migration/migration.c and ram.c, pre-copy): the source sends all
 * of RAM while the guest runs, then, pass after pass, the pages the guest wrote meanwhile
 * (the board's dirty map: the vCPUs mark the pages they store to, devices the pages they
 * DMA into), until what is left would go over in less than the downtime limit; then it
 * stops the vCPUs, lets in-flight device requests finish, and sends the last pages and
 * the machine state (stop-and-copy). The destination (-incoming) loads them, answers, and
 * runs the guest on. The stream format is in migration-stream.ts, the user's view in
 * docs/migration.md.
 */
import type { Socket } from 'node:net';
import type { RunState } from '../monitor/machine-control.js';
import {
  PAGE, Rec, MigrationError, RecordWriter, StreamReader, connectTo, listenAt, parseMigrationUri,
} from './migration-stream.js';
import { SnapshotError } from './vmstate.js';

const FORMAT = 'vireo-migration-1';
/** Pages per Pages record (1 MiB of data). */
const BATCH = 256;
/** Passes after which the source stops the guest whatever is left (the guest dirties RAM faster than it can be sent). */
const MAX_PASSES = 30;
const ZERO_PAGE = Buffer.alloc(PAGE);
/** Pages the first pass checks at once for zeros (most of an idle guest's RAM is). */
const ZERO_RUN = 64;
const ZERO_RUN_BYTES = Buffer.alloc(ZERO_RUN * PAGE);
/** How long a failed destination waits for the source, told why, to hang up before it closes anyway. */
const SOURCE_HANGUP_MS = 10_000;

/** The machine as migration sees it (the board supplies it). */
export interface MigrationMachine {
  /**
   * Guest RAM. On a destination it must be all zeros until the migration writes it (the
   * board loads no boot images into a machine that waits for one).
   */
  readonly ram: Uint8Array;
  /** One byte per page of RAM, set to 1 when the page is written. */
  readonly dirty: Uint8Array;
  /** Drops the vCPUs' write TLB entries, so that their next store to each page marks it again. */
  flushWriteTlbs(): Promise<void>;
  /** Throws (a SnapshotError) when the machine has state that cannot be migrated. */
  check(): void;
  /** Resolves once no device request is in flight (the vCPUs are stopped). */
  drain(): Promise<void>;
  /** Source: makes what the guest wrote to its disks durable, for the destination to read. */
  flushDisks(): Promise<void>;
  /** Destination: opens the disks again (the source wrote them until it stopped). */
  reopenDisks(): Promise<void>;
  /** What both sides must agree on before any page is sent (machine type, vCPUs, RAM, devices). */
  config(): Record<string, unknown>;
  /** The machine state without RAM (vCPUs stopped). */
  saveState(): Uint8Array;
  /** Loads what saveState() gave on the source; throws SnapshotError when it does not fit. */
  loadState(data: Uint8Array): void;
}

/** QEMU's MigrationStatus values Vireo goes through. */
export type MigrationStatus = 'none' | 'setup' | 'active' | 'device' | 'completed' | 'failed' | 'cancelling' | 'cancelled';

/** migrate-set-parameters: downtime-limit in ms (QEMU's default 300), max-bandwidth in bytes per second (0: no limit). */
export interface MigrationParameters {
  'downtime-limit': number;
  'max-bandwidth': number;
}

interface Stats {
  start: number;
  /** When the source stopped the guest for the last copy. */
  stopAt: number;
  setupTime: number;
  totalTime: number;
  downtime: number;
  expectedDowntime: number;
  transferred: number;
  normal: number;
  duplicate: number;
  passes: number;
  /** Dirty map syncs after the first pass started. */
  syncs: number;
  remaining: number;
  precopyBytes: number;
  downtimeBytes: number;
}

function newStats(): Stats {
  return { start: performance.now(), stopAt: 0, setupTime: 0, totalTime: 0, downtime: 0, expectedDowntime: 0, transferred: 0,
    normal: 0, duplicate: 0, passes: 0, syncs: 0, remaining: 0, precopyBytes: 0, downtimeBytes: 0 };
}

/**
 * Takes the dirty map's marks (clearing them), then has the vCPUs drop their write TLB
 * entries. In that order no write is missed: a vCPU still writing through an old entry
 * writes to a page whose mark was set when the entry was made, and so is in what was
 * taken; the page is read after the flush, so the write is in what is sent.
 */
async function takeDirty(m: MigrationMachine): Promise<number[]> {
  const map = m.dirty;
  const pages: number[] = [];
  const whole = map.length & ~3;
  const words = new Uint32Array(map.buffer, map.byteOffset, whole / 4);
  for (let w = 0; w < words.length; w++) {
    if (words[w] === 0) continue;
    const v = Atomics.exchange(words, w, 0);
    for (let b = 0; b < 4; b++) if ((v >>> (8 * b)) & 0xff) pages.push(w * 4 + b);
  }
  for (let p = whole; p < map.length; p++) if (Atomics.exchange(map, p, 0)) pages.push(p);
  await m.flushWriteTlbs();
  return pages;
}

export class Migration {
  status: MigrationStatus = 'none';
  private error: string | null = null;
  private stats = newStats();
  readonly capabilities = { events: false };
  readonly parameters: MigrationParameters = { 'downtime-limit': 300, 'max-bandwidth': 0 };
  private socket: Socket | null = null;
  private cancelled = false;
  /** Set by the board: an incoming migration failed (QEMU exits). */
  onIncomingFailed: ((why: string) => void) | null = null;

  /**
   * @param machine the machine now running (a new one after a guest reset)
   * @param autostart whether the destination runs the guest once it arrived (not with -S)
   */
  constructor(private readonly runState: RunState, private readonly machine: () => MigrationMachine,
    private readonly autostart: boolean) {}

  private setStatus(s: MigrationStatus): void {
    this.status = s;
    if (this.capabilities.events) this.runState.emit('MIGRATION', { status: s });
  }

  private get busy(): boolean {
    return this.status === 'setup' || this.status === 'active' || this.status === 'device' || this.status === 'cancelling';
  }

  /** Starts migrating to `uri` (tcp:HOST:PORT or unix:PATH); progress is in {@link info}. */
  start(uri: string): void {
    if (this.busy) throw new MigrationError('There\'s a migration process in progress');
    if (this.runState.status === 'inmigrate') throw new MigrationError('the guest waits for an incoming migration');
    const addr = parseMigrationUri(uri);
    this.machine().check();
    this.stats = newStats();
    this.error = null;
    this.cancelled = false;
    this.setStatus('setup');
    void this.runSource(addr).catch((e: unknown) => this.failed(e));
  }

  cancel(): void {
    if (!this.busy) return;
    this.cancelled = true;
    this.setStatus('cancelling');
    this.socket?.destroy();
  }

  private failed(e: unknown): void {
    this.socket?.destroy();
    this.socket = null;
    if (this.cancelled) {
      this.setStatus('cancelled');
      return;
    }
    this.error = e instanceof Error ? e.message : String(e);
    this.setStatus('failed');
  }

  /** The destination's answer, when it came early (always an error). */
  private early: StreamReader | null = null;

  private checkGoing(m: MigrationMachine): void {
    if (this.cancelled) throw new MigrationError('cancelled');
    if (this.machine() !== m) throw new MigrationError('the guest was reset during the migration');
    const answer = this.early?.answered();
    if (answer != null) throw new MigrationError(`the destination failed: ${answer.replace(/^error: /, '')}`);
  }

  /** Sends `pages` (page indices); `skipZero` leaves out pages of zeros (the destination cleared its RAM). */
  private async sendPages(out: RecordWriter, m: MigrationMachine, pages: readonly number[], skipZero: boolean,
    limit = 0): Promise<void> {
    const ram = Buffer.from(m.ram.buffer, m.ram.byteOffset, m.ram.length);
    const t0 = performance.now();
    const b0 = out.bytes;
    let batch = Buffer.alloc(BATCH * (5 + PAGE));
    let at = 0;
    let count = 0;
    const flush = async (): Promise<void> => {
      if (count === 0) return;
      await out.send(Rec.Pages, batch.subarray(0, at));
      this.stats.transferred = out.bytes;
      // max-bandwidth: wait until the bytes sent so far are within the limit.
      const ahead = limit > 0 ? (out.bytes - b0) / limit * 1000 - (performance.now() - t0) : 0;
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      batch = Buffer.alloc(BATCH * (5 + PAGE));
      at = 0;
      count = 0;
      this.checkGoing(m);
    };
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i]!;
      if (skipZero && p % ZERO_RUN === 0 && pages[i + ZERO_RUN - 1] === p + ZERO_RUN - 1 &&
        ram.subarray(p * PAGE, (p + ZERO_RUN) * PAGE).equals(ZERO_RUN_BYTES)) {
        this.stats.duplicate += ZERO_RUN;
        i += ZERO_RUN - 1;
        continue;
      }
      const page = ram.subarray(p * PAGE, (p + 1) * PAGE);
      const zero = page.length < PAGE ? page.every((b) => b === 0) : page.equals(ZERO_PAGE);
      if (zero) {
        this.stats.duplicate++;
        if (skipZero) continue;
      } else {
        this.stats.normal++;
      }
      batch.writeUInt32LE(p, at);
      batch[at + 4] = zero ? 0 : 1;
      at += 5;
      if (!zero) {
        batch.fill(0, at, at + PAGE);
        page.copy(batch, at);
        at += PAGE;
      }
      if (++count === BATCH) await flush();
    }
    await flush();
  }

  private async runSource(addr: ReturnType<typeof parseMigrationUri>): Promise<void> {
    const s = this.stats;
    const m = this.machine();
    const socket = await connectTo(addr);
    this.socket = socket;
    const out = new RecordWriter(socket);
    const reader = new StreamReader(socket);
    this.early = reader;
    try {
      await this.sendMachine(m, out, reader);
    } catch (e) {
      // The destination may have said why before it hung up (its answer beats a broken pipe).
      const answer = await Promise.race([reader.line().catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 500))]);
      if (answer?.startsWith('error: ') && !this.cancelled) throw new MigrationError(`the destination failed: ${answer.slice(7)}`);
      throw e;
    }
    s.downtime = Math.round(performance.now() - s.stopAt);
    s.downtimeBytes = out.bytes - s.precopyBytes;
    s.transferred = out.bytes;
    s.totalTime = Math.round(performance.now() - s.start);
    socket.end();
    this.socket = null;
    this.runState.setMigrationState('postmigrate');
    this.setStatus('completed');
  }

  /** The pre-copy passes, then the stop-and-copy; resolves once the destination has taken the machine. */
  private async sendMachine(m: MigrationMachine, out: RecordWriter, reader: StreamReader): Promise<void> {
    const s = this.stats;
    await out.send(Rec.Hello, Buffer.from(JSON.stringify({ format: FORMAT, config: m.config() })));
    s.setupTime = performance.now() - s.start;
    this.checkGoing(m);
    this.setStatus('active');

    // Pass 1: all of RAM. Marks made from here on are for the next passes.
    const pages = m.ram.length / PAGE;
    await takeDirty(m);
    let pending: number[] = [...Array(Math.ceil(pages)).keys()];
    let skipZero = true;
    for (;;) {
      s.passes++;
      if (this.capabilities.events) this.runState.emit('MIGRATION_PASS', { pass: s.passes });
      const t0 = performance.now();
      const b0 = out.bytes;
      await this.sendPages(out, m, pending, skipZero, this.parameters['max-bandwidth']);
      skipZero = false;
      const rate = (out.bytes - b0) / Math.max(performance.now() - t0, 1); // bytes per ms
      pending = await takeDirty(m);
      s.syncs++;
      s.remaining = pending.length * PAGE;
      const expected = s.remaining / Math.max(rate, 1);
      s.expectedDowntime = Math.round(expected);
      if (pending.length === 0 || expected <= this.parameters['downtime-limit'] || s.passes >= MAX_PASSES) break;
    }
    s.precopyBytes = out.bytes;

    // Stop-and-copy.
    s.stopAt = performance.now();
    const wasRunning = this.runState.status === 'running';
    await this.runState.pause();
    try {
      this.checkGoing(m);
      this.setStatus('device');
      await m.drain();
      await m.flushDisks();
      const last = new Set([...pending, ...await takeDirty(m)]);
      s.syncs++;
      await this.sendPages(out, m, [...last].sort((a, b) => a - b), false);
      await out.send(Rec.State, m.saveState());
      await out.send(Rec.End);
      s.remaining = 0;
      const answer = await reader.line();
      if (answer !== 'ok') throw new MigrationError(`the destination failed: ${answer.replace(/^error: /, '')}`);
    } catch (e) {
      if (wasRunning) this.runState.resume();
      throw e;
    }
  }

  /** query-migrate's answer (QEMU's MigrationInfo). */
  info(): Record<string, unknown> {
    const s = this.stats;
    if (this.status === 'none') return {};
    const elapsed = Math.round(performance.now() - s.start);
    const done = this.status === 'completed';
    const mbps = s.transferred * 8 / 1e6 / (Math.max(done ? s.totalTime : elapsed, 1) / 1000);
    return {
      status: this.status,
      ...(this.error !== null ? { 'error-desc': this.error } : {}),
      'setup-time': Math.round(s.setupTime),
      'total-time': done ? s.totalTime : elapsed,
      ...(done ? { downtime: s.downtime } : { 'expected-downtime': s.expectedDowntime }),
      ram: {
        transferred: s.transferred,
        remaining: s.remaining,
        total: this.machine().ram.length,
        duplicate: s.duplicate,
        normal: s.normal,
        'normal-bytes': s.normal * PAGE,
        'page-size': PAGE,
        'dirty-sync-count': s.syncs,
        mbps: Math.round(mbps * 1000) / 1000,
        'precopy-bytes': s.precopyBytes,
        'downtime-bytes': s.downtimeBytes,
      },
    };
  }

  /** -incoming URI / migrate-incoming: waits for a source; resolves once listening. */
  async incoming(uri: string): Promise<void> {
    if (this.runState.status !== 'inmigrate') throw new MigrationError('the guest is not waiting for an incoming migration (start with -incoming defer)');
    if (this.busy) throw new MigrationError('an incoming migration is already in progress');
    const addr = parseMigrationUri(uri);
    this.stats = newStats();
    await listenAt(addr, (socket) => {
      this.socket = socket;
      void this.runDestination(socket).catch(async (e: unknown) => {
        const why = e instanceof Error ? e.message : String(e);
        this.error = why;
        this.setStatus('failed');
        if (!socket.destroyed) {
          // Tell the source why, and let it hang up first: closing with its data unread would reset the
          // connection, and the answer could be lost. A source notices between two batches of pages,
          // which on a loaded host can take seconds: hence the generous bound.
          socket.removeAllListeners('data');
          socket.on('data', () => {});
          socket.end(`error: ${why.replace(/\n/g, ' ')}\n`);
          await Promise.race([new Promise((r) => socket.once('close', r)), new Promise((r) => setTimeout(r, SOURCE_HANGUP_MS))]);
          socket.destroy();
        }
        this.onIncomingFailed?.(why);
      });
    });
    // query-migrate on the destination says setup once it listens.
    this.setStatus('setup');
  }

  private async runDestination(socket: Socket): Promise<void> {
    const m = this.machine();
    const reader = new StreamReader(socket);
    const hello = await reader.record();
    let h: { format?: unknown; config?: unknown };
    try {
      h = JSON.parse(hello.payload.toString('utf8')) as typeof h;
    } catch {
      h = {};
    }
    if (hello.type !== Rec.Hello || h.format !== FORMAT) throw new MigrationError('the source did not send a Vireo migration stream of this version');
    const mine = JSON.stringify(m.config());
    if (JSON.stringify(h.config) !== mine) {
      throw new MigrationError(`the source machine (${JSON.stringify(h.config)}) differs from this one (${mine})`);
    }
    this.setStatus('active');
    // The source leaves out the zero pages of its first pass: the board hands over a machine whose RAM is all zeros.
    const pages = Math.ceil(m.ram.length / PAGE);
    let state: Uint8Array | null = null;
    for (;;) {
      const r = await reader.record();
      if (r.type === Rec.Pages) {
        this.loadPages(m, r.payload, pages);
        this.stats.transferred += r.payload.length;
      } else if (r.type === Rec.State && state === null) {
        state = r.payload;
      } else if (r.type === Rec.End && state !== null) {
        break;
      } else {
        throw new MigrationError(`migration stream: unexpected record type ${r.type}`);
      }
    }
    await m.reopenDisks();
    try {
      m.loadState(state);
    } catch (e) {
      throw e instanceof SnapshotError ? new MigrationError(e.message.replace(/^snapshot 'migration'/, 'the migrated state')) : e;
    }
    await new Promise<void>((resolve) => socket.end('ok\n', resolve));
    this.socket = null;
    this.stats.totalTime = Math.round(performance.now() - this.stats.start);
    this.setStatus('completed');
    if (this.autostart) this.runState.resume();
    else this.runState.setMigrationState('paused');
  }

  private loadPages(m: MigrationMachine, data: Buffer, pages: number): void {
    const bad = (): never => {
      throw new MigrationError('migration stream: a malformed page record');
    };
    for (let at = 0; at < data.length;) {
      if (at + 5 > data.length) bad();
      const p = data.readUInt32LE(at);
      const kind = data[at + 4];
      at += 5;
      if (p >= pages) bad();
      const dst = m.ram.subarray(p * PAGE, (p + 1) * PAGE);
      if (kind === 0) {
        dst.fill(0);
        this.stats.duplicate++;
      } else if (kind === 1 && at + PAGE <= data.length) {
        dst.set(data.subarray(at, at + dst.length));
        at += PAGE;
        this.stats.normal++;
      } else {
        bad();
      }
    }
  }
}
