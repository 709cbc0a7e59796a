/**
 * The monitors of a running machine (QEMU's -qmp, -monitor, -mon): each sits on a
 * character device, QMP (mode=control) or HMP (mode=readline), and a new session starts
 * whenever a client connects to a socket chardev. The HMP can also share the serial
 * port's terminal (-nographic, -serial mon:stdio), where C-a c switches between them.
 * Machine events go to every negotiated QMP session.
 */
import { readFileSync } from 'node:fs';
import type { Chardev } from '../chardev/chardev.js';
import type { BlockSnapshots } from '../block/block.js';
import type { ChardevOptions, VmOptions } from '../system/options.js';
import type { MachineControl, MachineEventName, RunState } from './machine-control.js';
import { QmpSession, type BlockInfo, type ChardevInfo, type MonitorContext } from './qmp.js';
import { Hmp, HmpSession } from './hmp.js';
import { Jobs } from './jobs.js';

/** The QEMU release whose QMP and HMP Vireo follows. */
const QEMU_VERSION = { major: 7, minor: 2, micro: 0 };

function vireoVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A terminal that a monitor can share with the serial port (the stdio chardev with C-a escapes). */
export interface MuxTerminal {
  monitor: { input(data: Uint8Array): void; focus(on: boolean): void } | null;
}

/** What {@link startMonitors} needs. */
export interface MonitorSetup {
  opts: VmOptions;
  machine: MachineControl;
  /** The run state whose events the monitors report. */
  runState: RunState;
  /** Opened images, by id. */
  drives: ReadonlyMap<string, { format: string; readOnly: boolean; snapshots?: BlockSnapshots }>;
  /** Opened -chardev devices, by id. */
  chardevs: ReadonlyMap<string, Chardev>;
  /** The serial port's backend. */
  serial: Chardev;
}

/** Input taken from a chardev at a time; more is read once the commands in it are answered. */
const READ_CHUNK = 4096;
/** Commands waiting before a QMP connection is not read any more (QEMU stops at 8). */
const MAX_BACKLOG = 8;

interface Session {
  input(data: Uint8Array): void;
  backlog?: number;
  close(): void;
  event?(name: string, data: Record<string, unknown>): void;
  idle?(): Promise<void>;
}

function chardevFilename(c: ChardevOptions): string {
  switch (c.kind) {
    case 'stdio': return 'stdio';
    case 'file': return `file:${c.path}`;
    case 'null': return 'null';
    case 'pipe': return `pipe:${c.path}`;
    case 'socket': {
      const a = c.addr.type === 'unix' ? `unix:${c.addr.path}` : `tcp:${c.addr.host}:${c.addr.port}`;
      return c.server ? `${a},server=on` : a;
    }
  }
}

/** The running monitors. */
export class Monitors {
  private readonly sessions = new Set<Session>();
  private closed = false;
  /** Background jobs (snapshot-save, ...), shared by every QMP client. */
  private readonly jobs = new Jobs((name, data) => this.event(name, data));

  constructor(private readonly setup: MonitorSetup) {}

  /** The context the QMP and HMP commands see. */
  context(): MonitorContext {
    const { opts, machine, drives, chardevs, serial } = this.setup;
    const ctx: MonitorContext = {
      machine,
      name: opts.name,
      version: { ...QEMU_VERSION, package: `vireo-${vireoVersion()}` },
      blocks: () => opts.drives.map((d): BlockInfo => {
        const open = drives.get(d.id);
        return { device: d.id, file: d.file, format: open?.format ?? d.format ?? 'raw', readOnly: open?.readOnly ?? d.readOnly, snapshots: open?.snapshots };
      }),
      chardevs: () => {
        const list: ChardevInfo[] = [];
        if (opts.serial.kind === 'stdio' || opts.serial.kind === 'file' || opts.serial.kind === 'null') {
          const filename = opts.serial.kind === 'file' ? `file:${opts.serial.path}` : opts.serial.kind;
          list.push({ label: 'serial0', filename, frontendOpen: serial.connected });
        }
        for (const c of opts.chardevs ?? []) {
          list.push({ label: c.id, filename: chardevFilename(c), frontendOpen: chardevs.get(c.id)?.connected ?? false });
        }
        return list;
      },
      hmp: (line) => new Hmp(ctx).execute(line),
      jobs: this.jobs,
    };
    return ctx;
  }

  /** Sends a machine event to every QMP client. */
  event(name: MachineEventName | string, data: Record<string, unknown> = {}): void {
    for (const s of this.sessions) s.event?.(name, data);
  }

  /** Starts a monitor of `mode` on `chr` (a session now, and one per later client). */
  attach(chr: Chardev, mode: 'control' | 'readline'): void {
    const ctx = this.context();
    const hmp = new Hmp(ctx);
    let session: Session | null = null;
    const write = (text: string) => chr.write(Buffer.from(text, 'utf8'));
    const open = (): void => {
      if (this.closed) return;
      if (mode === 'control') {
        const q = new QmpSession(ctx, write);
        session = q;
        q.onDrained = () => pull();
        q.greet();
      } else {
        const h = new HmpSession(hmp, write);
        session = { input: (d) => h.input(d), close: () => h.close() };
        h.greet();
      }
      this.sessions.add(session);
    };
    const drop = (): void => {
      if (session === null) return;
      session.close();
      this.sessions.delete(session);
      session = null;
    };
    chr.onOpen = (isOpen) => {
      drop();
      if (isOpen) open();
    };
    // Held input stays in the chardev, whose socket then stops reading (back-pressure on the client).
    const pull = (): void => {
      while (session !== null && chr.pending > 0 && (session.backlog ?? 0) < MAX_BACKLOG) session.input(chr.read(READ_CHUNK));
    };
    chr.onInput = pull;
    if (chr.connected) open();
    pull();
  }

  /** Puts an HMP on the serial port's terminal, reached with C-a c. */
  attachMux(term: MuxTerminal, chr: Chardev): void {
    const h = new HmpSession(new Hmp(this.context()), (text) => chr.write(Buffer.from(text, 'utf8')));
    let greeted = false;
    term.monitor = {
      input: (d) => h.input(d),
      focus: (on) => {
        if (!on) return;
        if (!greeted) h.greet();
        else h.prompt();
        greeted = true;
      },
    };
    this.sessions.add({ input: (d) => h.input(d), close: () => h.close() });
  }

  /** Lets the last answers and events go out, then stops all sessions. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const idle = [...this.sessions].map((s) => s.idle?.() ?? Promise.resolve());
    await Promise.race([Promise.all(idle), new Promise((r) => setTimeout(r, 1000))]);
    await new Promise((r) => setImmediate(r));
    for (const s of this.sessions) s.close();
    this.sessions.clear();
  }
}

function isMux(c: Chardev): c is Chardev & MuxTerminal {
  return 'monitor' in c;
}

/** Starts the monitors the command line asked for; machine events reach their QMP clients. */
export function startMonitors(setup: MonitorSetup): Monitors {
  const m = new Monitors(setup);
  setup.runState.onEvent = (name, data) => m.event(name, data);
  for (const mon of setup.opts.monitors ?? []) {
    if (mon.chardev === null) {
      if (isMux(setup.serial)) m.attachMux(setup.serial, setup.serial);
      continue;
    }
    const chr = setup.chardevs.get(mon.chardev);
    if (chr === undefined) throw new Error(`monitor: chardev '${mon.chardev}' was not opened`);
    const c = setup.opts.chardevs?.find((x) => x.id === mon.chardev);
    // A stdio chardev with mux=on: the serial port's, with the monitor behind C-a c.
    if (c?.kind === 'stdio' && c.mux && isMux(chr)) m.attachMux(chr, chr);
    else m.attach(chr, mon.mode);
  }
  return m;
}
