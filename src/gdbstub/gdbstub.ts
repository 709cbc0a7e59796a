/**
 * The gdbstub's command dispatcher (QEMU's gdbstub/gdbstub.c): one session with one gdb,
 * in all-stop mode. Threads are vCPUs (thread id = vCPU index + 1). Commands: `?`, `g`/`G`,
 * `p`/`P`, `m`/`M`/`X`, `c`/`s`/`C`/`S`, `vCont?`/`vCont`, `Z0`-`Z4`/`z0`-`z4`, `H`, `T`,
 * `D`, `k`/`vKill`, qSupported, qXfer:features:read, qfThreadInfo/qsThreadInfo, qC,
 * qAttached, qThreadExtraInfo and QStartNoAckMode; anything else gets the empty reply
 * ("not supported"). Stop replies are `T05thread:NN;` with `swbreak:;`, `hwbreak:;` or
 * `watch:ADDR;` (`rwatch`, `awatch`), `T02` after an interrupt, `Wnn` when the machine ends.
 */
import { escapeBinary, fromHex, toHex, unescapeBinary } from './packet.js';
import type { GdbTarget, StopEvent, Watchpoint } from './target.js';

/** The largest packet gdb may send us (advertised as PacketSize). */
export const PACKET_SIZE = 0x4000;
/** The most bytes one `m` reply carries (hex doubles them). */
const MAX_READ = (PACKET_SIZE - 4) >> 1;

/** Errors in QEMU's numbering (errno values). */
const E_FAULT = 'E14';
const E_INVAL = 'E22';
const E_NOSPC = 'E1c';

/** Where the session's replies go. */
export interface StubIo {
  /** Sends one packet (framed by the caller). */
  send(payload: string | Uint8Array): void;
  /** gdb detached: the connection may close. */
  detached(): void;
}

const WATCH_NAMES = { 2: 'watch', 3: 'rwatch', 4: 'awatch' } as const;

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** `n` bytes of `v`, little-endian, as hex (RISC-V is little-endian). */
function leHex(v: bigint, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += hex2(Number((v >> BigInt(8 * i)) & 0xffn));
  return s;
}

function parseLeHex(text: string): bigint | null {
  const b = fromHex(text);
  if (b === null || b.length === 0 || b.length > 8) return null;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function parseHexNumber(text: string | undefined): bigint | null {
  return text !== undefined && /^[0-9a-fA-F]{1,16}$/.test(text) ? BigInt(`0x${text}`) : null;
}

/** `ADDR,LEN` as numbers (LEN below 2^32). */
function parseRange(text: string): { addr: bigint; len: number } | null {
  const [a, l, ...rest] = text.split(',');
  const addr = parseHexNumber(a);
  const len = parseHexNumber(l);
  if (rest.length > 0 || addr === null || len === null || len > 0xffffffffn) return null;
  return { addr, len: Number(len) };
}

/** One gdb session over a {@link GdbTarget}. */
export class GdbStub {
  /** QStartNoAckMode was accepted: no more `+`/`-`. */
  noAck = false;
  /** The vCPU for register and memory commands (Hg) and for resuming (Hc). */
  private gCpu = 0;
  private cCpu = 0;
  /** A `c`, `s` or vCont is waiting for its stop reply. */
  private waiting = false;
  private readonly swBreak = new Set<bigint>();
  private readonly hwBreak = new Set<bigint>();
  private watch: Watchpoint[] = [];

  constructor(private readonly target: GdbTarget, private readonly io: StubIo) {
    target.onStop = (ev) => this.stopped(ev);
  }

  /** Handles one packet (already checked and run-length decoded); resolves once answered. */
  async packet(data: Buffer): Promise<void> {
    const reply = await this.dispatch(data.toString('latin1'), data);
    if (reply !== null) this.io.send(reply);
  }

  /** gdb sent Ctrl-C: a running target is stopped and the stop reported (T02). */
  interrupt(): void {
    if (this.waiting && this.target.running()) void this.target.stop();
  }

  /** The connection is gone: nobody is left to report breakpoints to. */
  close(): void {
    this.target.onStop = null;
    this.target.setBreakpoints([]);
    this.target.setWatchpoints([]);
  }

  private stopped(ev: StopEvent): void {
    if (ev.cpu !== null) this.gCpu = this.cCpu = ev.cpu;
    if (!this.waiting) return;
    this.waiting = false;
    this.io.send(this.stopReply(ev));
  }

  private stopReply(ev: StopEvent): string {
    const head = `T${ev.kind === 'interrupt' ? '02' : '05'}thread:${hex2((ev.cpu ?? this.cCpu) + 1)};`;
    if (ev.kind === 'breakpoint') return `${head}${this.swBreak.has(ev.pc) ? 'swbreak' : 'hwbreak'}:;`;
    if (ev.kind === 'watchpoint') return `${head}${WATCH_NAMES[ev.type]}:${ev.addr.toString(16)};`;
    return head;
  }

  /** A thread id (`-1` all, `0` any, hex, or `pP.T`) as a vCPU index, 'all', 'any' or null when there is no such thread. */
  private thread(text: string): number | 'all' | 'any' | null {
    const t = text.startsWith('p') ? text.slice(text.indexOf('.') + 1) : text;
    if (t === '-1') return 'all';
    const n = parseHexNumber(t);
    if (n === null) return null;
    if (n === 0n) return 'any';
    return n <= BigInt(this.target.cpuCount()) ? Number(n) - 1 : null;
  }

  private async dispatch(p: string, raw: Buffer): Promise<string | null> {
    switch (p[0]) {
      case '?': return `T05thread:${hex2(this.cCpu + 1)};`; // as QEMU: gdb asks once, on connecting
      case 'g': return this.readRegisters();
      case 'G': return this.writeRegisters(p.slice(1));
      case 'p': return this.readRegister(p.slice(1));
      case 'P': return this.writeRegister(p.slice(1));
      case 'm': return this.readMemory(p.slice(1));
      case 'M': return this.writeMemory(p.slice(1));
      case 'X': return this.writeBinary(raw);
      case 'c': case 'C': return this.cont(p);
      case 's': case 'S': return this.step(p);
      case 'H': return this.setThread(p);
      case 'T': return this.thread(p.slice(1)) !== null ? 'OK' : E_INVAL;
      case 'Z': case 'z': return this.breakpoint(p);
      case 'D': return this.detach();
      case 'k':
        this.target.kill();
        return null;
      case 'q': return this.query(p);
      case 'Q':
        if (p !== 'QStartNoAckMode') return '';
        this.io.send('OK');
        this.noAck = true;
        return null;
      case 'v': return this.vPacket(p);
      default: return '';
    }
  }

  private readRegisters(): string {
    let s = '';
    for (const r of this.target.tdesc.gRegisters) {
      const v = this.target.readRegister(this.gCpu, r);
      const size = this.target.tdesc.registerSize(r);
      s += v === null ? 'xx'.repeat(size) : leHex(v, size);
    }
    return s;
  }

  private writeRegisters(hex: string): string {
    if (fromHex(hex) === null) return E_INVAL;
    let at = 0;
    for (const r of this.target.tdesc.gRegisters) {
      const size = 2 * this.target.tdesc.registerSize(r);
      if (at + size > hex.length) break;
      const v = parseLeHex(hex.slice(at, at + size));
      if (v === null || !this.target.writeRegister(this.gCpu, r, v)) return E_FAULT;
      at += size;
    }
    return 'OK';
  }

  private readRegister(text: string): string {
    const n = parseHexNumber(text);
    const size = n === null ? 0 : this.target.tdesc.registerSize(Number(n));
    const v = size === 0 ? null : this.target.readRegister(this.gCpu, Number(n));
    return v === null ? E_FAULT : leHex(v, size);
  }

  private writeRegister(text: string): string {
    const [num, hex] = text.split('=');
    const n = parseHexNumber(num);
    const size = n === null ? 0 : this.target.tdesc.registerSize(Number(n));
    const v = hex === undefined || hex.length !== 2 * size ? null : parseLeHex(hex);
    if (size === 0 || v === null) return E_INVAL;
    return this.target.writeRegister(this.gCpu, Number(n), v) ? 'OK' : E_FAULT;
  }

  private readMemory(text: string): string {
    const r = parseRange(text);
    if (r === null) return E_INVAL;
    if (r.len === 0) return '';
    const data = this.target.readMemory(this.gCpu, r.addr, Math.min(r.len, MAX_READ));
    return data.length === 0 ? E_FAULT : toHex(data);
  }

  private writeMemory(text: string): string {
    const colon = text.indexOf(':');
    const r = colon < 0 ? null : parseRange(text.slice(0, colon));
    const data = r === null ? null : fromHex(text.slice(colon + 1));
    if (r === null || data === null || data.length !== r.len) return E_INVAL;
    return r.len === 0 || this.target.writeMemory(this.gCpu, r.addr, data) ? 'OK' : E_FAULT;
  }

  private writeBinary(raw: Buffer): string {
    const colon = raw.indexOf(0x3a);
    const r = colon < 0 ? null : parseRange(raw.subarray(1, colon).toString('latin1'));
    const data = r === null ? null : unescapeBinary(raw.subarray(colon + 1));
    if (r === null || data === null || data.length !== r.len) return E_INVAL;
    return r.len === 0 || this.target.writeMemory(this.gCpu, r.addr, data) ? 'OK' : E_FAULT;
  }

  /** `c[ADDR]`, `Csig[;ADDR]`: resume everything (the signal means nothing to a machine). */
  private cont(p: string): string | null {
    const addr = p[0] === 'c' ? p.slice(1) : p.split(';')[1] ?? '';
    if (addr !== '') {
      const pc = parseHexNumber(addr);
      if (pc === null) return E_INVAL;
      this.target.writeRegister(this.cCpu, this.target.tdesc.pcRegister, pc);
    }
    this.waiting = true;
    this.target.resume();
    return null;
  }

  /** `s[ADDR]`, `Ssig[;ADDR]`: one instruction on the Hc thread. */
  private async step(p: string, cpu = this.cCpu): Promise<string> {
    const addr = p[0] === 's' ? p.slice(1) : p.split(';')[1] ?? '';
    if (addr !== '') {
      const pc = parseHexNumber(addr);
      if (pc === null) return E_INVAL;
      this.target.writeRegister(cpu, this.target.tdesc.pcRegister, pc);
    }
    const ev = await this.target.step(cpu);
    this.gCpu = this.cCpu = ev.cpu ?? cpu;
    return this.stopReply(ev);
  }

  private setThread(p: string): string {
    const t = this.thread(p.slice(2));
    if (t === null || (p[1] !== 'g' && p[1] !== 'c')) return E_INVAL;
    if (typeof t === 'number') {
      if (p[1] === 'g') this.gCpu = t;
      else this.cCpu = t;
    }
    return 'OK';
  }

  /** `Z`/`z` TYPE,ADDR,KIND: 0 software and 1 hardware breakpoints (the same mechanism), 2-4 watchpoints. */
  private breakpoint(p: string): string {
    const [type, addrText, kindText] = p.slice(1).split(';')[0]!.split(',');
    const addr = parseHexNumber(addrText);
    const kind = parseHexNumber(kindText);
    const insert = p[0] === 'Z';
    if (type !== '0' && type !== '1' && type !== '2' && type !== '3' && type !== '4') return '';
    if (addr === null || kind === null) return E_INVAL;
    if (type === '0' || type === '1') {
      const set = type === '0' ? this.swBreak : this.hwBreak;
      if (insert) set.add(addr);
      else set.delete(addr);
      if (this.target.setBreakpoints([...new Set([...this.swBreak, ...this.hwBreak])])) return 'OK';
      set.delete(addr);
      return E_NOSPC;
    }
    const t = Number(type) as 2 | 3 | 4;
    if (kind === 0n || kind > 0xffffffffn) return E_INVAL;
    const same = (w: Watchpoint) => w.type === t && w.addr === addr && w.len === Number(kind);
    const before = this.watch;
    this.watch = insert ? [...before.filter((w) => !same(w)), { type: t, addr, len: Number(kind) }] : before.filter((w) => !same(w));
    if (this.target.setWatchpoints(this.watch)) return 'OK';
    this.watch = before;
    return E_NOSPC;
  }

  /** `D`: breakpoints go, the machine runs on, gdb leaves. */
  private detach(): string | null {
    this.swBreak.clear();
    this.hwBreak.clear();
    this.watch = [];
    this.target.setBreakpoints([]);
    this.target.setWatchpoints([]);
    this.waiting = false;
    this.target.resume();
    this.io.send('OK');
    this.io.detached();
    return null;
  }

  private query(p: string): string {
    const [name] = p.split(':', 1);
    switch (name) {
      case 'qSupported':
        return `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;vContSupported+`;
      case 'qXfer': return this.xfer(p);
      case 'qfThreadInfo':
        return `m${Array.from({ length: this.target.cpuCount() }, (_, i) => hex2(i + 1)).join(',')}`;
      case 'qsThreadInfo': return 'l';
      case 'qC': return `QC${hex2(this.cCpu + 1)}`;
      case 'qAttached': return '1';
    }
    if (p.startsWith('qThreadExtraInfo,')) {
      const t = this.thread(p.slice('qThreadExtraInfo,'.length));
      return typeof t === 'number' ? toHex(Buffer.from(this.target.cpuDescription(t), 'latin1')) : E_INVAL;
    }
    return '';
  }

  /** `qXfer:features:read:target.xml:OFFSET,LENGTH`: a slice of the target description. */
  private xfer(p: string): string {
    const m = /^qXfer:features:read:([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p);
    if (m === null) return '';
    if (m[1] !== 'target.xml') return 'E00';
    const xml = Buffer.from(this.target.tdesc.xml, 'latin1');
    const offset = parseInt(m[2]!, 16);
    const chunk = xml.subarray(offset, offset + Math.min(parseInt(m[3]!, 16), MAX_READ));
    const more = offset + chunk.length < xml.length;
    return Buffer.concat([Buffer.from(more ? 'm' : 'l'), escapeBinary(chunk)]).toString('latin1');
  }

  private async vPacket(p: string): Promise<string | null> {
    if (p === 'vCont?') return 'vCont;c;C;s;S';
    if (p.startsWith('vKill')) {
      this.io.send('OK');
      this.target.kill();
      return null;
    }
    if (!p.startsWith('vCont;')) return '';
    // All-stop: a step action steps its thread alone; otherwise any continue action resumes everything.
    const actions = p.slice('vCont;'.length).split(';').map((a) => {
      const [action, tid] = a.split(':');
      return { action: action ?? '', thread: tid === undefined ? 'all' as const : this.thread(tid) };
    });
    if (actions.some((a) => a.thread === null || !/^([cs]|[CS][0-9a-fA-F]{2})$/.test(a.action))) return E_INVAL;
    const step = actions.find((a) => a.action[0] === 's' || a.action[0] === 'S');
    if (step !== undefined) return this.step('s', typeof step.thread === 'number' ? step.thread : this.cCpu);
    this.waiting = true;
    this.target.resume();
    return null;
  }
}
