/**
 * The gdbstub's command dispatcher (src/gdbstub/gdbstub.ts) and the riscv64 target
 * description, against a fake target: replies in gdb's formats, register and memory
 * encodings, breakpoint and watchpoint bookkeeping, all-stop resume/step/interrupt with
 * the stop replies QEMU gives, and malformed packets answered without throwing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GdbStub } from '../../src/gdbstub/gdbstub.js';
import { escapeBinary, unescapeBinary } from '../../src/gdbstub/packet.js';
import { RISCV64_TDESC, RISCV_PRIV, riscvRegister } from '../../src/gdbstub/tdesc-riscv.js';
import type { GdbTarget, StopEvent, Watchpoint } from '../../src/gdbstub/target.js';

const MEM_BASE = 0x1000n;

class FakeTarget implements GdbTarget {
  readonly tdesc = RISCV64_TDESC;
  onStop: ((ev: StopEvent) => void) | null = null;
  regs = [new Map<number, bigint>(), new Map<number, bigint>()];
  mem = new Uint8Array(0x100);
  bps: readonly bigint[] = [];
  wps: readonly Watchpoint[] = [];
  isRunning = false;
  resumes = 0;
  stops = 0;
  steps: number[] = [];
  killed = false;
  maxBps = 4;

  cpuCount() { return 2; }
  cpuDescription(cpu: number) { return `CPU#${cpu} [running]`; }
  readRegister(cpu: number, regnum: number) {
    return this.tdesc.registerSize(regnum) === 0 ? null : this.regs[cpu]!.get(regnum) ?? 0n;
  }
  writeRegister(cpu: number, regnum: number, v: bigint) {
    if (this.tdesc.registerSize(regnum) === 0) return false;
    this.regs[cpu]!.set(regnum, v);
    return true;
  }
  readMemory(_cpu: number, addr: bigint, len: number) {
    const off = Number(addr - MEM_BASE);
    if (addr < MEM_BASE || off >= this.mem.length) return new Uint8Array(0);
    return this.mem.slice(off, off + len);
  }
  writeMemory(_cpu: number, addr: bigint, data: Uint8Array) {
    const off = Number(addr - MEM_BASE);
    if (addr < MEM_BASE || off + data.length > this.mem.length) return false;
    this.mem.set(data, off);
    return true;
  }
  setBreakpoints(pcs: readonly bigint[]) {
    if (pcs.length > this.maxBps) return false;
    this.bps = pcs;
    return true;
  }
  setWatchpoints(wps: readonly Watchpoint[]) {
    if (wps.length > 2) return false;
    this.wps = wps;
    return true;
  }
  running() { return this.isRunning; }
  stop() {
    this.stops++;
    if (this.isRunning) this.halt({ kind: 'interrupt', cpu: null });
    return Promise.resolve();
  }
  resume() {
    this.resumes++;
    this.isRunning = true;
  }
  step(cpu: number): Promise<StopEvent> {
    this.steps.push(cpu);
    return Promise.resolve({ kind: 'step', cpu });
  }
  kill() { this.killed = true; }
  /** The machine stops (as the board reports it). */
  halt(ev: StopEvent) {
    this.isRunning = false;
    this.onStop?.(ev);
  }
}

function session() {
  const target = new FakeTarget();
  const sent: string[] = [];
  let detached = false;
  const stub = new GdbStub(target, {
    send: (p) => sent.push(typeof p === 'string' ? p : Buffer.from(p).toString('latin1')),
    detached: () => { detached = true; },
  });
  /** Sends a packet and returns what the stub answered to it (several packets for D and vKill). */
  const ask = async (p: string | Buffer): Promise<string[]> => {
    const from = sent.length;
    await stub.packet(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
    return sent.slice(from);
  };
  const one = async (p: string): Promise<string> => {
    const r = await ask(p);
    assert.equal(r.length, 1, `one reply to ${p}: ${JSON.stringify(r)}`);
    return r[0]!;
  };
  return { target, stub, sent, ask, one, isDetached: () => detached };
}

test('qSupported advertises what gdb needs; unknown packets get the empty reply', async () => {
  const s = session();
  const r = await s.one('qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386');
  for (const f of ['PacketSize=4000', 'qXfer:features:read+', 'swbreak+', 'hwbreak+', 'QStartNoAckMode+', 'vContSupported+']) {
    assert.ok(r.split(';').includes(f), `${f} in ${r}`);
  }
  for (const p of ['qOffsets', 'qTStatus', 'vMustReplyEmpty', '!', 'qRcmd,68656c70', 'Z9,0,0', 'bs', 'QNonStop:1']) {
    assert.equal(await s.one(p), '', p);
  }
  assert.equal(await s.one('QStartNoAckMode'), 'OK');
  assert.equal(s.stub.noAck, true);
});

test('qXfer:features:read serves target.xml in escaped chunks; other annexes are errors', async () => {
  const s = session();
  let xml = Buffer.alloc(0);
  for (let off = 0; ; off += 0x80) {
    const r = Buffer.from(await s.one(`qXfer:features:read:target.xml:${off.toString(16)},80`), 'latin1');
    assert.ok(r[0] === 0x6d || r[0] === 0x6c, 'm or l');
    xml = Buffer.concat([xml, unescapeBinary(r.subarray(1))!]);
    if (r[0] === 0x6c) break;
  }
  assert.equal(xml.toString('latin1'), RISCV64_TDESC.xml);
  assert.equal(await s.one('qXfer:features:read:other.xml:0,100'), 'E00');
});

test('the riscv64 description: gdb\'s features, names and numbers', () => {
  const xml = RISCV64_TDESC.xml;
  assert.match(xml, /<architecture>riscv:rv64<\/architecture>/);
  for (const f of ['org.gnu.gdb.riscv.cpu', 'org.gnu.gdb.riscv.fpu', 'org.gnu.gdb.riscv.csr', 'org.gnu.gdb.riscv.virtual']) {
    assert.ok(xml.includes(`<feature name="${f}">`), f);
  }
  assert.equal(xml.match(/<reg /g)!.length, 32 + 1 + 32 + 3 + 52 + 1);
  for (const [name, regnum, bits] of [['zero', 0, 64], ['fp', 8, 64], ['t6', 31, 64], ['pc', 32, 64], ['ft0', 33, 64],
    ['ft11', 64, 64], ['fflags', 66, 32], ['frm', 67, 32], ['fcsr', 68, 32], ['mstatus', 65 + 0x300, 64],
    ['satp', 65 + 0x180, 64], ['mhartid', 65 + 0xf14, 64], ['priv', 65 + 4096, 64]] as const) {
    assert.ok(xml.includes(`<reg name="${name}" bitsize="${bits}" type="`) && xml.includes(`regnum="${regnum}"/>`), name);
    assert.equal(RISCV64_TDESC.registerSize(regnum), bits / 8, name);
  }
  assert.deepEqual(riscvRegister(5), { kind: 'x', index: 5 });
  assert.deepEqual(riscvRegister(40), { kind: 'f', index: 7 });
  assert.deepEqual(riscvRegister(65 + 0x341), { kind: 'csr', csr: 0x341 });
  assert.deepEqual(riscvRegister(RISCV_PRIV), { kind: 'priv' });
  assert.equal(riscvRegister(65 + 0x7c0), null); // no such CSR in Vireo
  assert.equal(riscvRegister(-1), null);
  assert.equal(RISCV64_TDESC.registerSize(65), 0);
  assert.deepEqual(RISCV64_TDESC.gRegisters, Array.from({ length: 33 }, (_, i) => i));
});

test('g/G and p/P: little-endian hex in the description\'s sizes; bad numbers and sizes are errors', async () => {
  const s = session();
  s.target.regs[0]!.set(1, 0x0102030405060708n);
  s.target.regs[0]!.set(32, 0x80000000n);
  s.target.regs[0]!.set(66, 0x1fn);
  const g = await s.one('g');
  assert.equal(g.length, 33 * 16);
  assert.equal(g.slice(16, 32), '0807060504030201');
  assert.equal(g.slice(32 * 16), '0000008000000000');
  assert.equal(await s.one('p20'), '0000008000000000');
  assert.equal(await s.one('p42'), '1f000000'); // fflags: 32 bits
  assert.equal(await s.one('p1041'), '0000000000000000'); // priv
  assert.equal(await s.one('p41'), 'E14'); // CSR 0 does not exist
  assert.equal(await s.one('pzz'), 'E14');
  assert.equal(await s.one('P20=0010000000000000'), 'OK');
  assert.equal(s.target.regs[0]!.get(32), 0x1000n);
  assert.equal(await s.one('P42=03000000'), 'OK');
  assert.equal(s.target.regs[0]!.get(66), 3n);
  assert.equal(await s.one('P42=0300'), 'E22'); // wrong size
  assert.equal(await s.one('P20'), 'E22');
  assert.equal(await s.one(`G${'11'.repeat(8)}${'22'.repeat(8)}`), 'OK'); // a short G writes what it holds
  assert.equal(s.target.regs[0]!.get(0), 0x1111111111111111n);
  assert.equal(s.target.regs[0]!.get(1), 0x2222222222222222n);
  assert.equal(await s.one('Gxyz'), 'E22');
  // Hg selects the vCPU (thread 2 is vCPU 1); unknown threads are refused.
  assert.equal(await s.one('Hg2'), 'OK');
  s.target.regs[1]!.set(32, 0x42n);
  assert.equal(await s.one('p20'), '4200000000000000');
  assert.equal(await s.one('Hg3'), 'E22');
  assert.equal(await s.one('Hg0'), 'OK');
  assert.equal(await s.one('Hc-1'), 'OK');
  assert.equal(await s.one('Hx1'), 'E22');
});

test('m/M/X: hex and escaped binary; partial reads; unmapped memory is E14', async () => {
  const s = session();
  assert.equal(await s.one('M1000,4:deadbeef'), 'OK');
  assert.equal(await s.one('m1000,4'), 'deadbeef');
  assert.equal(await s.one('m10fe,4'), '0000'); // the last two bytes of memory
  assert.equal(await s.one('m2000,4'), 'E14');
  assert.equal(await s.one('m0,0'), '');
  assert.equal(await s.one('M2000,1:00'), 'E14');
  assert.equal(await s.one('M1000,4:dead'), 'E22');
  assert.equal(await s.one('M1000,2:xyzw'), 'E22');
  assert.equal(await s.one('M1000'), 'E22');
  assert.equal(await s.one('X1000,0:'), 'OK'); // gdb's probe for X
  const bin = Buffer.from([0x23, 0x24, 0x7d, 0x2a, 0x00]);
  assert.equal(await s.one(Buffer.concat([Buffer.from('X1010,5:'), escapeBinary(bin)]).toString('latin1')), 'OK');
  assert.equal(await s.one('m1010,5'), '23247d2a00');
  assert.equal(await s.one('X1010,3:ab'), 'E22');
  assert.equal(await s.one('X1010,1:}'), 'E22');
  assert.equal(await s.one('m1000,x'), 'E22');
  assert.equal(await s.one('m1000,4,5'), 'E22');
});

test('Z/z: software and hardware breakpoints share the target\'s list; watchpoints by type; a full list is an error', async () => {
  const s = session();
  assert.equal(await s.one('Z0,80000020,4'), 'OK');
  assert.equal(await s.one('Z1,80000040,4'), 'OK');
  assert.equal(await s.one('Z1,80000020,4'), 'OK');
  assert.deepEqual([...s.target.bps].sort(), [0x80000020n, 0x80000040n]);
  assert.equal(await s.one('z0,80000020,4'), 'OK');
  assert.deepEqual([...s.target.bps].sort(), [0x80000020n, 0x80000040n]); // still a hardware breakpoint
  assert.equal(await s.one('z1,80000020,4'), 'OK');
  assert.deepEqual([...s.target.bps], [0x80000040n]);
  for (const a of ['1', '2', '3']) assert.equal(await s.one(`Z0,${a},2`), 'OK');
  assert.equal(await s.one('Z0,4,2'), 'E1c');
  assert.equal(s.target.bps.length, 4);
  assert.equal(await s.one('Z2,80001048,8'), 'OK');
  assert.equal(await s.one('Z3,80001050,4'), 'OK');
  assert.deepEqual(s.target.wps, [{ type: 2, addr: 0x80001048n, len: 8 }, { type: 3, addr: 0x80001050n, len: 4 }]);
  assert.equal(await s.one('Z4,80001060,1'), 'E1c');
  assert.equal(s.target.wps.length, 2);
  assert.equal(await s.one('z2,80001048,8'), 'OK');
  assert.deepEqual(s.target.wps, [{ type: 3, addr: 0x80001050n, len: 4 }]);
  assert.equal(await s.one('Z2,80001048,0'), 'E22');
  assert.equal(await s.one('Z0,zz,4'), 'E22');
  assert.equal(await s.one('z0,3,2'), 'OK');
  assert.equal(await s.one('Z0,80000000,4;X1,0'), 'OK'); // conditions are not evaluated by the stub
  assert.equal(await s.one('Z5,0,0'), '');
});

test('threads: one per vCPU, ids from 1; T, qC, qAttached, qThreadExtraInfo', async () => {
  const s = session();
  assert.equal(await s.one('qfThreadInfo'), 'm01,02');
  assert.equal(await s.one('qsThreadInfo'), 'l');
  assert.equal(await s.one('qC'), 'QC01');
  assert.equal(await s.one('qAttached'), '1');
  assert.equal(await s.one('T2'), 'OK');
  assert.equal(await s.one('T3'), 'E22');
  assert.equal(await s.one('Tp1.2'), 'OK');
  assert.equal(Buffer.from(await s.one('qThreadExtraInfo,2'), 'hex').toString(), 'CPU#1 [running]');
  assert.equal(await s.one('qThreadExtraInfo,9'), 'E22');
  assert.equal(await s.one('?'), 'T05thread:01;');
});

test('continue: the stop reply comes when the target stops, in QEMU\'s form for each cause', async () => {
  const s = session();
  assert.equal(await s.one('vCont?'), 'vCont;c;C;s;S');
  await s.one('Z0,80000020,4');
  await s.one('Z1,80000040,4');
  assert.deepEqual(await s.ask('vCont;c'), []);
  assert.equal(s.target.resumes, 1);
  s.target.halt({ kind: 'breakpoint', cpu: 1, pc: 0x80000020n });
  assert.equal(s.sent.at(-1), 'T05thread:02;swbreak:;');
  assert.equal(await s.one('qC'), 'QC02'); // the stopped vCPU becomes the current thread
  assert.deepEqual(await s.ask('c'), []);
  s.target.halt({ kind: 'breakpoint', cpu: 0, pc: 0x80000040n });
  assert.equal(s.sent.at(-1), 'T05thread:01;hwbreak:;');
  await s.ask('C05');
  s.target.halt({ kind: 'watchpoint', cpu: 0, pc: 0x8000003cn, type: 2, addr: 0x80001048n });
  assert.equal(s.sent.at(-1), 'T05thread:01;watch:80001048;');
  await s.ask('vCont;c:1');
  s.target.halt({ kind: 'watchpoint', cpu: 0, pc: 0x8000004cn, type: 3, addr: 0x80001050n });
  assert.equal(s.sent.at(-1), 'T05thread:01;rwatch:80001050;');
  await s.ask('c');
  s.target.halt({ kind: 'watchpoint', cpu: 0, pc: 0x8000004cn, type: 4, addr: 0x80001051n });
  assert.equal(s.sent.at(-1), 'T05thread:01;awatch:80001051;');
  // A stop nobody waits for (a monitor's stop after a monitor's cont) is not reported.
  const n = s.sent.length;
  s.target.halt({ kind: 'interrupt', cpu: null });
  assert.equal(s.sent.length, n);
  // c ADDR sets the pc first.
  await s.ask('c80000100');
  assert.equal(s.target.regs[0]!.get(32), 0x80000100n);
});

test('Ctrl-C stops a running target and reports SIGINT; when stopped it does nothing', async () => {
  const s = session();
  s.stub.interrupt();
  assert.equal(s.target.stops, 0);
  await s.ask('c');
  s.stub.interrupt();
  assert.equal(s.target.stops, 1);
  assert.equal(s.sent.at(-1), 'T02thread:01;');
});

test('step: s, S and vCont with a step action step one vCPU and reply at once', async () => {
  const s = session();
  assert.equal(await s.one('s'), 'T05thread:01;');
  assert.equal(await s.one('vCont;s:2;c'), 'T05thread:02;');
  assert.equal(await s.one('qC'), 'QC02');
  assert.equal(await s.one('S05'), 'T05thread:02;');
  assert.equal(await s.one('vCont;s'), 'T05thread:02;');
  assert.deepEqual(s.target.steps, [0, 1, 1, 1]);
  assert.equal(s.target.resumes, 0);
  assert.equal(await s.one('s80000010'), 'T05thread:02;');
  assert.equal(s.target.regs[1]!.get(32), 0x80000010n);
  assert.equal(await s.one('vCont;s:9'), 'E22');
  assert.equal(await s.one('vCont;t'), 'E22');
  assert.equal(await s.one('vCont;r0,1'), 'E22');
  assert.equal(await s.one('sxyz'), 'E22');
});

test('D removes every breakpoint, resumes and detaches; k and vKill end the machine', async () => {
  const s = session();
  await s.one('Z0,80000020,4');
  await s.one('Z2,80001048,8');
  assert.deepEqual(await s.ask('D'), ['OK']);
  assert.deepEqual(s.target.bps, []);
  assert.deepEqual(s.target.wps, []);
  assert.equal(s.target.resumes, 1);
  assert.ok(s.isDetached());
  const k = session();
  assert.deepEqual(await k.ask('k'), []);
  assert.ok(k.target.killed);
  const v = session();
  assert.deepEqual(await v.ask('vKill;1'), ['OK']);
  assert.ok(v.target.killed);
});

test('closing the session removes the breakpoints and stops listening for stops', async () => {
  const s = session();
  await s.one('Z0,80000020,4');
  s.stub.close();
  assert.deepEqual(s.target.bps, []);
  assert.equal(s.target.onStop, null);
});

test('random and truncated packets get a reply (or none for resumes) and never throw', async () => {
  const s = session();
  const starts = ['m', 'M', 'X', 'p', 'P', 'g', 'G', 'Z0', 'z1', 'Z2', 'H', 'T', 'q', 'qXfer:features:read:target.xml:', 'vCont;', 'v', 'Q', 'qThreadExtraInfo,'];
  for (let i = 0; i < 3000; i++) {
    const tail = randomBytes(i % 23).toString('latin1');
    const hexish = randomBytes(i % 11).toString('hex').replace(/^(.{3})/, '$1,');
    const p = starts[i % starts.length]! + (i % 2 === 0 ? tail : hexish);
    if (/^[cCsSDk]|^vKill|^vCont;[cC]/.test(p)) continue;
    await s.ask(p);
    s.target.isRunning = false;
  }
  // The session still answers normally.
  assert.equal(await s.one('qC').then((r) => /^QC0[12]$/.test(r)), true);
});
