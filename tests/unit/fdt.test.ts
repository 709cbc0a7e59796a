/**
 * Tests for the DTB writer (src/hw/core/fdt.ts): the blob is parsed back by a tiny
 * reader following the Devicetree Specification's DTB chapter, and decoded by dtc.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FdtBuilder, cells64 } from '../../src/hw/core/fdt.js';
import { dtsOf } from './device-helpers.js';

interface Node { name: string; props: Map<string, Uint8Array>; children: Node[] }

/** Minimal DTB reader: checks the header and returns the root node. */
function parse(blob: Uint8Array): { root: Node; header: number[] } {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const header = Array.from({ length: 10 }, (_, i) => dv.getUint32(i * 4));
  const [magic, total, offStruct, offStrings, offRsv, version, lastComp, , sizeStrings, sizeStruct] = header;
  assert.equal(magic, 0xd00dfeed);
  assert.equal(total, blob.length);
  assert.equal(version, 17);
  assert.equal(lastComp, 16);
  assert.equal(offRsv! % 8, 0);
  assert.equal(offStruct! % 4, 0);
  assert.equal(offStrings! + sizeStrings!, total);
  assert.equal(offStruct! + sizeStruct!, offStrings);
  // The reservation map holds only its terminator.
  assert.deepEqual([...blob.subarray(offRsv!, offRsv! + 16)], new Array(16).fill(0));
  const cstr = (off: number): [string, number] => {
    const end = blob.indexOf(0, off);
    return [new TextDecoder().decode(blob.subarray(off, end)), end + 1];
  };
  let p = offStruct!;
  const stack: Node[] = [];
  let root: Node | null = null;
  for (;;) {
    const tok = dv.getUint32(p);
    p += 4;
    if (tok === 1) {
      const [name, next] = cstr(p);
      p = (next + 3) & ~3;
      const node: Node = { name, props: new Map(), children: [] };
      if (stack.length) stack[stack.length - 1]!.children.push(node);
      else root = node;
      stack.push(node);
    } else if (tok === 2) {
      stack.pop();
    } else if (tok === 3) {
      const len = dv.getUint32(p);
      const [pname] = cstr(offStrings! + dv.getUint32(p + 4));
      stack[stack.length - 1]!.props.set(pname, blob.slice(p + 8, p + 8 + len));
      p = (p + 8 + len + 3) & ~3;
    } else {
      assert.equal(tok, 9);
      break;
    }
  }
  assert.equal(stack.length, 0);
  assert.equal(p, offStrings);
  return { root: root!, header };
}

const u32s = (b: Uint8Array) => Array.from({ length: b.length / 4 }, (_, i) => new DataView(b.buffer, b.byteOffset).getUint32(i * 4));

function sample(): { blob: Uint8Array; intc: number } {
  const f = new FdtBuilder(1);
  f.beginNode('');
  f.propU32('#address-cells', 2);
  f.propU32('#size-cells', 2);
  f.propString('compatible', 'riscv-virtio');
  f.beginNode('memory@80000000');
  f.propString('device_type', 'memory');
  f.propCells64('reg', [0x80000000, 0x1_2000_0000]);
  f.endNode();
  f.beginNode('cpus');
  f.propU32('#address-cells', 1);
  f.beginNode('cpu@0');
  const intc = f.allocPhandle();
  f.beginNode('interrupt-controller');
  f.propEmpty('interrupt-controller');
  f.propStrings('compatible', ['riscv,cpu-intc']);
  f.propU32('phandle', intc);
  f.endNode();
  f.endNode();
  f.endNode();
  f.beginNode('soc');
  f.propStrings('compatible', ['simple-bus']);
  f.propBytes('blob', Uint8Array.of(1, 2, 3));
  f.propU64('big', 2 ** 40 + 5);
  f.endNode();
  f.endNode();
  return { blob: f.finish(), intc };
}

test('cells64 splits values into high/low cells and rejects unsafe ones', () => {
  assert.deepEqual(cells64(0x1_2345_6789), [1, 0x23456789]);
  assert.deepEqual(cells64(0xffffffff), [0, 0xffffffff]);
  assert.throws(() => cells64(-1));
  assert.throws(() => cells64(2 ** 53));
});

test('blob parses back with header, alignment, props and dedup strings', () => {
  const { blob, intc } = sample();
  const { root, header } = parse(blob);
  assert.equal(header[7], 1); // boot_cpuid_phys
  assert.equal(intc, 1);
  assert.equal(root.name, '');
  assert.deepEqual(u32s(root.props.get('#address-cells')!), [2]);
  const [mem, cpus, soc] = root.children;
  assert.equal(mem!.name, 'memory@80000000');
  assert.deepEqual(u32s(mem!.props.get('reg')!), [0, 0x80000000, 1, 0x20000000]);
  const ic = cpus!.children[0]!.children[0]!;
  assert.equal(ic.props.get('interrupt-controller')!.length, 0);
  assert.deepEqual([...ic.props.get('compatible')!], [...new TextEncoder().encode('riscv,cpu-intc\0')]);
  assert.deepEqual([...soc!.props.get('blob')!], [1, 2, 3]);
  assert.deepEqual(u32s(soc!.props.get('big')!), [0x100, 5]);
  // "compatible" and "#address-cells" are stored once in the strings block.
  const strings = new TextDecoder().decode(blob.subarray(header[3]!));
  assert.equal(strings.split('\0').filter((s) => s === 'compatible').length, 1);
  assert.equal(strings.split('\0').filter((s) => s === '#address-cells').length, 1);
});

test('misuse is rejected', () => {
  const f = new FdtBuilder();
  assert.throws(() => f.propU32('x', 1)); // outside a node
  assert.throws(() => f.endNode());
  f.beginNode('');
  assert.throws(() => f.propCells('bad', [2 ** 32]));
  assert.throws(() => f.finish()); // unbalanced
  f.endNode();
  assert.throws(() => f.beginNode('second-root'));
  f.finish();
  assert.throws(() => f.finish());
});

test('dtc decodes the blob', (t) => {
  const dts = dtsOf(t, () => sample().blob);
  if (dts === undefined) return;
  assert.match(dts, /\/dts-v1\/;/);
  assert.match(dts, /compatible = "riscv-virtio";/);
  assert.match(dts, /reg = <0x00 0x80000000 0x01 0x20000000>;/);
  assert.match(dts, /interrupt-controller;/);
  assert.match(dts, /phandle = <0x01>;/);
  assert.match(dts, /blob = \[01 02 03\];/);
  assert.match(dts, /big = <0x100 0x05>;/);
  assert.match(dts, /cpu@0 \{/);
});
