/**
 * Direct Linux boot of an x86_64 guest on the microvm-style board: the guest memory layout,
 * the bzImage setup header, the zero page (struct boot_params) with its e820 memory map, and
 * the long-mode CPU state in which the VMM enters the kernel's 64-bit entry point. No BIOS runs.
 *
 * Follows Linux's Documentation/arch/x86/boot.rst (the setup header and the "64-bit boot
 * protocol": entry at the protected-mode kernel's load address + 0x200, paging on, a flat
 * __BOOT_CS (0x10) / __BOOT_DS (0x18) GDT, %rsi = zero page), Documentation/arch/x86/zero-page.rst
 * (boot_params offsets) and the Intel SDM vol. 3A (segment descriptors, 4-level paging, IA-32e mode).
 *
 * Everything here writes into a guest-RAM `Uint8Array` whose index is the guest physical address;
 * nothing talks to KVM. Offsets read from the kernel file are checked before use: a malformed
 * file is a {@link UserError} naming it.
 */

import { UserError } from '../../system/options.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/**
 * Start of the 32-bit MMIO hole: RAM beyond 3 GiB continues at 4 GiB, as on QEMU's microvm
 * and Firecracker. The hole holds the virtio-mmio devices, the IOAPIC and the local APICs.
 */
export const X86_HOLE_START = 3 * GiB;
/** End of the 32-bit MMIO hole: where RAM above 3 GiB is mapped. */
export const X86_HOLE_END = 4 * GiB;

/** Guest physical address of the local APICs (the architectural default). */
export const LAPIC_ADDR = 0xfee0_0000;
/** Guest physical address of KVM's in-kernel IOAPIC (its fixed default). */
export const IOAPIC_ADDR = 0xfec0_0000;
/** Input pins of KVM's in-kernel IOAPIC. */
export const IOAPIC_PINS = 24;
/**
 * IOAPIC pin of ISA IRQ 0 (the PIT), as on PCs: the MP table and the MADT both say
 * IRQ 0 → pin 2, so the KVM layer must route GSI 0 there (see {@link kvmGsiRoutes}).
 */
export const ISA_IRQ0_PIN = 2;

/** The IOAPIC as the MP table and the MADT describe it. */
export interface IoApicInfo {
  /** IOAPIC ID: the MP specification wants it distinct from every APIC ID (use the vCPU count). */
  id: number;
  /** Guest physical address of its registers ({@link IOAPIC_ADDR}). */
  addr: number;
  /** Number of input pins ({@link IOAPIC_PINS}); GSI n is pin n, GSI base 0. */
  pins: number;
}

/**
 * Where the boot structures live in guest RAM. Everything below 1 MiB except the kernel
 * and the initrd; the e820 map marks [ebda, 1 MiB) reserved and the rest usable, since
 * Linux copies what it needs (zero page, command line) before it reuses low memory.
 */
export const X86_LAYOUT = Object.freeze({
  /** GDT: null, null, __BOOT_CS = 0x10, __BOOT_DS = 0x18, 64-bit TSS = 0x20 (two slots). */
  gdt: 0x500,
  /** An empty IDT (limit 0): a fault before Linux installs its own shuts the guest down. */
  idt: 0x540,
  /** The 104-byte TSS that TR points at (KVM needs a usable TR to enter IA-32e mode). */
  tss: 0x580,
  /** struct boot_params, 4 KiB. */
  zeroPage: 0x7000,
  /** Initial %rsp/%rbp: the top of the page below the page tables. */
  stackTop: 0x8ff0,
  /** PML4, then PDPT, then four page directories of 2 MiB pages (to 0xefff). */
  pml4: 0x9000,
  pdpt: 0xa000,
  pd: 0xb000,
  /** Kernel command line, at most `cmdlineMax` bytes with its NUL. */
  cmdline: 0x2_0000,
  cmdlineMax: 0x1_0000,
  /** Start of the reserved area: the MP table, up to `acpi` (its floating pointer in the first KiB, where Linux scans). */
  ebda: 0x9_fc00,
  /** ACPI tables, RSDP first: 0xe0000-0xfffff is where Linux scans for the RSDP. */
  acpi: 0xe_0000,
  /** End of the reserved area and load address of the protected-mode kernel. */
  kernel: 0x10_0000,
});

/** Interrupt controller numbers of struct kvm_irq_routing_irqchip (KVM ABI), for {@link GsiRoute}. */
export const KVM_IRQCHIP_PIC_MASTER = 0;
export const KVM_IRQCHIP_PIC_SLAVE = 1;
export const KVM_IRQCHIP_IOAPIC = 2;

/** One KVM_IRQ_ROUTING_IRQCHIP entry: asserting `gsi` drives `pin` of `irqchip`. */
export interface GsiRoute {
  gsi: number;
  irqchip: number;
  pin: number;
}

/**
 * The GSI routing that matches the MP table and the MADT (for KVM_SET_GSI_ROUTING): GSIs 0-15
 * drive the 8259 pair and the IOAPIC, GSI 0 (where the in-kernel PIT injects) on IOAPIC pin 2
 * per {@link ISA_IRQ0_PIN}, GSI 2 (the 8259 cascade) nowhere; GSIs 16 and up drive the IOAPIC only.
 * KVM's default routing maps GSI 0 to pin 0 instead, so the KVM layer must install this one.
 */
export function kvmGsiRoutes(pins: number = IOAPIC_PINS): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < pins; gsi++) {
    if (gsi === 2) continue;
    if (gsi < 16) routes.push({ gsi, irqchip: gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, pin: gsi % 8 });
    routes.push({ gsi, irqchip: KVM_IRQCHIP_IOAPIC, pin: gsi === 0 ? ISA_IRQ0_PIN : gsi });
  }
  return routes;
}

// Setup header (boot.rst, "THE REAL-MODE KERNEL HEADER"): offsets in the file and in boot_params.
const HDR_START = 0x1f1;
const HDR_SETUP_SECTS = 0x1f1;
const HDR_SYSSIZE = 0x1f4;
const HDR_BOOT_FLAG = 0x1fe;
const HDR_JUMP_LEN = 0x201;
const HDR_MAGIC = 0x202;
const HDR_VERSION = 0x206;
const HDR_TYPE_OF_LOADER = 0x210;
const HDR_LOADFLAGS = 0x211;
const HDR_RAMDISK_IMAGE = 0x218;
const HDR_RAMDISK_SIZE = 0x21c;
const HDR_CMD_LINE_PTR = 0x228;
const HDR_INITRD_ADDR_MAX = 0x22c;
const HDR_KERNEL_ALIGNMENT = 0x230;
const HDR_RELOCATABLE = 0x234;
const HDR_XLOADFLAGS = 0x236;
const HDR_CMDLINE_SIZE = 0x238;
const HDR_PREF_ADDRESS = 0x258;
const HDR_INIT_SIZE = 0x260;
/** The setup header must end by here: edd_mbr_sig_buffer follows it in boot_params. */
const HDR_LIMIT = 0x290;

// boot_params fields outside the setup header (zero-page.rst).
const BP_ACPI_RSDP_ADDR = 0x070;
const BP_E820_ENTRIES = 0x1e8;
const BP_E820_TABLE = 0x2d0;
const E820_MAX_ENTRIES = 128;
const E820_ENTRY_SIZE = 20;
const ZERO_PAGE_SIZE = 4096;

const BOOT_FLAG = 0xaa55;
const HDRS = 0x5372_6448; // "HdrS", little-endian
/** xloadflags and the 64-bit entry point came with protocol 2.12 (Linux 3.8). */
const MIN_PROTOCOL = 0x020c;
const LOADED_HIGH = 1 << 0;
const XLF_KERNEL_64 = 1 << 0;
/** type_of_loader for a boot loader without an assigned ID. */
const LOADER_UNDEFINED = 0xff;
/** Offset of startup_64 in the protected-mode kernel. */
const ENTRY_64_OFFSET = 0x200;

/** e820 entry types (zero-page.rst, struct boot_e820_entry). */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** What {@link parseBzImage} found in a kernel file. */
export interface BzImage {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  protocol: number;
  /** Sectors of real-mode setup code after the boot sector (0 in the file means 4). */
  setupSects: number;
  /** Offset of the protected-mode kernel in the file: (setupSects + 1) * 512. */
  kernelOffset: number;
  /** The protected-mode kernel (a view into the file); its byte 0x200 is the 64-bit entry. */
  kernel: Uint8Array;
  /** The setup header as in the file, from 0x1f1 to 0x202 + the byte at 0x201. */
  setupHeader: Uint8Array;
  /** Highest address the initrd may occupy (its last byte). */
  initrdAddrMax: number;
  /** Longest command line the kernel accepts, without the NUL. */
  cmdlineSize: number;
  /** Alignment the kernel wants for its run-time location (a power of two). */
  kernelAlignment: number;
  relocatable: boolean;
  /** Preferred load address: LOAD_PHYSICAL_ADDR, the lowest address the kernel decompresses to. */
  prefAddress: number;
  /** Bytes the kernel needs from its run-time address while decompressing and booting. */
  initSize: number;
}

/**
 * Validates a bzImage for the 64-bit boot protocol. `name` is how the file is called in
 * error messages. Relocatability is reported but not required: the 64-bit entry decompresses
 * to max(load address aligned to kernel_alignment, pref_address) when relocatable and to
 * pref_address otherwise, so loading at 1 MiB works either way.
 * @throws UserError when the file is not a bzImage with a 64-bit entry point.
 */
export function parseBzImage(bytes: Uint8Array, name: string): BzImage {
  const fail = (problem: string): never => {
    throw new UserError(`${name}: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < HDR_MAGIC + 4 || view.getUint32(HDR_MAGIC, true) !== HDRS) fail('not a bzImage (no HdrS signature)');
  if (view.getUint16(HDR_BOOT_FLAG, true) !== BOOT_FLAG) fail('not a bzImage (no 0xAA55 boot flag)');
  if (bytes.length < HDR_VERSION + 2) fail('truncated setup header');
  const protocol = view.getUint16(HDR_VERSION, true);
  const version = `${protocol >> 8}.${(protocol & 0xff).toString().padStart(2, '0')}`;
  if (protocol < MIN_PROTOCOL) fail(`boot protocol ${version} is too old: 64-bit boot needs 2.12 (Linux 3.8) or later`);
  const hdrEnd = HDR_MAGIC + bytes[HDR_JUMP_LEN]!;
  if (hdrEnd > bytes.length) fail('truncated setup header');
  if (hdrEnd > HDR_LIMIT) fail(`setup header ends at 0x${hdrEnd.toString(16)}, beyond boot_params' 0x${HDR_LIMIT.toString(16)}`);
  if (hdrEnd < HDR_INIT_SIZE + 4) fail(`setup header too short for boot protocol ${version}`);

  if ((bytes[HDR_LOADFLAGS]! & LOADED_HIGH) === 0) fail('zImage (loaded low) is not supported; use a bzImage');
  if ((view.getUint16(HDR_XLOADFLAGS, true) & XLF_KERNEL_64) === 0) fail('kernel has no 64-bit entry point (a 32-bit kernel?)');

  const setupSects = bytes[HDR_SETUP_SECTS] || 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset + ENTRY_64_OFFSET >= bytes.length) fail('truncated (no protected-mode kernel after the setup code)');
  const kernel = bytes.subarray(kernelOffset);
  // syssize counts 16-byte paragraphs, rounded up; signed kernels carry extra bytes after it.
  const syssize = view.getUint32(HDR_SYSSIZE, true);
  if (syssize * 16 > kernel.length + 15) fail(`truncated (the header promises ${syssize * 16} bytes of kernel, the file has ${kernel.length})`);

  const kernelAlignment = view.getUint32(HDR_KERNEL_ALIGNMENT, true);
  if (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0) fail(`kernel_alignment 0x${kernelAlignment.toString(16)} is not a power of two`);
  const pref = view.getBigUint64(HDR_PREF_ADDRESS, true);
  if (pref >= BigInt(X86_HOLE_START)) fail(`pref_address 0x${pref.toString(16)} is not below 3 GiB`);
  const initSize = view.getUint32(HDR_INIT_SIZE, true);
  if (initSize < kernel.length) fail(`init_size ${initSize} is smaller than the kernel (${kernel.length} bytes)`);

  return {
    protocol,
    setupSects,
    kernelOffset,
    kernel,
    setupHeader: bytes.subarray(HDR_START, hdrEnd),
    initrdAddrMax: view.getUint32(HDR_INITRD_ADDR_MAX, true),
    cmdlineSize: view.getUint32(HDR_CMDLINE_SIZE, true),
    kernelAlignment,
    relocatable: bytes[HDR_RELOCATABLE] !== 0,
    prefAddress: Number(pref),
    initSize,
  };
}

/** One e820 entry. */
export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/**
 * The guest's physical memory map for `ramSize` bytes of RAM: low RAM up to the EBDA, the
 * reserved EBDA/BIOS area (MP and ACPI tables), RAM from 1 MiB to the 32-bit hole, and the
 * rest of RAM from 4 GiB. `ramSize` is at least 1 MiB ({@link loadLinux} checks more).
 */
export function e820Map(ramSize: number): E820Entry[] {
  const low = Math.min(ramSize, X86_HOLE_START);
  const map: E820Entry[] = [
    { addr: 0, size: X86_LAYOUT.ebda, type: E820_RAM },
    { addr: X86_LAYOUT.ebda, size: X86_LAYOUT.kernel - X86_LAYOUT.ebda, type: E820_RESERVED },
  ];
  if (low > X86_LAYOUT.kernel) map.push({ addr: X86_LAYOUT.kernel, size: low - X86_LAYOUT.kernel, type: E820_RAM });
  if (ramSize > X86_HOLE_START) map.push({ addr: X86_HOLE_END, size: ramSize - X86_HOLE_START, type: E820_RAM });
  return map;
}

/** What {@link loadLinux} needs. */
export interface LinuxBootOptions {
  /** The bzImage file contents. */
  kernel: Uint8Array;
  /** How the kernel file is called in error messages. */
  kernelName: string;
  initrd?: Uint8Array;
  cmdline: string;
  /** Guest RAM in bytes (what -m gave); only the part below {@link X86_HOLE_START} is in `ram`. */
  ramSize: number;
  /** Physical address of the ACPI RSDP, passed in boot_params.acpi_rsdp_addr (protocol 2.14+ kernels read it). */
  acpiRsdp?: number;
}

/** Where {@link loadLinux} put things: the input to {@link setupLongMode}. */
export interface LoadedLinux {
  /** The 64-bit entry point: the protected-mode kernel's load address + 0x200. */
  entry: number;
  /** Guest physical address of the zero page, for %rsi. */
  bootParams: number;
  /** End of the memory the kernel occupies from 1 MiB while it decompresses and boots. */
  kernelEnd: number;
  initrd: { addr: number; size: number } | null;
  cmdline: { addr: number; size: number };
}

/**
 * Loads a bzImage (and an initrd) into `ram` and writes the zero page and the command line,
 * following the 64-bit boot protocol. The protected-mode kernel goes to 1 MiB; the initrd to
 * the highest 4 KiB-aligned address below min(end of low RAM, initrd_addr_max + 1), above the
 * kernel's decompression area. Does not write the GDT or page tables: see {@link setupLongMode}.
 *
 * loadflags keeps only the kernel's own bits: CAN_USE_HEAP and heap_end_ptr describe the heap
 * of the real-mode setup code, which the 64-bit entry never runs.
 * @throws UserError when the kernel is not a usable bzImage, the command line is too long,
 *   or the kernel or initrd does not fit in guest RAM.
 */
export function loadLinux(ram: Uint8Array, opts: LinuxBootOptions): LoadedLinux {
  const image = parseBzImage(opts.kernel, opts.kernelName);
  const ramMiB = Math.round(opts.ramSize / MiB);
  const lowEnd = Math.min(opts.ramSize, X86_HOLE_START);
  if (ram.length < lowEnd) throw new RangeError(`guest RAM array (${ram.length} bytes) is smaller than the RAM below 3 GiB (${lowEnd})`);

  // The kernel decompresses to max(load address aligned up, pref_address) and needs init_size from there.
  const loadAddr = X86_LAYOUT.kernel;
  const aligned = Math.ceil(loadAddr / image.kernelAlignment) * image.kernelAlignment;
  const runAddr = image.relocatable ? Math.max(aligned, image.prefAddress) : image.prefAddress;
  const kernelEnd = Math.max(loadAddr + image.kernel.length, runAddr + image.initSize);
  if (kernelEnd > lowEnd) {
    throw new UserError(`${opts.kernelName}: the kernel needs ${Math.ceil(kernelEnd / MiB)} MiB of guest RAM to boot (-m ${ramMiB}M); try a larger -m`);
  }

  const cmdline = new TextEncoder().encode(opts.cmdline);
  if (cmdline.includes(0)) throw new UserError('kernel command line contains a NUL character');
  const cmdlineMax = Math.min(image.cmdlineSize, X86_LAYOUT.cmdlineMax - 1);
  if (cmdline.length > cmdlineMax) {
    throw new UserError(`kernel command line is too long (${cmdline.length} bytes, ${opts.kernelName} accepts at most ${cmdlineMax})`);
  }

  let initrd: LoadedLinux['initrd'] = null;
  if (opts.initrd !== undefined) {
    const size = opts.initrd.length;
    const top = Math.min(lowEnd, image.initrdAddrMax + 1);
    const addr = Math.floor((top - size) / 4096) * 4096;
    if (addr < kernelEnd) {
      throw new UserError(
        `initrd does not fit in guest RAM (-m ${ramMiB}M): ${Math.ceil(size / MiB)} MiB above the kernel's ${Math.ceil(kernelEnd / MiB)} MiB; try a larger -m`,
      );
    }
    ram.set(opts.initrd, addr);
    initrd = { addr, size };
  }

  ram.set(image.kernel, loadAddr);
  ram.fill(0, X86_LAYOUT.cmdline, X86_LAYOUT.cmdline + cmdline.length + 1);
  ram.set(cmdline, X86_LAYOUT.cmdline);

  const zp = X86_LAYOUT.zeroPage;
  ram.fill(0, zp, zp + ZERO_PAGE_SIZE);
  ram.set(image.setupHeader, zp + HDR_START);
  const bp = new DataView(ram.buffer, ram.byteOffset + zp, ZERO_PAGE_SIZE);
  bp.setUint8(HDR_TYPE_OF_LOADER, LOADER_UNDEFINED);
  bp.setUint32(HDR_CMD_LINE_PTR, X86_LAYOUT.cmdline, true);
  if (initrd !== null) {
    bp.setUint32(HDR_RAMDISK_IMAGE, initrd.addr, true);
    bp.setUint32(HDR_RAMDISK_SIZE, initrd.size, true);
  }
  if (opts.acpiRsdp !== undefined) bp.setBigUint64(BP_ACPI_RSDP_ADDR, BigInt(opts.acpiRsdp), true);
  const map = e820Map(opts.ramSize);
  if (map.length > E820_MAX_ENTRIES) throw new RangeError('too many e820 entries');
  bp.setUint8(BP_E820_ENTRIES, map.length);
  map.forEach((e, i) => {
    const off = BP_E820_TABLE + i * E820_ENTRY_SIZE;
    bp.setBigUint64(off, BigInt(e.addr), true);
    bp.setBigUint64(off + 8, BigInt(e.size), true);
    bp.setUint32(off + 16, e.type, true);
  });

  return {
    entry: loadAddr + ENTRY_64_OFFSET,
    bootParams: zp,
    kernelEnd,
    initrd,
    cmdline: { addr: X86_LAYOUT.cmdline, size: cmdline.length + 1 },
  };
}

/**
 * A segment register as KVM's struct kvm_segment has it: the hidden part the CPU caches from
 * the descriptor. All fields are plain numbers (flags 0 or 1).
 */
export interface Segment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** A descriptor-table register (struct kvm_dtable). */
export interface DescriptorTable {
  base: number;
  limit: number;
}

/**
 * The boot vCPU's state for the 64-bit entry. Every value is a plain number (all fit in 32
 * bits); the KVM layer widens them to u64. Registers not named here are zero; kvm_sregs
 * fields not named here (cr2, cr8, apic_base, interrupt_bitmap) keep KVM's values.
 */
export interface LongModeState {
  regs: { rip: number; rsi: number; rsp: number; rbp: number; rflags: number };
  sregs: {
    cs: Segment;
    ds: Segment;
    es: Segment;
    fs: Segment;
    gs: Segment;
    ss: Segment;
    tr: Segment;
    ldt: Segment;
    gdt: DescriptorTable;
    idt: DescriptorTable;
    cr0: number;
    cr3: number;
    cr4: number;
    efer: number;
  };
}

/** __BOOT_CS and __BOOT_DS of the boot protocol, then the TSS. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const BOOT_TSS = 0x20;
const GDT_ENTRIES = 6; // null, unused, CS, DS, TSS (16 bytes)
const TSS_SIZE = 104;

const CR0_PE = 1 << 0;
const CR0_ET = 1 << 4;
const CR0_NE = 1 << 5;
const CR0_PG = 0x8000_0000;
const CR4_PAE = 1 << 5;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
/** Bit 1 of RFLAGS is reserved and reads as 1; IF stays clear as the protocol requires. */
const RFLAGS_RESERVED = 1 << 1;

const PTE_PRESENT = 1 << 0;
const PTE_WRITE = 1 << 1;
const PTE_PS = 1 << 7;

function flatSegment(selector: number, type: number, code: boolean): Segment {
  return { base: 0, limit: 0xffff_ffff, selector, type, present: 1, dpl: 0, db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0 };
}

/** Encodes a code/data or 64-bit system descriptor (SDM vol. 3A 3.4.5, 7.2.3); 16 bytes for system descriptors. */
function descriptor(seg: Segment): Uint8Array {
  const out = new Uint8Array(seg.s ? 8 : 16);
  const v = new DataView(out.buffer);
  // With G set the limit is in 4 KiB units.
  const limit = seg.g ? seg.limit >>> 12 : seg.limit;
  v.setUint16(0, limit & 0xffff, true);
  v.setUint16(2, seg.base & 0xffff, true);
  out[4] = (seg.base >>> 16) & 0xff;
  out[5] = seg.type | (seg.s << 4) | (seg.dpl << 5) | (seg.present << 7);
  out[6] = ((limit >>> 16) & 0xf) | (seg.avl << 4) | (seg.l << 5) | (seg.db << 6) | (seg.g << 7);
  out[7] = (seg.base >>> 24) & 0xff;
  // Bytes 8-11 of a system descriptor hold base[63:32], zero here.
  return out;
}

/**
 * Writes the GDT, an empty IDT, the TSS and identity page tables for the first 4 GiB
 * (2 MiB pages; the 64-bit protocol needs the kernel, zero page and command line mapped),
 * and returns the boot vCPU's registers for the 64-bit entry of `boot`.
 * Secondary vCPUs need nothing: they wait for INIT/SIPI in the in-kernel LAPIC.
 */
export function setupLongMode(ram: Uint8Array, boot: Pick<LoadedLinux, 'entry' | 'bootParams'>): LongModeState {
  const L = X86_LAYOUT;
  const cs = flatSegment(BOOT_CS, 0xb, true); // execute/read, accessed
  const ds = flatSegment(BOOT_DS, 0x3, false); // read/write, accessed
  const tr: Segment = { base: L.tss, limit: TSS_SIZE - 1, selector: BOOT_TSS, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
  // KVM's reset value for LDTR: usable, empty.
  const ldt: Segment = { base: 0, limit: 0xffff, selector: 0, type: 0x2, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };

  ram.fill(0, L.gdt, L.gdt + GDT_ENTRIES * 8);
  ram.set(descriptor(cs), L.gdt + BOOT_CS);
  ram.set(descriptor(ds), L.gdt + BOOT_DS);
  ram.set(descriptor(tr), L.gdt + BOOT_TSS);
  ram.fill(0, L.idt, L.idt + 16);
  ram.fill(0, L.tss, L.tss + TSS_SIZE);
  // I/O map base at the TSS limit: no I/O permission bitmap.
  new DataView(ram.buffer, ram.byteOffset + L.tss).setUint16(0x66, TSS_SIZE, true);

  const pt = new DataView(ram.buffer, ram.byteOffset);
  ram.fill(0, L.pml4, L.pd + 4 * 4096);
  pt.setUint32(L.pml4, L.pdpt | PTE_PRESENT | PTE_WRITE, true);
  for (let i = 0; i < 4; i++) {
    const pd = L.pd + i * 4096;
    pt.setUint32(L.pdpt + i * 8, pd | PTE_PRESENT | PTE_WRITE, true);
    for (let j = 0; j < 512; j++) {
      const addr = i * GiB + j * 2 * MiB;
      // Every address is below 4 GiB, so the entry's high word stays zero.
      pt.setUint32(pd + j * 8, (addr | PTE_PRESENT | PTE_WRITE | PTE_PS) >>> 0, true);
    }
  }

  return {
    regs: { rip: boot.entry, rsi: boot.bootParams, rsp: L.stackTop, rbp: L.stackTop, rflags: RFLAGS_RESERVED },
    sregs: {
      cs,
      ds,
      es: { ...ds },
      fs: { ...ds },
      gs: { ...ds },
      ss: { ...ds },
      tr,
      ldt,
      gdt: { base: L.gdt, limit: GDT_ENTRIES * 8 - 1 },
      idt: { base: L.idt, limit: 0 },
      // Caches on (CD and NW clear, unlike KVM's reset value); NE for native FPU errors.
      cr0: (CR0_PE | CR0_ET | CR0_NE | CR0_PG) >>> 0,
      cr3: L.pml4,
      cr4: CR4_PAE,
      efer: EFER_LME | EFER_LMA,
    },
  };
}
