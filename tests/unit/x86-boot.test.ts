/**
 * Tests for the x86_64 direct boot (src/hw/i386/x86-boot.ts): bzImage header validation on
 * synthetic images (and on images/x86_64/bzImage.gz when it has been built), the zero page,
 * command line, initrd placement and e820 map written by loadLinux, and the GDT, page tables
 * and registers of setupLongMode.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import {
  BOOT_CS,
  BOOT_DS,
  BOOT_TSS,
  E820_RAM,
  E820_RESERVED,
  ISA_IRQ0_PIN,
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
  X86_HOLE_END,
  X86_HOLE_START,
  X86_LAYOUT,
  e820Map,
  kvmGsiRoutes,
  loadLinux,
  parseBzImage,
  setupLongMode,
} from '../../src/hw/i386/x86-boot.js';
import { UserError } from '../../src/system/options.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface FakeKernel {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: number;
  kernelAlignment?: number;
  prefAddress?: bigint;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  pmSize?: number;
  jumpLen?: number;
  magic?: string;
}

/** A bzImage with a real-looking setup header and a protected-mode part of recognisable bytes. */
function bzImage(o: FakeKernel = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const pmSize = o.pmSize ?? 0x3000;
  const setupSize = ((setupSects || 4) + 1) * 512;
  const bytes = new Uint8Array(setupSize + pmSize);
  const v = new DataView(bytes.buffer);
  bytes[0x1f1] = setupSects;
  v.setUint32(0x1f4, Math.ceil(pmSize / 16), true);
  v.setUint16(0x1fe, 0xaa55, true);
  bytes[0x200] = 0xeb; // jmp short over the header
  bytes[0x201] = o.jumpLen ?? 0x6a;
  bytes.set(new TextEncoder().encode(o.magic ?? 'HdrS'), 0x202);
  v.setUint16(0x206, o.version ?? 0x020f, true);
  bytes[0x211] = o.loadflags ?? 0x01;
  v.setUint32(0x22c, o.initrdAddrMax ?? 0x7fff_ffff, true);
  v.setUint32(0x230, o.kernelAlignment ?? 0x20_0000, true);
  bytes[0x234] = o.relocatable ?? 1;
  bytes[0x235] = 21;
  v.setUint16(0x236, o.xloadflags ?? 0x7f, true);
  v.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  v.setBigUint64(0x258, o.prefAddress ?? 0x100_0000n, true);
  v.setUint32(0x260, o.initSize ?? 8 * MiB, true);
  for (let i = 0; i < pmSize; i++) bytes[setupSize + i] = (i * 7 + 3) & 0xff;
  return bytes;
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => parseBzImage(bytes, 'vmlinuz'),
    (e: unknown) => e instanceof UserError && message.test(e.message) && e.message.startsWith('vmlinuz: '),
  );
}

test('parseBzImage reads the setup header of a 64-bit bzImage', () => {
  const file = bzImage();
  const img = parseBzImage(file, 'vmlinuz');
  assert.equal(img.protocol, 0x020f);
  assert.equal(img.setupSects, 4);
  assert.equal(img.kernelOffset, 5 * 512);
  assert.equal(img.kernel.length, 0x3000);
  assert.equal(img.kernel[0], 3);
  assert.equal(img.setupHeader.length, 0x202 + 0x6a - 0x1f1);
  assert.equal(img.setupHeader[0], 4);
  assert.equal(img.initrdAddrMax, 0x7fff_ffff);
  assert.equal(img.cmdlineSize, 2047);
  assert.equal(img.kernelAlignment, 0x20_0000);
  assert.equal(img.relocatable, true);
  assert.equal(img.prefAddress, 0x100_0000);
  assert.equal(img.initSize, 8 * MiB);
  // setup_sects 0 means 4.
  assert.equal(parseBzImage(bzImage({ setupSects: 0 }), 'k').kernelOffset, 5 * 512);
  assert.equal(parseBzImage(bzImage({ setupSects: 30 }), 'k').kernelOffset, 31 * 512);
});

test('parseBzImage rejects what the 64-bit boot protocol cannot load, naming the file', () => {
  rejects(new Uint8Array(100), /not a bzImage \(no HdrS signature\)/);
  rejects(bzImage({ magic: 'ELF!' }), /not a bzImage \(no HdrS signature\)/);
  const noFlag = bzImage();
  noFlag[0x1fe] = 0;
  rejects(noFlag, /no 0xAA55 boot flag/);
  rejects(bzImage({ version: 0x020a }), /boot protocol 2\.10 is too old/);
  rejects(bzImage({ xloadflags: 0x02 }), /no 64-bit entry point/);
  rejects(bzImage({ loadflags: 0 }), /zImage/);
  rejects(bzImage({ jumpLen: 0xa0 }), /beyond boot_params/);
  rejects(bzImage({ jumpLen: 0x40 }), /setup header too short/);
  rejects(bzImage().subarray(0, 0x240), /truncated setup header/);
  rejects(bzImage().subarray(0, 5 * 512 + 0x100), /truncated \(no protected-mode kernel/);
  const short = bzImage();
  new DataView(short.buffer).setUint32(0x1f4, 0x1000, true); // promises 64 KiB
  rejects(short, /truncated \(the header promises 65536 bytes/);
  rejects(bzImage({ kernelAlignment: 0x30_0000 }), /kernel_alignment 0x300000 is not a power of two/);
  rejects(bzImage({ prefAddress: 0x1_0000_0000n }), /pref_address 0x100000000 is not below 3 GiB/);
  rejects(bzImage({ initSize: 0x100 }), /init_size 256 is smaller than the kernel/);
});

test('the real bzImage is accepted', (t) => {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = join(here, '..', '..', '..', 'images', 'x86_64', 'bzImage.gz');
  if (!existsSync(path)) return t.skip('images/x86_64/bzImage.gz not built yet');
  const kernel = gunzipSync(readFileSync(path));
  const img = parseBzImage(kernel, 'bzImage');
  assert.ok(img.protocol >= 0x020c);
  const ram = new Uint8Array(Math.max(256 * MiB, img.prefAddress + img.initSize + 16 * MiB));
  const boot = loadLinux(ram, { kernel, kernelName: 'bzImage', cmdline: 'console=ttyS0', ramSize: ram.length });
  assert.equal(boot.entry, 0x10_0200);
  assert.ok(Buffer.from(ram.subarray(X86_LAYOUT.kernel, X86_LAYOUT.kernel + 4096)).equals(img.kernel.subarray(0, 4096)), "the kernel is copied to 1 MiB");
});

function zeroPage(ram: Uint8Array): DataView {
  return new DataView(ram.buffer, X86_LAYOUT.zeroPage, 4096);
}

function readE820(ram: Uint8Array): { addr: number; size: number; type: number }[] {
  const zp = zeroPage(ram);
  const out = [];
  for (let i = 0; i < zp.getUint8(0x1e8); i++) {
    const off = 0x2d0 + i * 20;
    out.push({ addr: Number(zp.getBigUint64(off, true)), size: Number(zp.getBigUint64(off + 8, true)), type: zp.getUint32(off + 16, true) });
  }
  return out;
}

test('loadLinux writes the kernel, command line, initrd and zero page', () => {
  const file = bzImage();
  const ram = new Uint8Array(64 * MiB);
  ram.fill(0xcc, X86_LAYOUT.zeroPage, X86_LAYOUT.zeroPage + 4096); // stale bytes must be cleared
  const initrd = new Uint8Array(10_000).fill(0x5a);
  const boot = loadLinux(ram, { kernel: file, kernelName: 'vmlinuz', initrd, cmdline: 'console=ttyS0 panic=-1', ramSize: ram.length, acpiRsdp: 0xe0000 });

  assert.equal(boot.entry, 0x10_0000 + 0x200);
  assert.equal(boot.bootParams, 0x7000);
  assert.deepEqual(ram.subarray(0x10_0000, 0x10_3000), file.subarray(5 * 512));
  // The kernel decompresses at pref_address (16 MiB) and needs init_size from there.
  assert.equal(boot.kernelEnd, 16 * MiB + 8 * MiB);

  const text = new TextDecoder().decode(ram.subarray(X86_LAYOUT.cmdline, X86_LAYOUT.cmdline + boot.cmdline.size));
  assert.equal(text, 'console=ttyS0 panic=-1\0');

  // The initrd sits at the top of RAM, page aligned.
  assert.ok(boot.initrd !== null);
  assert.equal(boot.initrd.addr, Math.floor((64 * MiB - 10_000) / 4096) * 4096);
  assert.equal(boot.initrd.size, 10_000);
  assert.ok(ram.subarray(boot.initrd.addr, boot.initrd.addr + 10_000).every((b) => b === 0x5a));

  const zp = zeroPage(ram);
  // The setup header is copied from the file, then the loader's fields are filled in.
  assert.equal(zp.getUint32(0x202, true), 0x5372_6448);
  assert.equal(zp.getUint16(0x206, true), 0x020f);
  assert.equal(zp.getUint8(0x210), 0xff); // type_of_loader: undefined
  assert.equal(zp.getUint8(0x211), 0x01); // loadflags: the kernel's LOADED_HIGH only
  assert.equal(zp.getUint32(0x228, true), X86_LAYOUT.cmdline);
  assert.equal(zp.getUint32(0x218, true), boot.initrd.addr);
  assert.equal(zp.getUint32(0x21c, true), 10_000);
  assert.equal(zp.getBigUint64(0x070, true), 0xe0000n);
  assert.equal(zp.getUint8(0x1ef), 0); // sentinel
  assert.equal(zp.getUint8(0x100), 0); // outside the header: cleared
  // Nothing beyond the header's end is copied.
  assert.equal(zp.getUint8(0x202 + 0x6a), 0);
  assert.deepEqual(readE820(ram), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x10_0000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x10_0000, size: 63 * MiB, type: E820_RAM },
  ]);
});

test('loadLinux keeps the initrd below initrd_addr_max and leaves optional fields zero', () => {
  const ram = new Uint8Array(128 * MiB);
  const boot = loadLinux(ram, {
    kernel: bzImage({ initrdAddrMax: 40 * MiB - 1 }),
    kernelName: 'vmlinuz',
    initrd: new Uint8Array(8192),
    cmdline: '',
    ramSize: ram.length,
  });
  assert.equal(boot.initrd?.addr, 40 * MiB - 8192);
  assert.equal(zeroPage(ram).getBigUint64(0x070, true), 0n);
  assert.equal(ram[X86_LAYOUT.cmdline], 0);
  assert.equal(boot.cmdline.size, 1);
});

test('a non-relocatable kernel runs at pref_address; a relocatable one at its aligned load address at least', () => {
  const ram = new Uint8Array(96 * MiB);
  const opts = { kernelName: 'k', cmdline: '', ramSize: ram.length };
  const fixed = loadLinux(ram, { ...opts, kernel: bzImage({ relocatable: 0, prefAddress: 0x200_0000n, initSize: 4 * MiB }) });
  assert.equal(fixed.kernelEnd, 36 * MiB);
  const low = loadLinux(ram, { ...opts, kernel: bzImage({ prefAddress: 0x10_0000n, initSize: 4 * MiB }) });
  assert.equal(low.kernelEnd, 2 * MiB + 4 * MiB); // 1 MiB aligned up to 2 MiB
});

test('loadLinux reports what does not fit as one-line user errors', () => {
  const ram = new Uint8Array(16 * MiB);
  const base = { kernel: bzImage(), kernelName: 'vmlinuz', cmdline: '', ramSize: ram.length };
  assert.throws(
    () => loadLinux(ram, base),
    (e: unknown) => e instanceof UserError && e.message === 'vmlinuz: the kernel needs 24 MiB of guest RAM to boot (-m 16M); try a larger -m',
  );

  const big = new Uint8Array(64 * MiB);
  const opts = { ...base, ramSize: big.length };
  assert.throws(
    () => loadLinux(big, { ...opts, initrd: new Uint8Array(41 * MiB) }),
    (e: unknown) => e instanceof UserError && /^initrd does not fit in guest RAM \(-m 64M\)/.test(e.message),
  );
  assert.throws(
    () => loadLinux(big, { ...opts, kernel: bzImage({ cmdlineSize: 10 }), cmdline: 'console=ttyS0' }),
    (e: unknown) => e instanceof UserError && e.message === 'kernel command line is too long (13 bytes, vmlinuz accepts at most 10)',
  );
  assert.throws(() => loadLinux(big, { ...opts, cmdline: 'a\0b' }), UserError);
  // A RAM array smaller than the RAM it claims is a programming error, not a user error.
  assert.throws(() => loadLinux(new Uint8Array(MiB), opts), RangeError);
});

test('the e820 map skips the 32-bit hole', () => {
  assert.deepEqual(e820Map(3 * GiB), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x60400, type: E820_RESERVED },
    { addr: 0x10_0000, size: 3 * GiB - 0x10_0000, type: E820_RAM },
  ]);
  const big = e820Map(8 * GiB);
  assert.equal(big.length, 4);
  assert.deepEqual(big[2], { addr: 0x10_0000, size: X86_HOLE_START - 0x10_0000, type: E820_RAM });
  assert.deepEqual(big[3], { addr: X86_HOLE_END, size: 5 * GiB, type: E820_RAM });
  // RAM total is what -m asked for.
  assert.equal(big.filter((e) => e.type === E820_RAM).reduce((n, e) => n + e.size, 0), 8 * GiB - 0x60400);
});

/** Walks the 4-level page tables like the MMU: returns the physical address, or null when unmapped. */
function translate(ram: Uint8Array, cr3: number, va: number): number | null {
  const v = new DataView(ram.buffer);
  const entry = (table: number, index: number): bigint => v.getBigUint64(table + index * 8, true);
  const pml4e = entry(cr3, Math.floor(va / 2 ** 39) % 512);
  if ((pml4e & 1n) === 0n) return null;
  const pdpte = entry(Number(pml4e & 0xf_ffff_f000n), Math.floor(va / 2 ** 30) % 512);
  if ((pdpte & 1n) === 0n || (pdpte & 0x80n) !== 0n) return null; // no 1 GiB pages expected
  const pde = entry(Number(pdpte & 0xf_ffff_f000n), Math.floor(va / 2 ** 21) % 512);
  if ((pde & 1n) === 0n || (pde & 0x80n) === 0n || (pde & 2n) === 0n) return null;
  return Number(pde & 0xf_ffe0_0000n) + (va % (2 * MiB));
}

test('setupLongMode writes the GDT and identity page tables and returns the 64-bit entry state', () => {
  const ram = new Uint8Array(64 * MiB);
  const state = setupLongMode(ram, { entry: 0x10_0200, bootParams: 0x7000 });
  const v = new DataView(ram.buffer);
  const gdt = (sel: number) => v.getBigUint64(X86_LAYOUT.gdt + sel, true);
  assert.equal(gdt(0), 0n);
  assert.equal(gdt(0x08), 0n);
  assert.equal(gdt(BOOT_CS), 0x00af_9b00_0000_ffffn); // 64-bit code, execute/read, 4 GiB flat
  assert.equal(gdt(BOOT_DS), 0x00cf_9300_0000_ffffn); // data, read/write, 4 GiB flat
  assert.equal(gdt(BOOT_TSS), 0x0000_8b00_0580_0067n); // busy 64-bit TSS at 0x580
  assert.equal(gdt(BOOT_TSS + 8), 0n);
  assert.equal(v.getUint16(X86_LAYOUT.tss + 0x66, true), 104); // no I/O bitmap

  const { regs, sregs } = state;
  assert.deepEqual(regs, { rip: 0x10_0200, rsi: 0x7000, rsp: 0x8ff0, rbp: 0x8ff0, rflags: 2 });
  assert.deepEqual(sregs.gdt, { base: 0x500, limit: 47 });
  assert.deepEqual(sregs.idt, { base: 0x540, limit: 0 });
  assert.equal(sregs.cr0, 0x8000_0031);
  assert.equal(sregs.cr3, 0x9000);
  assert.equal(sregs.cr4, 0x20);
  assert.equal(sregs.efer, 0x500);
  assert.equal(sregs.cs.selector, 0x10);
  assert.equal(sregs.cs.l, 1);
  assert.equal(sregs.cs.db, 0);
  for (const s of [sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss]) {
    assert.deepEqual(s, { base: 0, limit: 0xffff_ffff, selector: 0x18, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  }
  assert.equal(sregs.tr.type, 0xb);
  assert.equal(sregs.tr.selector, 0x20);
  assert.equal(sregs.tr.s, 0);
  assert.equal(sregs.ldt.type, 2);

  for (const va of [0, 0x7000, 0x10_0200, 0x20_0000, 0x1234_5678, X86_HOLE_START + 5, 0xfee0_0000, 2 ** 32 - 1]) {
    assert.equal(translate(ram, sregs.cr3, va), va, `0x${va.toString(16)}`);
  }
  assert.equal(translate(ram, sregs.cr3, 2 ** 32), null);
});

test('the GSI routing matches the tables: IRQ 0 on IOAPIC pin 2, no cascade', () => {
  const routes = kvmGsiRoutes();
  assert.ok(!routes.some((r) => r.gsi === 2));
  assert.deepEqual(
    routes.filter((r) => r.gsi === 0),
    [
      { gsi: 0, irqchip: KVM_IRQCHIP_PIC_MASTER, pin: 0 },
      { gsi: 0, irqchip: KVM_IRQCHIP_IOAPIC, pin: ISA_IRQ0_PIN },
    ],
  );
  assert.deepEqual(
    routes.filter((r) => r.gsi === 12),
    [
      { gsi: 12, irqchip: KVM_IRQCHIP_PIC_SLAVE, pin: 4 },
      { gsi: 12, irqchip: KVM_IRQCHIP_IOAPIC, pin: 12 },
    ],
  );
  assert.deepEqual(
    routes.filter((r) => r.gsi >= 16),
    Array.from({ length: 8 }, (_, i) => ({ gsi: 16 + i, irqchip: KVM_IRQCHIP_IOAPIC, pin: 16 + i })),
  );
  assert.equal(routes.length, 15 * 2 + 8);
});
