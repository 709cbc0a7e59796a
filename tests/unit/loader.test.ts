/**
 * Tests for src/hw/core/loader.ts: ELF64 executables built byte by byte here (layouts from
 * the ELF-64 object file format), the project's own ISA test ELFs, and Linux RISC-V Image headers.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EM_RISCV, isElf, loadElf, parseRiscvImage } from '../../src/hw/core/loader.js';
import { UserError } from '../../src/system/options.js';

interface Seg {
  type?: number;
  flags?: number;
  vaddr: bigint;
  paddr?: bigint;
  data: number[];
  memsz?: bigint;
}

interface Sym {
  name: string;
  value: bigint;
  /** STB_* (0 local, 1 global, 2 weak); default global. */
  bind?: number;
  /** STT_* (0 notype, 1 object, 2 func, 3 section, 4 file); default object. */
  type?: number;
  /** Section index; default 1 (defined), 0 = undefined. */
  shndx?: number;
}

interface ElfSpec {
  cls?: number;
  endian?: number;
  type?: number;
  machine?: number;
  entry: bigint;
  segments: Seg[];
  symbols?: Sym[];
}

/** Builds an ELF64 file: header, program headers, segment data, .strtab, .symtab, section headers. */
function buildElf(spec: ElfSpec): Uint8Array {
  const phoff = 64;
  let off = phoff + 56 * spec.segments.length;
  const segOffsets = spec.segments.map((s) => {
    const at = off;
    off += s.data.length;
    return at;
  });
  const names = [0];
  const strtab: number[] = [0];
  for (const sym of spec.symbols ?? []) {
    names.push(strtab.length);
    strtab.push(...Buffer.from(sym.name, 'latin1'), 0);
  }
  const strOff = off;
  off += strtab.length;
  off = (off + 7) & ~7;
  const symOff = off;
  const symCount = 1 + (spec.symbols?.length ?? 0);
  off += 24 * symCount;
  const shoff = spec.symbols ? off : 0;
  const shnum = spec.symbols ? 3 : 0;
  off += 64 * shnum;

  const out = new Uint8Array(off);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, spec.cls ?? 2, spec.endian ?? 1, 1], 0);
  v.setUint16(16, spec.type ?? 2, true);
  v.setUint16(18, spec.machine ?? EM_RISCV, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, spec.entry, true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setBigUint64(40, BigInt(shoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, spec.segments.length, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, shnum, true);
  spec.segments.forEach((s, i) => {
    const ph = phoff + 56 * i;
    v.setUint32(ph, s.type ?? 1, true);
    v.setUint32(ph + 4, s.flags ?? 5, true);
    v.setBigUint64(ph + 8, BigInt(segOffsets[i]), true);
    v.setBigUint64(ph + 16, s.vaddr, true);
    v.setBigUint64(ph + 24, s.paddr ?? s.vaddr, true);
    v.setBigUint64(ph + 32, BigInt(s.data.length), true);
    v.setBigUint64(ph + 40, s.memsz ?? BigInt(s.data.length), true);
    out.set(s.data, segOffsets[i]);
  });
  if (spec.symbols) {
    out.set(strtab, strOff);
    spec.symbols.forEach((sym, i) => {
      const at = symOff + 24 * (i + 1);
      v.setUint32(at, names[i + 1], true);
      out[at + 4] = ((sym.bind ?? 1) << 4) | (sym.type ?? 1);
      v.setUint16(at + 6, sym.shndx ?? 1, true);
      v.setBigUint64(at + 8, sym.value, true);
    });
    // Section 1: .symtab (sh_link = 2), section 2: .strtab.
    const sh1 = shoff + 64;
    v.setUint32(sh1 + 4, 2, true);
    v.setBigUint64(sh1 + 24, BigInt(symOff), true);
    v.setBigUint64(sh1 + 32, BigInt(24 * symCount), true);
    v.setUint32(sh1 + 40, 2, true);
    v.setBigUint64(sh1 + 56, 24n, true);
    const sh2 = shoff + 128;
    v.setUint32(sh2 + 4, 3, true);
    v.setBigUint64(sh2 + 24, BigInt(strOff), true);
    v.setBigUint64(sh2 + 32, BigInt(strtab.length), true);
  }
  return out;
}

const simple: ElfSpec = {
  entry: 0x8000_0000n,
  segments: [
    { vaddr: 0x8000_0000n, data: [0x13, 0, 0, 0, 0x6f, 0, 0, 0] },
    { vaddr: 0x8000_1000n, flags: 6, data: [1, 2, 3], memsz: 0x100n },
  ],
  symbols: [
    { name: 'tohost', value: 0x8000_1000n },
    { name: 'fromhost', value: 0x8000_1040n },
  ],
};

/** Asserts that `fn` throws a UserError whose message matches `re`. */
function throwsUser(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof UserError && re.test(e.message));
}

/** Overwrites a u64 field of a copy of `bytes`. */
function patch64(bytes: Uint8Array, off: number, value: bigint): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigUint64(off, value, true);
  return copy;
}

test('loadElf: segments at their physical addresses, entry and symbols', () => {
  const elf = loadElf(buildElf(simple), EM_RISCV, 'a.elf');
  assert.equal(elf.entry, 0x8000_0000);
  assert.equal(elf.segments.length, 2);
  assert.deepEqual(
    elf.segments.map((s) => [s.paddr, [...s.data], s.memsz]),
    [
      [0x8000_0000, [0x13, 0, 0, 0, 0x6f, 0, 0, 0], 8],
      [0x8000_1000, [1, 2, 3], 0x100],
    ],
  );
  assert.equal(elf.symbols.get('tohost'), 0x8000_1000);
  assert.equal(elf.symbols.get('fromhost'), 0x8000_1040);
});

test('loadElf: paddr wins over vaddr and the entry is rebased like QEMU', () => {
  const bytes = buildElf({
    entry: 0xffff_ffff_8000_0010n,
    segments: [
      { vaddr: 0xffff_ffff_8000_0000n, paddr: 0x8020_0000n, data: new Array(32).fill(0) },
      // Not executable: must not be used to rebase the entry even though the entry is in range.
      { vaddr: 0xffff_ffff_8000_0000n, paddr: 0x9000_0000n, flags: 6, data: new Array(32).fill(0) },
    ],
    symbols: [{ name: '_start', value: 0xffff_ffff_8000_0000n }],
  });
  const elf = loadElf(bytes, EM_RISCV, 'vmlinux');
  assert.equal(elf.entry, 0x8020_0010);
  assert.equal(elf.segments[0].paddr, 0x8020_0000);
  assert.equal(elf.segments[1].paddr, 0x9000_0000);
  // Virtual kernel symbols beyond 2^53 are left out rather than rounded.
  assert.equal(elf.symbols.has('_start'), false);
});

test('loadElf: an entry point beyond 2^53 is rejected', () => {
  const bytes = buildElf({ entry: 0xffff_ffff_8000_0000n, segments: [{ vaddr: 0x8000_0000n, data: [0, 0, 0, 0] }] });
  throwsUser(() => loadElf(bytes, EM_RISCV, 'x.elf'), /^x\.elf: entry point 0xffffffff80000000 is too large$/);
});

test('loadElf: symbol table filtering', () => {
  const elf = loadElf(
    buildElf({
      entry: 0x8000_0000n,
      segments: [{ vaddr: 0x8000_0000n, data: [0, 0, 0, 0] }],
      symbols: [
        { name: 'dup', value: 1n, bind: 0 },
        { name: 'dup', value: 2n, bind: 1 },
        { name: 'dup', value: 3n, bind: 0 },
        { name: 'ext', value: 0n, shndx: 0 },
        { name: 'abs', value: 0x1234n, shndx: 0xfff1 },
        { name: 'common', value: 8n, shndx: 0xfff2 },
        { name: 'sect', value: 0x8000_0000n, type: 3, bind: 0 },
        { name: 'file.S', value: 0n, type: 4, bind: 0 },
        { name: 'weak', value: 5n, bind: 2 },
      ],
    }),
    EM_RISCV,
    'a.elf',
  );
  assert.deepEqual([...elf.symbols].sort(), [
    ['abs', 0x1234],
    ['dup', 2],
    ['weak', 5],
  ]);
});

test('loadElf: empty segments and non-PT_LOAD headers are skipped; bss is kept', () => {
  const elf = loadElf(
    buildElf({
      entry: 0x8000_0000n,
      segments: [
        { vaddr: 0x8000_0000n, data: [], memsz: 0n },
        { type: 4, vaddr: 0n, data: [9, 9] },
        { vaddr: 0x8000_0000n, data: [], memsz: 0x2000n },
      ],
    }),
    EM_RISCV,
    'a.elf',
  );
  assert.deepEqual(
    elf.segments.map((s) => [s.paddr, s.data.length, s.memsz]),
    [[0x8000_0000, 0, 0x2000]],
  );
  assert.equal(elf.symbols.size, 0);
});

test('loadElf: wrong architecture, class, endianness and type', () => {
  throwsUser(() => loadElf(buildElf({ ...simple, machine: 62 }), EM_RISCV, 'kernel.elf'), /^kernel\.elf: ELF for x86-64, expected RISC-V$/);
  throwsUser(() => loadElf(buildElf({ ...simple, machine: 9999 }), EM_RISCV, 'k'), /^k: ELF for machine 9999, expected RISC-V$/);
  throwsUser(() => loadElf(buildElf({ ...simple, cls: 1 }), EM_RISCV, 'k'), /^k: ELF32 file, expected ELF64$/);
  throwsUser(() => loadElf(buildElf({ ...simple, endian: 2 }), EM_RISCV, 'k'), /^k: big-endian ELF, expected little-endian$/);
  throwsUser(() => loadElf(buildElf({ ...simple, type: 1 }), EM_RISCV, 'k'), /^k: not an executable \(ELF type 1\)$/);
  throwsUser(() => loadElf(new TextEncoder().encode('#!/bin/sh\n'), EM_RISCV, 'k'), /^k: not an ELF file$/);
  throwsUser(() => loadElf(buildElf({ ...simple, segments: [] }), EM_RISCV, 'k'), /^k: no program headers$/);
  // ET_DYN (position-independent firmware) is accepted.
  assert.equal(loadElf(buildElf({ ...simple, type: 3 }), EM_RISCV, 'k').entry, 0x8000_0000);
});

test('loadElf: header fields pointing outside the file or past 2^53', () => {
  const good = buildElf(simple);
  const ph0 = 64;
  throwsUser(() => loadElf(patch64(good, 32, 0x10000n), EM_RISCV, 'k'), /^k: program header table lies outside the file/);
  throwsUser(() => loadElf(patch64(good, 32, 1n << 60n), EM_RISCV, 'k'), /^k: program header offset 0x1000000000000000 is too large$/);
  throwsUser(() => loadElf(patch64(good, ph0 + 8, BigInt(good.length - 2)), EM_RISCV, 'k'), /^k: segment 0 lies outside the file/);
  throwsUser(() => loadElf(patch64(good, ph0 + 32, 0x1_0000_0000n), EM_RISCV, 'k'), /^k: segment 0 file size exceeds its memory size$/);
  throwsUser(() => loadElf(patch64(good, ph0 + 24, 1n << 53n), EM_RISCV, 'k'), /^k: segment 0 physical address 0x20000000000000 is too large$/);
  throwsUser(
    () => loadElf(patch64(patch64(good, ph0 + 24, (1n << 53n) - 4n), ph0 + 16, (1n << 53n) - 4n), EM_RISCV, 'k'),
    /^k: segment 0 ends beyond 2\^53$/,
  );
  throwsUser(() => loadElf(patch64(good, 40, BigInt(good.length)), EM_RISCV, 'k'), /^k: section header table lies outside the file/);
});

test('loadElf: every truncation and single-byte corruption is a UserError, never a crash', () => {
  const good = buildElf(simple);
  for (let len = 0; len < good.length; len++) {
    // Cutting into the symbol table can leave a loadable file; anything else must be refused.
    try {
      loadElf(good.subarray(0, len), EM_RISCV, 'cut.elf');
    } catch (e) {
      assert.ok(e instanceof UserError, `length ${len}: ${String(e)}`);
      assert.match(e.message, /^cut\.elf: [^\n]+$/);
    }
  }
  for (let i = 0; i < good.length; i++) {
    for (const b of [0x00, 0x7f, 0xff]) {
      const bad = good.slice();
      bad[i] = b;
      try {
        loadElf(bad, EM_RISCV, 'bad.elf');
      } catch (e) {
        assert.ok(e instanceof UserError, `byte ${i} = ${b}: ${String(e)}`);
      }
    }
  }
  throwsUser(() => loadElf(good.subarray(0, 40), EM_RISCV, 'k'), /^k: truncated ELF header$/);
});

test('isElf', () => {
  assert.equal(isElf(buildElf(simple)), true);
  assert.equal(isElf(new Uint8Array([0x7f, 0x45, 0x4c])), false);
  assert.equal(isElf(new Uint8Array(64)), false);
});

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const isaBin = join(repo, 'tests', 'isa', 'bin');

test('loadElf: the ISA test programs load at DRAM with HTIF symbols', () => {
  // The programs are committed: their absence is a bug, not a reason to skip.
  const files = existsSync(isaBin) ? readdirSync(isaBin).filter((f) => f.endsWith('.elf')) : [];
  assert.ok(files.length > 0, `no ELF files in ${isaBin}`);
  for (const f of files) {
    const elf = loadElf(readFileSync(join(isaBin, f)), EM_RISCV, f);
    assert.equal(elf.entry, 0x8000_0000, f);
    for (const s of elf.segments) assert.ok(s.paddr >= 0x8000_0000 && s.data.length <= s.memsz, f);
    const tohost = elf.symbols.get('tohost');
    const fromhost = elf.symbols.get('fromhost');
    assert.ok(tohost !== undefined && tohost % 8 === 0, `${f}: tohost`);
    assert.ok(fromhost !== undefined && fromhost % 8 === 0, `${f}: fromhost`);
  }
});

/** A 64-byte Image header (plus `extra` bytes of payload) as Linux's head.S emits it. */
function buildImage(textOffset: bigint, imageSize: bigint, opts: { flags?: bigint; oldMagicOnly?: boolean; extra?: number } = {}): Uint8Array {
  const out = new Uint8Array(64 + (opts.extra ?? 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0500_006f, true); // j over the header (code0)
  v.setBigUint64(8, textOffset, true);
  v.setBigUint64(16, imageSize, true);
  v.setBigUint64(24, opts.flags ?? 0n, true);
  v.setUint32(32, 2, true); // version 0.2
  out.set(Buffer.from('RISCV\0\0\0', 'latin1'), 48);
  if (!opts.oldMagicOnly) out.set(Buffer.from('RSC\x05', 'latin1'), 56);
  return out;
}

test('parseRiscvImage: reads text_offset and image_size', () => {
  assert.deepEqual(parseRiscvImage(buildImage(0x20_0000n, 0x1_0000n, { extra: 100 }), 'Image'), { textOffset: 0x20_0000, imageSize: 0x1_0000 });
  // Headers before version 0.2 only have the first magic.
  assert.deepEqual(parseRiscvImage(buildImage(0n, 64n, { oldMagicOnly: true }), 'Image'), { textOffset: 0, imageSize: 64 });
});

test('parseRiscvImage: not an Image gives null', () => {
  assert.equal(parseRiscvImage(new Uint8Array(4096), 'raw.bin'), null);
  assert.equal(parseRiscvImage(buildImage(0n, 64n).subarray(0, 60), 'short'), null);
  assert.equal(parseRiscvImage(buildElf(simple), 'a.elf'), null);
});

test('parseRiscvImage: unusable headers are UserErrors', () => {
  throwsUser(() => parseRiscvImage(buildImage(0x20_0000n, 0x1000n, { flags: 1n }), 'Image'), /^Image: big-endian RISC-V Image is not supported$/);
  throwsUser(() => parseRiscvImage(buildImage(1n << 60n, 0x1000n), 'Image'), /^Image: Image header text_offset 0x1000000000000000 is too large$/);
  throwsUser(() => parseRiscvImage(buildImage(0n, 1n << 62n), 'Image'), /^Image: Image header image_size 0x4000000000000000 is too large$/);
  throwsUser(() => parseRiscvImage(buildImage(0n, 100n, { extra: 100 }), 'Image'), /^Image: Image header image_size 100 is smaller than the file \(164 bytes\)$/);
});
