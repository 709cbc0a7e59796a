/**
 * The human monitor (QEMU's HMP): `(qemu)` command lines for people, over a terminal or a
 * socket, and through QMP's human-monitor-command. {@link Hmp.execute} runs one line;
 * {@link HmpSession} adds the line editing of a raw terminal (echo, backspace, Enter).
 */
import type { MonitorContext } from './qmp.js';
import type { Snapshots } from '../migration/savevm.js';
import { SnapshotError } from '../migration/vmstate.js';
import { MigrationError } from '../migration/migration-stream.js';
import type { Migration } from '../migration/migration.js';
import { screendump, sendKey } from './display.js';

interface HmpCommand {
  args: string;
  help: string;
  run(h: Hmp, rest: string): Promise<string> | string;
}

const hex = (v: number | bigint, digits = 16): string => v.toString(16).padStart(digits, '0');

const INFO: Record<string, { help: string; run(h: Hmp, rest: string): string }> = {
  status: {
    help: 'show the current VM status (running|paused)',
    run: (h) => {
      const s = h.ctx.machine.status();
      return `VM status: ${s === 'prelaunch' || s === 'debug' || s === 'inmigrate' || s === 'postmigrate' ? `paused (${s})` : s}\n`;
    },
  },
  version: {
    help: 'show the version of QEMU',
    run: (h) => {
      const v = h.ctx.version;
      return `${v.major}.${v.minor}.${v.micro} (${v.package})\n`;
    },
  },
  name: { help: 'show the current VM name', run: (h) => (h.ctx.name !== undefined ? `${h.ctx.name}\n` : '') },
  cpus: {
    help: 'show infos for each CPU',
    run: (h) => h.ctx.machine.cpus().map((c) => `${c.index === 0 ? '*' : ' '} CPU #${c.index}: thread_id=${c.threadId}\n`).join(''),
  },
  block: {
    help: 'show the block devices',
    run: (h) => h.ctx.blocks().map((b) => `${b.device}: ${b.file} (${b.format}${b.readOnly ? ', read-only' : ''})\n`).join(''),
  },
  chardev: {
    help: 'show the character devices',
    run: (h) => h.ctx.chardevs().map((c) => `${c.label}: filename=${c.filename}\n`).join(''),
  },
  jit: {
    help: 'show dynamic compiler info',
    run: (h) => h.ctx.machine.jitStats?.() ?? 'the JIT is off (-accel tcg,jit=on turns it on)\n',
  },
  registers: {
    help: 'show the cpu registers of every CPU (-a accepted)',
    run: (h) => {
      const cpus = h.ctx.machine.cpus();
      return cpus.map((c) => {
        const r = h.ctx.machine.registers(c.index);
        return (cpus.length > 1 ? `\nCPU#${c.index}\n` : '') + (r ?? 'registers are not available\n');
      }).join('');
    },
  },
  snapshots: {
    help: 'show the currently saved VM snapshots',
    run: (h) => {
      const list = h.snapshots().list();
      if (list.length === 0) return 'There is no snapshot available.\n';
      const pad = (d: number) => String(d).padStart(2, '0');
      const date = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      return ['List of snapshots present in the snapshot file:', `${'TAG'.padEnd(24)}${'VM SIZE'.padStart(12)}  DATE`,
        ...list.map((e) => `${e.name.padEnd(24)}${`${(e.size / 2 ** 20).toFixed(1)} MiB`.padStart(12)}  ${date(e.date)}`)].join('\n') + '\n';
    },
  },
  migrate: {
    help: 'show migration status',
    run: (h) => {
      const mig = h.migration();
      const i = mig.info() as { status?: string; 'error-desc'?: string; 'total-time'?: number; downtime?: number;
        'expected-downtime'?: number; 'setup-time'?: number; ram?: Record<string, number> };
      const lines = [`capabilities: events: ${mig.capabilities.events ? 'on' : 'off'}`];
      if (i.status !== undefined) {
        lines.push(`Migration status: ${i.status}${i['error-desc'] !== undefined ? ` (${i['error-desc']})` : ''}`, `total time: ${i['total-time']} ms`);
        if (i.downtime !== undefined) lines.push(`downtime: ${i.downtime} ms`);
        if (i['expected-downtime'] !== undefined) lines.push(`expected downtime: ${i['expected-downtime']} ms`);
        const r = i.ram!;
        lines.push(`setup: ${i['setup-time']} ms`, `transferred ram: ${Math.round(r.transferred! / 1024)} kbytes`,
          `throughput: ${r.mbps!.toFixed(2)} mbps`, `remaining ram: ${Math.round(r.remaining! / 1024)} kbytes`,
          `total ram: ${Math.round(r.total! / 1024)} kbytes`, `duplicate: ${r.duplicate} pages`, `normal: ${r.normal} pages`,
          `normal bytes: ${Math.round(r['normal-bytes']! / 1024)} kbytes`, `dirty sync count: ${r['dirty-sync-count']}`);
      }
      return `${lines.join('\n')}\n`;
    },
  },
  mtree: {
    help: 'show memory tree',
    run: (h) => h.ctx.machine.regions().map((s) => {
      const lines = [`address-space: ${s.space}`, `  ${hex(0)}-${hex(2n ** 64n - 1n)} (prio 0, i/o): ${s.space}`];
      for (const r of [...s.regions].sort((a, b) => a.base - b.base)) {
        lines.push(`    ${hex(r.base)}-${hex(r.base + r.size - 1)} (prio 0, i/o): ${r.name}`);
      }
      return `${lines.join('\n')}\n\n`;
    }).join(''),
  },
};

const COMMANDS: Record<string, HmpCommand> = {
  help: { args: '[cmd]', help: 'show the help', run: (_h, rest) => helpText(rest.trim()) },
  info: {
    args: '[subcommand]',
    help: 'show various information about the system state',
    run: (h, rest) => {
      const [sub = '', ...more] = rest.trim().split(/\s+/);
      const item = Object.prototype.hasOwnProperty.call(INFO, sub) ? INFO[sub] : undefined;
      if (item === undefined) return Object.entries(INFO).map(([n, i]) => `info ${n.padEnd(10)} -- ${i.help}\n`).join('');
      return item.run(h, more.join(' '));
    },
  },
  stop: {
    args: '',
    help: 'stop emulation',
    run: async (h) => {
      await h.ctx.machine.pause();
      return '';
    },
  },
  cont: { args: '', help: 'resume emulation', run: (h) => h.cont() },
  c: { args: '', help: 'resume emulation', run: (h) => h.cont() },
  system_reset: { args: '', help: 'reset the system', run: (h) => { h.ctx.machine.reset(); return ''; } },
  system_powerdown: { args: '', help: 'send system power down event', run: (h) => { h.ctx.machine.powerdown(); return ''; } },
  quit: { args: '', help: 'quit the emulator', run: (h) => { setImmediate(() => h.ctx.machine.quit()); return ''; } },
  q: { args: '', help: 'quit the emulator', run: (h) => { setImmediate(() => h.ctx.machine.quit()); return ''; } },
  savevm: {
    args: '[tag]',
    help: 'save the whole virtual machine state to the snapshot file as \'tag\'',
    run: async (h, rest) => {
      // As QEMU, no tag names the snapshot after the date and time.
      const tag = rest.trim() || `vm-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
      await h.snapshots().save(tag);
      return '';
    },
  },
  loadvm: {
    args: 'tag',
    help: 'restore the virtual machine state from snapshot \'tag\'',
    run: async (h, rest) => {
      await h.snapshots().load(rest.trim());
      return '';
    },
  },
  delvm: {
    args: 'tag',
    help: 'delete snapshot \'tag\' from the snapshot file',
    run: async (h, rest) => {
      await h.snapshots().delete(rest.trim());
      return '';
    },
  },
  migrate: {
    args: '[-d] uri',
    help: 'migrate to URI (tcp:HOST:PORT or unix:PATH); -d returns at once, else the command waits until it is over',
    run: async (h, rest) => {
      const m = /^\s*(-d\s+)?(\S+)\s*$/.exec(rest);
      if (m === null) return 'usage: migrate [-d] uri\n';
      const mig = h.migration();
      mig.start(m[2]!);
      if (m[1] !== undefined) return '';
      while (['setup', 'active', 'device', 'cancelling'].includes(mig.status)) await new Promise((r) => setTimeout(r, 10));
      const i = mig.info() as { 'error-desc'?: string };
      return mig.status === 'failed' ? `Error: ${i['error-desc'] ?? 'migration failed'}\n` : '';
    },
  },
  migrate_cancel: { args: '', help: 'cancel the current VM migration', run: (h) => { h.migration().cancel(); return ''; } },
  migrate_incoming: {
    args: 'uri',
    help: 'wait for an incoming migration on URI (the guest was started with -incoming defer)',
    run: async (h, rest) => {
      await h.migration().incoming(rest.trim());
      return '';
    },
  },
  migrate_set_capability: {
    args: 'capability on|off',
    help: 'enable or disable a migration capability (events)',
    run: (h, rest) => {
      const m = /^\s*(\S+)\s+(on|off)\s*$/.exec(rest);
      if (m === null || m[1] !== 'events') return `Error: unknown or malformed capability: '${rest.trim()}'\n`;
      h.migration().capabilities.events = m[2] === 'on';
      return '';
    },
  },
  migrate_set_parameter: {
    args: 'parameter value',
    help: 'set a migration parameter (downtime-limit in ms, max-bandwidth in bytes per second)',
    run: (h, rest) => {
      const m = /^\s*(downtime-limit|max-bandwidth)\s+(\d+)\s*$/.exec(rest);
      if (m === null) return `Error: unknown parameter or bad value: '${rest.trim()}'\n`;
      h.migration().parameters[m[1] as 'downtime-limit' | 'max-bandwidth'] = Number(m[2]);
      return '';
    },
  },
  x: {
    args: '/fmt addr',
    help: 'virtual memory dump starting at \'addr\' (Vireo has no MMU walk here: the address is used as physical)',
    run: (h, rest) => h.dump(rest),
  },
  screendump: {
    args: 'filename [-f ppm|png]',
    help: 'save screen to a file (PPM, or PNG with -f png)',
    run: async (h, rest) => {
      const words = rest.trim().split(/\s+/).filter((w) => w !== '');
      const f = words.indexOf('-f');
      const format = f >= 0 ? words.splice(f, 2)[1] ?? '' : 'ppm';
      if (words.length !== 1) return 'Usage: screendump filename [-f ppm|png]\n';
      await screendump(h.ctx.machine, words[0]!, format);
      return '';
    },
  },
  sendkey: {
    args: 'keys',
    help: 'send keys to the VM (e.g. \'sendkey ctrl-alt-f1\')',
    run: (h, rest) => {
      sendKey(h.ctx.machine, rest.trim());
      return '';
    },
  },
  xp: { args: '/fmt addr', help: 'physical memory dump starting at \'addr\'', run: (h, rest) => h.dump(rest) },
};

/** cont is refused while the guest waits for its state from a migration source (QEMU starts it once it arrived). */
export function checkCont(status: string): void {
  if (status === 'inmigrate') throw new MigrationError('the guest waits for an incoming migration: it starts once the migration completes');
}

function helpText(cmd: string): string {
  const names = cmd === '' ? Object.keys(COMMANDS) : [cmd];
  return names.map((n) => {
    const c = Object.prototype.hasOwnProperty.call(COMMANDS, n) ? COMMANDS[n] : undefined;
    if (c === undefined) return `unknown command: '${n}'\n`;
    return `${n}${c.args ? ` ${c.args}` : ''} -- ${c.help}\n`;
  }).join('');
}

const UNIT: Record<string, number> = { b: 1, h: 2, w: 4, g: 8 };

/** Runs HMP command lines against a machine. */
export class Hmp {
  /** The last x/xp format, reused when the next one leaves parts out (as QEMU). */
  private last = { count: 1, format: 'x', size: 4 };

  constructor(readonly ctx: MonitorContext) {}

  /** The machine's snapshots; a board without them answers with an error line. */
  snapshots(): Snapshots {
    const s = this.ctx.machine.snapshots;
    if (s === undefined) throw new SnapshotError('snapshots are not supported on this machine');
    return s;
  }

  /** Live migration; a board without it answers with an error line. */
  migration(): Migration {
    const m = this.ctx.machine.migration;
    if (m === undefined) throw new MigrationError('live migration is not supported on this machine');
    return m;
  }

  cont(): string {
    checkCont(this.ctx.machine.status());
    this.ctx.machine.resume();
    return '';
  }

  /** Runs one command line; resolves to its output ('' for none), lines ending in \n. */
  async execute(line: string): Promise<string> {
    const m = /^\s*(\S+)\s*(.*)$/.exec(line);
    if (m === null) return '';
    const name = m[1]!;
    const cmd = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (cmd === undefined) return `unknown command: '${name}'\n`;
    try {
      return await cmd.run(this, m[2]!);
    } catch (err) {
      return `Error: ${err instanceof Error ? err.message : String(err)}\n`;
    }
  }

  /** `x /NFU ADDR` and `xp /NFU ADDR`: N units of size U (b h w g), shown as F (x d u o c). */
  dump(rest: string): string {
    const m = /^\s*(?:\/(\d*)([xduoc]?)([bhwg]?)([xduoc]?))?\s*(\S+)\s*$/.exec(rest);
    if (m === null) return 'usage: xp /fmt addr\n';
    const count = m[1] ? Number(m[1]) : this.last.count;
    const format = m[2] || m[4] || this.last.format;
    const size = m[3] ? UNIT[m[3]]! : (format === 'c' ? 1 : this.last.size);
    this.last = { count, format, size };
    let addr: number;
    try {
      addr = Number(BigInt(m[5]!));
    } catch {
      return `invalid address: '${m[5]}'\n`;
    }
    if (count > 65536) return 'count too large\n';
    const bytes = this.ctx.machine.readPhys(addr, count * size);
    if (bytes === null) return `Cannot access memory at 0x${addr.toString(16)}\n`;
    const perLine = format === 'c' ? 16 : size === 1 ? 8 : 16 / size;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let out = '';
    for (let i = 0; i < count; i++) {
      if (i % perLine === 0) out += `${i > 0 ? '\n' : ''}${hex(addr + i * size)}:`;
      const off = i * size;
      const v = size === 1 ? BigInt(dv.getUint8(off)) : size === 2 ? BigInt(dv.getUint16(off, true))
        : size === 4 ? BigInt(dv.getUint32(off, true)) : dv.getBigUint64(off, true);
      out += ` ${formatUnit(v, format, size)}`;
    }
    return `${out}\n`;
  }
}

function formatUnit(v: bigint, format: string, size: number): string {
  const bits = BigInt(size * 8);
  switch (format) {
    case 'd': return (BigInt.asIntN(Number(bits), v)).toString();
    case 'u': return v.toString();
    case 'o': return `0${v.toString(8)}`;
    case 'c': return v >= 0x20n && v < 0x7fn ? `'${String.fromCharCode(Number(v))}'` : `'\\x${hex(v, 2)}'`;
    default: return `0x${hex(v, size * 2)}`;
  }
}

const BANNER_PREFIX = 'QEMU';
/** Longest command line, and most input held while a command runs (bytes). */
const MAX_LINE = 4096;
const MAX_TYPED = 64 * 1024;

/** An interactive HMP over a byte stream: echo, line editing, the `(qemu) ` prompt. */
export class HmpSession {
  private line = '';
  private escape = 0;
  private closed = false;

  constructor(private readonly hmp: Hmp, private readonly write: (text: string) => void) {}

  /** The banner and first prompt (QEMU's "QEMU x.y.z monitor - type 'help' for more information"). */
  greet(): void {
    const v = this.hmp.ctx.version;
    this.out(`${BANNER_PREFIX} ${v.major}.${v.minor}.${v.micro} monitor - type 'help' for more information\n(qemu) `);
  }

  /** Shows the prompt again (after switching back to the monitor). */
  prompt(): void {
    this.out(`(qemu) ${this.line}`);
  }

  close(): void {
    this.closed = true;
  }

  /** Bytes typed; a line is run once the previous one has finished (the rest waits, unechoed). */
  input(data: Uint8Array | string): void {
    this.typed += typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
    if (this.typed.length > MAX_TYPED) this.typed = this.typed.slice(-MAX_TYPED);
    if (!this.running) void this.pump();
  }

  private typed = '';
  private running = false;

  private async pump(): Promise<void> {
    this.running = true;
    try {
      while (this.typed.length > 0 && !this.closed) {
        const ch = this.typed[0]!;
        this.typed = this.typed.slice(1);
        const line = this.key(ch);
        if (line === null) continue;
        const output = await this.hmp.execute(line);
        this.out(/^\s*(quit|q)\s*$/.test(line) ? output : `${output}(qemu) `);
      }
    } finally {
      this.running = false;
    }
  }

  /** Edits the line with one key; returns the line when Enter ends it. */
  private key(ch: string): string | null {
    const c = ch.charCodeAt(0);
    if (this.escape === 1) { // after ESC: '[' or 'O' introduce a sequence (arrow keys), ignored
      this.escape = ch === '[' || ch === 'O' ? 2 : 0;
      return null;
    }
    if (this.escape === 2) {
      if (c >= 0x40 && c <= 0x7e) this.escape = 0;
      return null;
    }
    const afterCr = this.lastWasCr;
    this.lastWasCr = ch === '\r';
    if (c === 0x1b) this.escape = 1;
    else if (ch === '\r' || ch === '\n') {
      if (ch === '\n' && afterCr) return null;
      const line = this.line;
      this.line = '';
      this.out('\n');
      return line;
    } else if (c === 0x7f || c === 0x08) {
      if (this.line.length > 0) {
        this.line = this.line.slice(0, -1);
        this.out('\b \b');
      }
    } else if (c >= 0x20 && c < 0x7f && this.line.length < MAX_LINE) {
      this.line += ch;
      this.out(ch);
    }
    return null;
  }

  private lastWasCr = false;

  private out(text: string): void {
    if (!this.closed) this.write(text.replace(/\r?\n/g, '\r\n'));
  }
}
