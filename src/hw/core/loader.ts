/**
 * Guest image loaders: ELF64 executables and the Linux RISC-V `Image` header.
 *
 * Follows the System V ABI ELF specification (ELF-64 Object File Format, version 1.5)
 * and Linux's Documentation/arch/riscv/boot-image-header.rst. Like QEMU's load_elf(),
 * PT_LOAD segments go to their physical address (p_paddr), and an entry point inside an
 * executable segment whose virtual and physical addresses differ is translated to the
 * physical one, so a Linux vmlinux linked at 0xffffffff80000000 starts at its load address.
 *
 * Every offset and size is checked against the file before use: a malformed file is a
 * {@link UserError} naming the file, never an exception from a typed-array view.
 */

import { UserError } from '../../system/options.js';

/** e_machine of RISC-V. */
export const EM_RISCV = 243;

/** One PT_LOAD segment: `data` (a view into the file) goes at `paddr`, zero-filled up to `memsz`. */
export interface ElfSegment {
  paddr: number;
  data: Uint8Array;
  memsz: number;
}

/** What {@link loadElf} found in an executable. */
export interface ElfImage {
  /** Entry point, as a physical address (see the file comment). */
  entry: number;
  /** Non-empty PT_LOAD segments, in program header order. */
  segments: ElfSegment[];
  /**
   * Defined symbols from .symtab by name (e.g. `tohost`, `fromhost`), globals winning over
   * locals of the same name. Symbols whose value does not fit below 2^53 are left out.
   */
  symbols: Map<string, number>;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PF_X = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const STB_LOCAL = 0;
const STT_SECTION = 3;
const STT_FILE = 4;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
/** e_phnum value meaning "the real count is in section header 0's sh_info". */
const PN_XNUM = 0xffff;

const utf8 = new TextDecoder();

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;

/** Names for the e_machine values a user is likely to pass by mistake. */
const MACHINE_NAMES: ReadonlyMap<number, string> = new Map([
  [2, 'SPARC'],
  [3, 'x86'],
  [8, 'MIPS'],
  [20, 'PowerPC'],
  [21, 'PowerPC64'],
  [22, 'S/390'],
  [40, 'ARM'],
  [43, 'SPARC64'],
  [62, 'x86-64'],
  [183, 'AArch64'],
  [243, 'RISC-V'],
  [258, 'LoongArch'],
]);

function machineName(machine: number): string {
  return MACHINE_NAMES.get(machine) ?? `machine ${machine}`;
}

/** True when `bytes` starts with the ELF magic (any class, endianness or machine). */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && ELF_MAGIC.every((b, i) => bytes[i] === b);
}

/** True when `bytes` starts with the gzip magic (a compressed image, to unpack before loading). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an ELF64 little-endian executable for `expectMachine` (e.g. {@link EM_RISCV}).
 * `name` is how the file is called in error messages.
 * @throws UserError when the file is not such an executable or is malformed.
 */
export function loadElf(bytes: Uint8Array, expectMachine: number, name: string): ElfImage {
  const fail = (problem: string): never => {
    throw new UserError(`${name}: ${problem}`);
  };
  if (!isElf(bytes)) fail('not an ELF file');
  if (bytes.length < 16) fail('truncated ELF header');
  if (bytes[4] !== ELFCLASS64) {
    fail(bytes[4] === 1 ? 'ELF32 file, expected ELF64' : `invalid ELF class ${bytes[4]}`);
  }
  if (bytes[5] !== ELFDATA2LSB) {
    fail(bytes[5] === 2 ? 'big-endian ELF, expected little-endian' : `invalid ELF data encoding ${bytes[5]}`);
  }
  if (bytes.length < EHDR_SIZE) fail('truncated ELF header');

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (off: number) => view.getUint16(off, true);
  const u32 = (off: number) => view.getUint32(off, true);
  const u64 = (off: number) => view.getBigUint64(off, true);
  /** A u64 field that must be usable as a JS number (an address, offset or size). */
  const num = (off: number, what: string): number => {
    const v = u64(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} 0x${v.toString(16)} is too large`);
    return Number(v);
  };
  /** Checks that [off, off + size) lies inside the file. */
  const inFile = (off: number, size: number, what: string): void => {
    if (off > bytes.length || size > bytes.length - off) fail(`${what} lies outside the file (truncated?)`);
  };

  const machine = u16(18);
  if (machine !== expectMachine) fail(`ELF for ${machineName(machine)}, expected ${machineName(expectMachine)}`);
  if (bytes[6] !== EV_CURRENT || u32(20) !== EV_CURRENT) fail('unsupported ELF version');
  const type = u16(16);
  if (type !== ET_EXEC && type !== ET_DYN) fail(`not an executable (ELF type ${type})`);

  const entryVirt = u64(24);
  const phoff = num(32, 'program header offset');
  const shoff = num(40, 'section header offset');
  const phentsize = u16(54);
  let phnum = u16(56);
  const shentsize = u16(58);
  let shnum = u16(60);

  // Section header 0 carries the real counts when they overflow the 16-bit fields.
  if (shoff !== 0 && (shnum === 0 || phnum === PN_XNUM)) {
    if (shentsize < SHDR_SIZE) fail(`bad section header size ${shentsize}`);
    inFile(shoff, SHDR_SIZE, 'section header 0');
    if (shnum === 0) shnum = num(shoff + 32, 'section count');
    if (phnum === PN_XNUM) phnum = u32(shoff + 44);
  }

  if (phnum === 0) fail('no program headers');
  if (phentsize < PHDR_SIZE) fail(`bad program header size ${phentsize}`);
  inFile(phoff, phnum * phentsize, 'program header table');

  const segments: ElfSegment[] = [];
  let entry: bigint = entryVirt;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(ph) !== PT_LOAD) continue;
    const flags = u32(ph + 4);
    const offset = num(ph + 8, `segment ${i} offset`);
    const vaddr = u64(ph + 16);
    const filesz = num(ph + 32, `segment ${i} file size`);
    const memsz = num(ph + 40, `segment ${i} memory size`);
    if (filesz > memsz) fail(`segment ${i} file size exceeds its memory size`);
    inFile(offset, filesz, `segment ${i}`);
    // The entry in e_entry is virtual; QEMU rebases it into the segment's physical range.
    const paddrBig = u64(ph + 24);
    if ((flags & PF_X) !== 0 && vaddr !== paddrBig && entryVirt >= vaddr && entryVirt < vaddr + BigInt(filesz)) {
      entry = entryVirt - vaddr + paddrBig;
    }
    if (memsz === 0) continue;
    const paddr = num(ph + 24, `segment ${i} physical address`);
    if (paddr + memsz > Number.MAX_SAFE_INTEGER) fail(`segment ${i} ends beyond 2^53`);
    segments.push({ paddr, data: bytes.subarray(offset, offset + filesz), memsz });
  }
  if (segments.length === 0) fail('no loadable segments');
  if (entry > BigInt(Number.MAX_SAFE_INTEGER)) fail(`entry point 0x${entry.toString(16)} is too large`);

  const symbols = shoff === 0 || shnum === 0 ? new Map<string, number>() : readSymbols();
  return { entry: Number(entry), segments, symbols };

  function readSymbols(): Map<string, number> {
    if (shentsize < SHDR_SIZE) fail(`bad section header size ${shentsize}`);
    inFile(shoff, shnum * shentsize, 'section header table');
    const symbols = new Map<string, number>();
    const globals = new Set<string>();
    for (let i = 0; i < shnum; i++) {
      const sh = shoff + i * shentsize;
      if (u32(sh + 4) !== SHT_SYMTAB) continue;
      const symoff = num(sh + 24, 'symbol table offset');
      const symsize = num(sh + 32, 'symbol table size');
      const entsize = num(sh + 56, 'symbol entry size');
      const link = u32(sh + 40);
      if (entsize < SYM_SIZE) fail(`bad symbol entry size ${entsize}`);
      inFile(symoff, symsize, 'symbol table');
      if (link >= shnum) fail(`symbol table links to missing section ${link}`);
      const str = shoff + link * shentsize;
      if (u32(str + 4) !== SHT_STRTAB) fail('symbol table links to a section that is not a string table');
      const stroff = num(str + 24, 'string table offset');
      const strsize = num(str + 32, 'string table size');
      inFile(stroff, strsize, 'string table');
      const strings = bytes.subarray(stroff, stroff + strsize);

      for (let s = symoff; s + SYM_SIZE <= symoff + symsize; s += entsize) {
        const info = bytes[s + 4];
        const shndx = u16(s + 6);
        const symType = info & 0xf;
        if (shndx === SHN_UNDEF || (shndx >= SHN_LORESERVE && shndx !== SHN_ABS)) continue;
        if (symType === STT_SECTION || symType === STT_FILE) continue;
        const value = u64(s + 8);
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) continue;
        const symName = cString(strings, u32(s), 'symbol name');
        if (symName === '') continue;
        const isGlobal = info >> 4 !== STB_LOCAL;
        if (symbols.has(symName) && (globals.has(symName) || !isGlobal)) continue;
        symbols.set(symName, Number(value));
        if (isGlobal) globals.add(symName);
      }
    }
    return symbols;
  }

  function cString(table: Uint8Array, off: number, what: string): string {
    if (off >= table.length) fail(`${what} lies outside its string table`);
    const end = table.indexOf(0, off);
    if (end < 0) fail(`${what} is not NUL-terminated`);
    return utf8.decode(table.subarray(off, end));
  }
}

/** The fields of a Linux RISC-V `Image` header that a loader needs. */
export interface RiscvImageHeader {
  /** Offset from the start of RAM (2 MiB aligned on RV64) where the image wants to be loaded. */
  textOffset: number;
  /** Bytes the image occupies once running, including its .bss (at least the file size). */
  imageSize: number;
}

const IMAGE_HEADER_SIZE = 64;
const IMAGE_MAGIC = 'RISCV\0\0\0';
const IMAGE_MAGIC2 = 'RSC\x05';
const IMAGE_FLAG_BE = 1n;

function hasAscii(bytes: Uint8Array, off: number, text: string): boolean {
  if (bytes.length < off + text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[off + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Reads the header of a Linux RISC-V `Image` (arch/riscv/kernel/head.S).
 * Returns null when `bytes` does not start with such a header (neither "RISCV\0\0\0" at 48 nor
 * the newer "RSC\x05" at 56): the caller then loads the file as a raw binary, as QEMU does.
 * @throws UserError when the header is present but unusable.
 */
export function parseRiscvImage(bytes: Uint8Array, name: string): RiscvImageHeader | null {
  if (bytes.length < IMAGE_HEADER_SIZE) return null;
  // "magic" is deprecated since header version 0.2 but older kernels only have it.
  if (!hasAscii(bytes, 56, IMAGE_MAGIC2) && !hasAscii(bytes, 48, IMAGE_MAGIC)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (off: number, what: string): number => {
    const v = view.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${name}: Image header ${what} 0x${v.toString(16)} is too large`);
    return Number(v);
  };
  if ((view.getBigUint64(24, true) & IMAGE_FLAG_BE) !== 0n) throw new UserError(`${name}: big-endian RISC-V Image is not supported`);
  const textOffset = field(8, 'text_offset');
  const imageSize = field(16, 'image_size');
  if (imageSize < bytes.length) {
    throw new UserError(`${name}: Image header image_size ${imageSize} is smaller than the file (${bytes.length} bytes)`);
  }
  return { textOffset, imageSize };
}
