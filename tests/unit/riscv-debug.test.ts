/**
 * The core's debugger support (src/target/riscv/core/debug.ts, used by the gdbstub):
 * breakpoints stop a hart before the instruction, which does not retire, and stop it
 * again until it is stepped over; watchpoints stop before the access (memory untouched)
 * and report the address; single-steps execute exactly one instruction with interrupts
 * masked; the debugger's translation has no side effects; CSRs and privilege are writable.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressSpace } from '../../src/hw/core/memory.js';
import { Mip, RiscvCpus, RunExit } from '../../src/target/riscv/cpu.js';

const BASE = 0x80000000;
const B = BigInt(BASE);
const I = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const S = (f3: number, rs2: number, rs1: number, imm: number): number =>
  (((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const addi = (rd: number, rs1: number, imm: number): number => I(0x13, 0, rd, rs1, imm);
const auipc = (rd: number, imm20: number): number => ((imm20 << 12) | (rd << 7) | 0x17) >>> 0;
const NOP = addi(0, 0, 0);
const WFI = 0x10500073;
const [T0, A0, A1] = [5, 10, 11];

/**
 * 0x00 auipc t0,0; 0x04 addi a0,x0,1; 0x08 addi a0,a0,1; 0x0c sd a0,0x400(t0);
 * 0x10 ld a1,0x408(t0); 0x14 wfi. Data at 0x400 (0) and 0x408 (0x600d). Handler at 0x100: nop.
 */
function machine() {
  const cpus = new RiscvCpus({ ramBase: BASE, ramSize: 64 << 20, romBase: 0x1000, romSize: 0x1000 }, 1, new AddressSpace(), () => 0);
  const dv = new DataView(cpus.ram.buffer, cpus.ram.byteOffset, cpus.ram.byteLength);
  [auipc(T0, 0), addi(A0, 0, 1), addi(A0, A0, 1), S(3, A0, T0, 0x400), I(0x03, 3, A1, T0, 0x408), WFI]
    .forEach((w, i) => dv.setUint32(4 * i, w, true));
  dv.setUint32(0x100, NOP, true);
  dv.setBigUint64(0x408, 0x600dn, true);
  const hart = cpus.harts[0]!;
  hart.reset(BASE);
  return { hart, dv };
}

const pc = (h: ReturnType<typeof machine>['hart']): bigint => BigInt.asUintN(64, h.pc);

test('a breakpoint stops before its instruction, again and again, until stepped over', () => {
  const { hart } = machine();
  hart.setDebug([B + 8n], []);
  assert.equal(hart.run(1000), RunExit.Debug);
  assert.equal(pc(hart), B + 8n);
  assert.equal(hart.x[A0], 1n, 'the instruction at the breakpoint has not run');
  assert.equal(hart.instret, 2);
  assert.deepEqual(hart.debugHit(), { kind: 1, addr: B + 8n });
  assert.equal(hart.run(1000), RunExit.Debug);
  assert.equal(pc(hart), B + 8n);
  assert.equal(hart.instret, 2);
  assert.equal(hart.step(true), RunExit.Budget);
  assert.equal(pc(hart), B + 12n);
  assert.equal(hart.x[A0], 2n);
  assert.equal(hart.instret, 3);
  assert.equal(hart.run(1000), RunExit.Wfi);
  assert.equal(hart.debugHit().kind, 0);
});

test('breakpoints elsewhere, or none, leave execution as it was', () => {
  const { hart, dv } = machine();
  hart.setDebug([B + 0x2000n, B + 0x104n], []); // another page; the same page, never reached
  assert.equal(hart.run(1000), RunExit.Wfi);
  assert.equal(dv.getBigUint64(0x400, true), 2n);
  assert.equal(hart.x[A1], 0x600dn);
  assert.equal(hart.instret, 6);
});

test('a write watchpoint stops before the store, leaving memory unchanged; stepping over it performs the store', () => {
  const { hart, dv } = machine();
  hart.setDebug([], [{ first: B + 0x400n, last: B + 0x407n, type: 2 }]);
  assert.equal(hart.run(1000), RunExit.Debug);
  assert.equal(pc(hart), B + 0xcn);
  assert.equal(dv.getBigUint64(0x400, true), 0n);
  assert.equal(hart.instret, 3, 'the store did not retire');
  assert.deepEqual(hart.debugHit(), { kind: 2, addr: B + 0x400n });
  // Stepped with the watchpoint on, it stops again; with it off, the store happens.
  assert.equal(hart.step(true), RunExit.Debug);
  assert.equal(pc(hart), B + 0xcn);
  assert.equal(hart.step(false), RunExit.Budget);
  assert.equal(dv.getBigUint64(0x400, true), 2n);
  // The load from the same (watched) page is not a write: it runs, and reads right.
  assert.equal(hart.run(1000), RunExit.Wfi);
  assert.equal(hart.x[A1], 0x600dn);
});

test('read and access watchpoints; an access overlapping a watched range reports the range\'s start', () => {
  const r = machine();
  r.hart.setDebug([], [{ first: B + 0x408n, last: B + 0x40bn, type: 3 }]);
  assert.equal(r.hart.run(1000), RunExit.Debug);
  assert.equal(pc(r.hart), B + 0x10n, 'the store before it did not trigger a read watchpoint');
  assert.equal(r.dv.getBigUint64(0x400, true), 2n);
  assert.equal(r.hart.x[A1], 0n);
  assert.deepEqual(r.hart.debugHit(), { kind: 3, addr: B + 0x408n });
  const a = machine();
  a.hart.setDebug([], [{ first: B + 0x404n, last: B + 0x404n, type: 4 }]);
  assert.equal(a.hart.run(1000), RunExit.Debug);
  assert.equal(pc(a.hart), B + 0xcn);
  assert.deepEqual(a.hart.debugHit(), { kind: 4, addr: B + 0x404n });
  a.hart.setDebug([], []);
  assert.equal(a.hart.run(1000), RunExit.Wfi);
});

test('a single-step masks interrupts (QEMU\'s default); run() then takes the pending one', () => {
  const { hart } = machine();
  assert.ok(hart.setCsr(0x305, B + 0x100n)); // mtvec
  assert.ok(hart.setCsr(0x304, 1n << 3n)); // mie.MSIE
  assert.ok(hart.setCsr(0x300, 1n << 3n)); // mstatus.MIE
  hart.irqLine(Mip.MSIP).set(true);
  assert.equal(hart.step(true), RunExit.Budget);
  assert.equal(pc(hart), B + 4n);
  assert.equal(hart.csr(0x342), 0n, 'no trap taken');
  assert.equal(hart.run(1), RunExit.Budget);
  assert.equal(hart.csr(0x342), (1n << 63n) | 3n);
  assert.equal(pc(hart), B + 0x104n);
});

test('the debugger\'s translation: identity in M-mode or bare; Sv39 without A/D updates; unmapped is null', () => {
  const { hart, dv } = machine();
  assert.equal(hart.translate(0x1234n), 0x1234n);
  // A 1 GiB page: VA 0x40000000 -> PA 0x80000000 (V R W X, A and D clear), root table at RAM + 0x10000.
  const root = 0x10000;
  const pte = ((B >> 12n) << 10n) | 0xfn;
  dv.setBigUint64(root + 8, pte, true);
  assert.ok(hart.setCsr(0x180, (8n << 60n) | ((B + BigInt(root)) >> 12n)));
  assert.equal(hart.translate(0x40000123n), 0x40000123n, 'M-mode does not translate');
  assert.ok(hart.setPriv(1));
  assert.equal(hart.priv, 1);
  assert.equal(hart.translate(0x40000123n), B + 0x123n);
  assert.equal(hart.translate(0x7ffff000n), B + 0x3ffff000n);
  assert.equal(hart.translate(0x1000n), null);
  assert.equal(hart.translate(0x0000800000000000n), null, 'not canonical for Sv39');
  assert.equal(dv.getBigUint64(root + 8, true), pte, 'no A/D update');
  assert.equal(hart.setPriv(2), false);
  assert.equal(hart.priv, 1);
});

test('CSRs for the debugger: FP CSRs with mstatus.FS off; read-only and missing CSRs refuse writes', () => {
  const { hart } = machine();
  assert.equal(hart.csr(0x300) & (3n << 13n), 0n);
  assert.ok(hart.setCsr(0x003, 0xe5n)); // fcsr
  assert.equal(hart.csr(0x001), 0x05n);
  assert.equal(hart.csr(0x002), 0x7n);
  assert.equal(hart.csr(0x300) & (3n << 13n), 0n, 'FS stays off');
  assert.equal(hart.setCsr(0xf14, 1n), false);
  assert.equal(hart.setCsr(0x7c0, 1n), false);
  assert.equal(hart.csr(0x7c0), 0xffff_ffff_ffff_ffffn);
});
