/**
 * The virt board: its memory map and device tree agree with QEMU's virt machine
 * (compared node by node against `qemu-system-riscv64 -M virt,dumpdtb=...` when it is
 * installed), dtc accepts the tree, and the devices answer at their addresses.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtMachine, VIRT_MEMMAP, copyNonZeroPages } from '../../src/hw/riscv/virt.js';
import { layOutBoot } from '../../src/hw/riscv/boot-plan.js';
import { NullChardev } from '../../src/chardev/null.js';
import type { VmOptions } from '../../src/system/options.js';

const opts: VmOptions = {
  machine: 'virt', memBytes: 512 * 2 ** 20, smp: 1, bios: { kind: 'none' }, serial: { kind: 'null' },
  nographic: true, noReboot: false, accel: { names: ['tcg'], thread: 'single' }, drives: [], netdevs: [], devices: [],
};
const dir = mkdtempSync(join(tmpdir(), 'vireo-virt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** dtc's source form of a blob, or null when dtc is not installed. */
function dts(blob: Uint8Array): string | null {
  const file = join(dir, `t${Math.random()}.dtb`);
  writeFileSync(file, blob);
  const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', file], { encoding: 'utf8' });
  if (r.error) return null;
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Node path -> properties (as dtc prints them), from dtc's output. */
function nodes(source: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const stack: string[] = [];
  for (const line of source.split('\n')) {
    const open = /^\s*([^\s]+) \{$/.exec(line);
    if (open) {
      stack.push(open[1]!);
      out.set(stack.slice(1).join('/') || '/', new Map());
      continue;
    }
    if (/^\s*\};$/.test(line)) { stack.pop(); continue; }
    const prop = /^\s*([#\w,.-]+)(?: = (.*))?;$/.exec(line);
    if (prop && stack.length) out.get(stack.slice(1).join('/') || '/')!.set(prop[1]!, prop[2] ?? '');
  }
  return out;
}

test('devices answer at QEMU virt addresses', () => {
  const m = new VirtMachine(opts, new NullChardev());
  assert.equal(m.bus.read(0x10001000, 4), 0x74726976, 'virtio-mmio magic in slot 0');
  assert.equal(m.bus.read(0x10008000 + 4, 4), 2, 'virtio-mmio version in slot 7');
  assert.equal(m.bus.read(0x10008000 + 8, 4), 0, 'empty slot: device id 0');
  assert.equal(m.bus.read(0x10000005, 1) & 0x60, 0x60, 'UART LSR: transmitter empty');
  assert.equal(m.bus.read(0x0c000000 + 4 * 10, 4), 0, 'PLIC priority of the UART source');
  assert.equal(m.bus.read(0x10009000, 4), -1, 'nothing after the last virtio slot');
  assert.ok(m.bus.read(0x0200bff8, 4) >= 0, 'CLINT mtime');
});

test('the generated device tree matches QEMU virt for every device Vireo has', (t) => {
  const m = new VirtMachine(opts, new NullChardev());
  const ours = dts(m.fdt('console=ttyS0', { start: 0x88200000, end: 0x88300000 }));
  if (ours === null) return t.skip('dtc not installed (apt-get install device-tree-compiler)');
  const mine = nodes(ours);
  assert.equal(mine.get('cpus/cpu@0')?.get('riscv,isa'), '"rv64imafdc_zicsr_zifencei"');
  assert.equal(mine.get('chosen')?.get('linux,initrd-start'), '<0x00 0x88200000>');
  const qemuDtb = join(dir, 'qemu.dtb');
  const q = spawnSync('qemu-system-riscv64', ['-M', `virt,dumpdtb=${qemuDtb}`, '-m', '512M', '-nographic'], { encoding: 'utf8' });
  if (q.error) return t.skip('qemu-system-riscv64 not installed (apt-get install qemu-system-misc)');
  const theirs = nodes(dts(readFileSync(qemuDtb))!);
  let compared = 0;
  for (const [path, props] of mine) {
    const other = theirs.get(path);
    assert.ok(other, `QEMU has no node ${path}`);
    for (const key of ['reg', 'interrupts', 'interrupts-extended', 'compatible', 'device_type', 'timebase-frequency', 'value', 'offset', 'clock-frequency']) {
      if (props.has(key) || other.has(key)) {
        // Phandle numbering differs; compare the interrupt numbers of interrupts-extended.
        const norm = (v: string | undefined) => key === 'interrupts-extended' ? v?.split(' ').filter((_, i) => i % 2 === 1).join(' ') : v;
        assert.equal(norm(props.get(key)), norm(other.get(key)), `${path} ${key}`);
        compared++;
      }
    }
  }
  assert.ok(compared > 40, `only ${compared} properties compared`);
});

test('-device simple-framebuffer: pixels in RAM just above -m (not in the memory node), described in /chosen', () => {
  const m = new VirtMachine({ ...opts, devices: [{ driver: 'simple-framebuffer', width: 640, height: 480 }] }, new NullChardev());
  const fbBase = 0x80000000 + opts.memBytes;
  assert.equal(m.cpus.ram.length, opts.memBytes + 640 * 480 * 4);
  const px = m.framebufferPixels()!;
  assert.equal(px.length, 640 * 480 * 4);
  assert.equal(px.byteOffset, m.cpus.ram.byteOffset + opts.memBytes);
  assert.equal(new VirtMachine(opts, new NullChardev()).framebufferPixels(), null);
  const source = dts(m.fdt('console=tty0', null));
  if (source === null) return;
  const tree = nodes(source);
  assert.equal(tree.get(`memory@80000000`)!.get('reg'), '<0x00 0x80000000 0x00 0x20000000>');
  const fb = tree.get(`chosen/framebuffer@${fbBase.toString(16)}`)!;
  assert.equal(fb.get('compatible'), '"simple-framebuffer"');
  assert.equal(fb.get('reg'), `<0x00 0x${fbBase.toString(16)} 0x00 0x${(640 * 480 * 4).toString(16)}>`);
  assert.equal(fb.get('format'), '"x8r8g8b8"');
  assert.equal(tree.get('chosen')!.get('ranges'), '');
});

test('copyNonZeroPages: the copy equals the source, and all-zero 4 KiB pages of it are not written', () => {
  const PAGE = 4096;
  // Pages: data, zero, zero, data with a single non-zero byte at its end, zero, then a partial tail.
  const src = new Uint8Array(5 * PAGE + 100);
  src.fill(7, 0, PAGE);
  src[4 * PAGE - 1] = 1;
  src.fill(9, 5 * PAGE);
  for (const [offset, sub] of [[0, 0], [4096, 0], [123, 0], [0, 1]] as const) {
    // A misaligned source view (sub) takes the byte-wise path; the destination is marked so that skipped writes show.
    const source = sub === 0 ? src : new Uint8Array(src.length + 1).fill(0).subarray(1);
    if (sub !== 0) source.set(src);
    const dst = new Uint8Array(offset + src.length + PAGE).fill(0xee);
    copyNonZeroPages(dst, offset, source);
    for (let i = 0; i < src.length; i++) {
      const page = Math.floor(i / PAGE);
      const skipped = sub === 0 && (page === 1 || page === 2 || page === 4);
      assert.equal(dst[offset + i], skipped ? 0xee : src[i], `offset ${offset}, byte ${i}`);
    }
    assert.ok(dst.subarray(0, offset).every((b) => b === 0xee) && dst.subarray(offset + src.length).every((b) => b === 0xee), 'nothing written outside');
  }
});

test('load: a kernel with zero pages lands byte-exact in fresh RAM; a machine loads once', () => {
  const m = new VirtMachine(opts, new NullChardev());
  const kernel = new Uint8Array(64 * 1024);
  for (let i = 0; i < kernel.length; i += 3) if (Math.floor(i / 4096) % 3 !== 1) kernel[i] = (i * 13) & 0xff || 1;
  const plan = layOutBoot({ bios: null, kernel: { name: 'k', load: () => kernel }, initrd: null, bootargs: '' }, VIRT_MEMMAP.dram.base, opts.memBytes);
  m.load(plan, m.fdt(plan.bootargs, plan.initrd));
  const at = plan.blobs[0]!.addr - VIRT_MEMMAP.dram.base;
  assert.deepEqual(m.cpus.ram.subarray(at, at + kernel.length), kernel);
  assert.throws(() => m.load(plan, m.fdt(plan.bootargs, plan.initrd)), /loaded once/);
});
