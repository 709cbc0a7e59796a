/**
 * Tests for the CLINT (src/hw/intc/riscv-aclint.ts): msip, mtime and mtimecmp driven
 * through 32-bit register halves, with a fake clock whose timers are fired by hand.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RiscvAclint, clintFdtNode } from '../../src/hw/intc/riscv-aclint.js';
import { FakeClock, RecordingLine as Line, dtsOfNode } from './device-helpers.js';

function setup() {
  const clock = new FakeClock();
  const msip = [new Line(), new Line()];
  const mtip = [new Line(), new Line()];
  const clint = new RiscvAclint(clock, msip, mtip);
  return { clock, clint, msip, mtip };
}

const MTIMECMP = (h: number) => 0x4000 + 8 * h;
const MTIME = 0xbff8;

test('msip sets and clears the software interrupt line of its hart', () => {
  const { clint, msip } = setup();
  clint.write(4, 4, 0xffffffff);
  assert.equal(clint.read(4, 4), 1);
  assert.equal(msip[1]!.level, true);
  assert.equal(msip[0]!.level, false);
  clint.write(4, 4, 0);
  assert.equal(msip[1]!.level, false);
});

test('mtime counts at 10 MHz from the clock, as two halves', () => {
  const { clock, clint } = setup();
  clock.t = 1234;
  assert.equal(clint.read(MTIME, 4), 12);
  clock.t = (2 ** 32 + 7) * 100 + 99;
  assert.equal(clint.read(MTIME, 4), 7);
  assert.equal(clint.read(MTIME + 4, 4), 1);
  assert.equal(clint.mtime(), 2 ** 32 + 7);
  clint.write(MTIME, 4, 0); // read-only
  assert.equal(clint.read(MTIME, 4), 7);
});

test('mtimecmp resets to all ones; MTIP follows mtime >= mtimecmp and a timer raises it', () => {
  const { clock, clint, mtip } = setup();
  assert.equal(clint.read(MTIMECMP(1), 4), 0xffffffff);
  assert.equal(clint.read(MTIMECMP(1) + 4, 4), 0xffffffff);
  assert.equal(clock.nextDeadline(), Infinity);
  clock.t = 1000; // mtime 10
  clint.write(MTIMECMP(1), 4, 50); // low half first, as the bus splits an 8-byte store
  clint.write(MTIMECMP(1) + 4, 4, 0);
  assert.equal(mtip[1]!.level, false);
  assert.equal(clock.nextDeadline(), 5000);
  clock.t = 4999;
  clock.runExpired();
  assert.equal(mtip[1]!.level, false);
  clock.t = 5000;
  clock.runExpired();
  assert.equal(mtip[1]!.level, true);
  assert.equal(mtip[0]!.level, false);
  clint.write(MTIMECMP(1), 4, 49); // already in the past: stays pending
  assert.equal(mtip[1]!.level, true);
  clint.write(MTIMECMP(1) + 4, 4, 1); // far future: cleared and re-armed
  assert.equal(mtip[1]!.level, false);
  assert.equal(clock.nextDeadline(), (2 ** 32 + 49) * 100);
  clint.write(MTIMECMP(1) + 4, 4, 0xffffffff); // beyond reach: no timer
  assert.equal(clock.nextDeadline(), Infinity);
  clint.write(MTIMECMP(1), 4, 0);
  clint.write(MTIMECMP(1) + 4, 4, 0); // mtimecmp 0 <= mtime
  assert.equal(mtip[1]!.level, true);
});

test('instances over one shared state (one per hart thread) see each other\'s registers; each fires the timers it armed', () => {
  const { clock, clint, msip, mtip } = setup();
  const clock2 = new FakeClock();
  const msip2 = [new Line(), new Line()];
  const mtip2 = [new Line(), new Line()];
  const other = new RiscvAclint(clock2, msip2, mtip2, clint.state);
  // The shared instance keeps the registers as they are: no reset to all ones.
  clint.write(MTIMECMP(0), 4, 7);
  const third = new RiscvAclint(new FakeClock(), [new Line(), new Line()], [new Line(), new Line()], clint.state);
  assert.equal(third.read(MTIMECMP(0), 4), 7);
  other.write(0, 4, 1); // hart 0's IPI, sent from the other thread, goes out on its own lines
  assert.equal(msip2[0]!.level, true);
  assert.equal(msip[0]!.level, false);
  assert.equal(clint.read(0, 4), 1);
  clock.t = clock2.t = 1000; // mtime 10
  other.write(MTIMECMP(1), 4, 20);
  other.write(MTIMECMP(1) + 4, 4, 0);
  assert.equal(clint.read(MTIMECMP(1), 4), 20);
  assert.equal(clock.nextDeadline(), Infinity);
  assert.equal(clock2.nextDeadline(), 2000);
  clock2.t = 2000;
  clock2.runExpired();
  assert.equal(mtip2[1]!.level, true);
  assert.equal(mtip[1]!.level, false);
});

test('bad guest accesses read 0 and are ignored', () => {
  const { clint, msip, mtip } = setup();
  for (const off of [8, 0x3ffc, MTIMECMP(2), MTIMECMP(100) + 4, 0xbff0, 0xfffc, 0x10000]) {
    assert.equal(clint.read(off, 4), 0);
    clint.write(off, 4, 0);
  }
  clint.write(0, 1, 1); // 32-bit registers only
  clint.write(2, 4, 1);
  assert.equal(clint.read(0, 2), 0);
  assert.ok([...msip, ...mtip].every((l) => !l.level));
});

test('device-tree node matches QEMU virt', (t) => {
  const dts = dtsOfNode(t, (f) => {
    clintFdtNode(f, 0x2000000, 0x10000, [1, 2]);
  });
  if (dts === undefined) return;
  assert.match(dts, /clint@2000000 \{/);
  assert.match(dts, /interrupts-extended = <0x01 0x03 0x01 0x07 0x02 0x03 0x02 0x07>;/);
  assert.match(dts, /reg = <0x00 0x2000000 0x00 0x10000>;/);
  assert.match(dts, /compatible = "sifive,clint0(\\0|", ")riscv,clint0";/);
});
