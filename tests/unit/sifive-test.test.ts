/**
 * Tests for the SiFive test finisher (src/hw/misc/sifive-test.ts) and its
 * device-tree nodes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { SifiveTest, sifiveTestFdtNode, sifiveTestSysconFdtNodes, type ShutdownEvent } from '../../src/hw/misc/sifive-test.js';
import { dtsOfNode } from './device-helpers.js';

function setup() {
  const events: ShutdownEvent[] = [];
  const dev = new SifiveTest((e) => events.push(e));
  return { dev, events };
}

test('pass, fail with code and reset', () => {
  const { dev, events } = setup();
  dev.write(0, 4, 0x5555);
  dev.write(0, 4, 0x3333 | (42 << 16));
  dev.write(0, 4, 0x3333 | (0xffff << 16));
  dev.write(0, 4, 0x7777);
  dev.write(0, 2, 0x5555); // 16-bit store
  assert.deepEqual(events, [
    { kind: 'poweroff', code: 0 },
    { kind: 'poweroff', code: 42 },
    { kind: 'poweroff', code: 0xffff },
    { kind: 'reset' },
    { kind: 'poweroff', code: 0 },
  ]);
});

test('other values, offsets and widths do nothing; reads return 0', () => {
  const { dev, events } = setup();
  dev.write(0, 4, 0x1234);
  dev.write(0, 4, 0);
  dev.write(4, 4, 0x5555);
  dev.write(0xffc, 4, 0x5555);
  dev.write(0, 1, 0x55);
  assert.deepEqual(events, []);
  assert.equal(dev.read(0, 4), 0);
});

test('device-tree nodes match QEMU virt', (t) => {
  const dts = dtsOfNode(t, (f) => {
    sifiveTestFdtNode(f, 0x100000, 0x1000, 4);
    sifiveTestSysconFdtNodes(f, 4);
  });
  if (dts === undefined) return;
  assert.match(dts, /test@100000 \{[^}]*phandle = <0x04>;[^}]*reg = <0x00 0x100000 0x00 0x1000>;/);
  assert.match(dts, /compatible = "sifive,test1(\\0|", ")sifive,test0(\\0|", ")syscon";/);
  assert.match(dts, /poweroff \{\s*value = <0x5555>;\s*offset = <0x00>;\s*regmap = <0x04>;\s*compatible = "syscon-poweroff";/);
  assert.match(dts, /reboot \{\s*value = <0x7777>;\s*offset = <0x00>;\s*regmap = <0x04>;\s*compatible = "syscon-reboot";/);
});
