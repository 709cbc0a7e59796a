/**
 * Tests for the SiFive PLIC (src/hw/intc/riscv-plic.ts), driven through its registers
 * as the RISC-V PLIC Specification lays them out.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RiscvPlic, plicFdtNode } from '../../src/hw/intc/riscv-plic.js';
import { RecordingLine as Line, dtsOfNode } from './device-helpers.js';

const PRIO = (src: number) => 4 * src;
const PENDING = 0x1000;
const ENABLE = (ctx: number) => 0x2000 + 0x80 * ctx;
const THRESHOLD = (ctx: number) => 0x200000 + 0x1000 * ctx;
const CLAIM = (ctx: number) => THRESHOLD(ctx) + 4;

function setup(numSources = 96) {
  const outs = [new Line(), new Line(), new Line(), new Line()]; // 2 harts: M, S, M, S
  const plic = new RiscvPlic(outs, numSources);
  return { plic, outs };
}

test('priority and threshold registers hold 3 bits; source 0 is hardwired to 0', () => {
  const { plic } = setup();
  plic.write(PRIO(5), 4, 0xffffffff);
  assert.equal(plic.read(PRIO(5), 4), 7);
  plic.write(PRIO(0), 4, 3);
  assert.equal(plic.read(PRIO(0), 4), 0);
  plic.write(THRESHOLD(3), 4, 0x1f);
  assert.equal(plic.read(THRESHOLD(3), 4), 7);
});

test('a raised line pends; the enabled context output follows priority and threshold', () => {
  const { plic, outs } = setup();
  plic.line(10).set(true);
  assert.equal(plic.read(PENDING, 4), 1 << 10);
  assert.equal(outs[1]!.level, false); // not enabled, priority 0
  plic.write(ENABLE(1), 4, 1 << 10);
  assert.equal(outs[1]!.level, false); // priority 0 never interrupts
  plic.write(PRIO(10), 4, 1);
  assert.equal(outs[1]!.level, true);
  assert.equal(outs[0]!.level, false);
  assert.equal(outs[3]!.level, false);
  plic.write(THRESHOLD(1), 4, 1);
  assert.equal(outs[1]!.level, false); // priority must exceed the threshold
  plic.write(THRESHOLD(1), 4, 0);
  assert.equal(outs[1]!.level, true);
  plic.line(10).set(false);
  assert.equal(plic.read(PENDING, 4), 0); // pending follows the level
  assert.equal(outs[1]!.level, false);
});

test('claim/complete: a claimed level source is not re-pended until completed', () => {
  const { plic, outs } = setup();
  const l = plic.line(33);
  plic.write(PRIO(33), 4, 2);
  plic.write(ENABLE(1) + 4, 4, 1 << 1);
  l.set(true);
  assert.equal(outs[1]!.level, true);
  assert.equal(plic.read(CLAIM(1), 4), 33);
  assert.equal(plic.read(PENDING + 4, 4), 0);
  assert.equal(outs[1]!.level, false);
  l.set(true); // the device re-asserts while claimed
  assert.equal(plic.read(PENDING + 4, 4), 0);
  assert.equal(plic.read(CLAIM(1), 4), 0);
  plic.write(CLAIM(1), 4, 33); // complete with the line still high: new request
  assert.equal(plic.read(PENDING + 4, 4), 1 << 1);
  assert.equal(outs[1]!.level, true);
  assert.equal(plic.read(CLAIM(1), 4), 33);
  l.set(false);
  plic.write(CLAIM(1), 4, 33);
  assert.equal(outs[1]!.level, false);
  assert.equal(plic.read(CLAIM(1), 4), 0);
});

test('claim picks the highest priority, lowest id on ties', () => {
  const { plic, outs } = setup();
  for (const [src, prio] of [[5, 2], [3, 2], [70, 5], [9, 1]] as const) {
    plic.write(PRIO(src), 4, prio);
    plic.line(src).set(true);
  }
  plic.write(ENABLE(0), 4, 0xffffffff);
  plic.write(ENABLE(0) + 8, 4, 0xffffffff);
  assert.equal(outs[0]!.level, true);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => plic.read(CLAIM(0), 4)), [70, 3, 5, 9, 0]);
  assert.equal(outs[0]!.level, false);
});

test('completing a source not enabled for the context is ignored', () => {
  const { plic, outs } = setup();
  plic.write(PRIO(4), 4, 1);
  plic.write(ENABLE(2), 4, 1 << 4);
  plic.line(4).set(true);
  assert.equal(plic.read(CLAIM(2), 4), 4);
  plic.write(CLAIM(3), 4, 4); // context 3 does not have source 4 enabled
  assert.equal(outs[2]!.level, false);
  plic.write(CLAIM(2), 4, 4);
  assert.equal(outs[2]!.level, true);
});

test('enable bits exist only for real sources', () => {
  const { plic } = setup(40);
  plic.write(ENABLE(0), 4, 0xffffffff);
  plic.write(ENABLE(0) + 4, 4, 0xffffffff);
  assert.equal(plic.read(ENABLE(0), 4), 0xfffffffe); // source 0 does not exist
  assert.equal(plic.read(ENABLE(0) + 4, 4), 0xff); // sources 32..39
  assert.equal(plic.read(ENABLE(0) + 8, 4), 0);
  assert.throws(() => plic.line(0));
  assert.throws(() => plic.line(40));
});

test('bad guest accesses read 0 and are ignored, never throw', () => {
  const { plic, outs } = setup();
  for (const off of [PRIO(200), 0xffc, PENDING + 0x7c, ENABLE(4), ENABLE(1) + 0x7c, THRESHOLD(4), CLAIM(0) + 4, 0x5ffffc]) {
    assert.equal(plic.read(off, 4), 0);
    plic.write(off, 4, 0xffffffff);
  }
  plic.write(PENDING, 4, 0xffffffff); // pending bits are read-only
  assert.equal(plic.read(PENDING, 4), 0);
  plic.write(PRIO(1), 1, 7); // only 32-bit accesses
  assert.equal(plic.read(PRIO(1), 4), 0);
  plic.write(PRIO(1) + 2, 4, 7);
  assert.equal(plic.read(PRIO(1), 2), 0);
  plic.write(CLAIM(0), 4, 0); // completing source 0 or a bogus id
  plic.write(CLAIM(0), 4, 0xffffffff);
  assert.ok(outs.every((o) => !o.level && o.sets === 0));
});

test('device-tree node matches QEMU virt', (t) => {
  const dts = dtsOfNode(t, (f) => {
    plicFdtNode(f, 0xc000000, 0x600000, 3, [1, 2], 95);
  });
  if (dts === undefined) return;
  assert.match(dts, /plic@c000000 \{/);
  // dtc prints a stringlist either as "a", "b" or as "a\0b" depending on its version.
  assert.match(dts, /compatible = "sifive,plic-1\.0\.0(\\0|", ")riscv,plic0";/);
  assert.match(dts, /riscv,ndev = <0x5f>;/);
  assert.match(dts, /reg = <0x00 0xc000000 0x00 0x600000>;/);
  assert.match(dts, /interrupts-extended = <0x01 0x0b 0x01 0x09 0x02 0x0b 0x02 0x09>;/);
  assert.match(dts, /interrupt-controller;/);
  assert.match(dts, /#interrupt-cells = <0x01>;/);
  assert.match(dts, /#address-cells = <0x00>;/);
  assert.match(dts, /phandle = <0x03>;/);
});
