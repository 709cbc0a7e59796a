/**
 * Where the boot images of the RISC-V virt board go, decided as QEMU's hw/riscv/boot.c
 * does: firmware (OpenSBI fw_dynamic) at the start of RAM, the kernel at the next 2 MiB
 * boundary (0x80200000), the initrd above the kernel's whole in-memory image, the
 * device tree at the top of the first 3 GiB of RAM (2 MiB aligned), and a reset
 * vector in the boot ROM that enters the firmware with a0 = hart id, a1 = FDT
 * address, a2 = fw_dynamic info (OpenSBI docs/firmware/fw_dynamic.md).
 *
 * No host I/O here: the images come as {@link ImageSource}s, read from files under
 * Node (boot.ts) and fetched by the page in the browser (src/web).
 */
import { EM_RISCV, isElf, loadElf, parseRiscvImage } from '../core/loader.js';
import { UserError } from '../../system/options.js';

const MiB = 1024 * 1024;

/** One boot image: `name` for messages, `load` gives its bytes (called once, in boot order, so errors come in that order). */
export interface ImageSource {
  name: string;
  load(): Uint8Array;
}

/** The images to boot: null where there is none (`bios` null is -bios none). */
export interface BootImages {
  bios: ImageSource | null;
  kernel: ImageSource | null;
  initrd: ImageSource | null;
  bootargs: string;
}

/** A block of bytes to copy into guest physical memory. */
export interface Blob {
  addr: number;
  data: Uint8Array;
  /** Bytes reserved from addr (>= data.length; the rest is zeroed). */
  size: number;
  what: string;
}

/** Everything the board needs to start: what goes where, and how execution begins. */
export interface BootPlan {
  blobs: Blob[];
  /** Where the reset vector jumps (firmware entry, or the program entry with -bios none). */
  start: number;
  /** Kernel entry handed to the firmware in fw_dynamic info (0 when there is no kernel). */
  kernelEntry: number;
  initrd: { start: number; end: number } | null;
  /** Guest-physical addresses of the HTIF doublewords, when the program has them. */
  htif: { tohost: number; fromhost: number | null } | null;
  bootargs: string;
}

/** Loads an ELF or a raw binary at `rawAddr`; returns its entry and blobs. */
function loadProgram(path: string, bytes: Uint8Array, rawAddr: number, what: string, plan: BootPlan): number {
  if (isElf(bytes)) {
    const elf = loadElf(bytes, EM_RISCV, path);
    for (const s of elf.segments) plan.blobs.push({ addr: s.paddr, data: s.data, size: s.memsz, what });
    const tohost = elf.symbols.get('tohost');
    if (tohost !== undefined) plan.htif = { tohost, fromhost: elf.symbols.get('fromhost') ?? null };
    return elf.entry;
  }
  plan.blobs.push({ addr: rawAddr, data: bytes, size: bytes.length, what });
  return rawAddr;
}

/** Decides the placement of the firmware, kernel and initrd in guest memory. */
export function layOutBoot(images: BootImages, ramBase: number, ramSize: number): BootPlan {
  const plan: BootPlan = { blobs: [], start: ramBase, kernelEntry: 0, initrd: null, htif: null, bootargs: images.bootargs };
  let kernelAddr = ramBase;
  if (images.bios !== null) {
    const fw = images.bios.load();
    plan.start = loadProgram(images.bios.name, fw, ramBase, 'firmware', plan);
    // RV64 kernels go to the next 2 MiB boundary after the firmware (QEMU's riscv_calc_kernel_start_addr).
    const fwEnd = Math.max(...plan.blobs.map((b) => b.addr + b.size));
    kernelAddr = Math.ceil(fwEnd / (2 * MiB)) * 2 * MiB;
  }
  let kernelEnd = kernelAddr;
  if (images.kernel !== null) {
    const kernelPath = images.kernel.name;
    const kernel = images.kernel.load();
    if (isElf(kernel)) {
      const before = plan.blobs.length;
      plan.kernelEntry = loadProgram(kernelPath, kernel, kernelAddr, 'kernel', plan);
      kernelEnd = Math.max(...plan.blobs.slice(before).map((b) => b.addr + b.size));
    } else {
      const header = parseRiscvImage(kernel, kernelPath);
      const size = Math.max(header?.imageSize ?? 0, kernel.length);
      plan.blobs.push({ addr: kernelAddr, data: kernel, size, what: 'kernel' });
      plan.kernelEntry = kernelAddr;
      kernelEnd = kernelAddr + size;
    }
    if (images.bios === null) plan.start = plan.kernelEntry;
  }
  if (images.initrd !== null) {
    // The initrd as the host side read it (boot.ts and the web worker decompress a gzip one).
    const initrd = images.initrd.load();
    // QEMU puts the initrd half-way into RAM (at most 128 MiB above the kernel); it must not overlap the kernel's .bss.
    let start = plan.kernelEntry + Math.min(ramSize / 2, 128 * MiB);
    start = Math.max(start, Math.ceil(kernelEnd / (2 * MiB)) * 2 * MiB);
    if (start + initrd.length > ramBase + ramSize) start = Math.ceil(kernelEnd / 4096) * 4096;
    plan.blobs.push({ addr: start, data: initrd, size: initrd.length, what: 'initrd' });
    plan.initrd = { start, end: start + initrd.length };
  }
  return plan;
}

/** Guest address for the FDT: the top of RAM (below 3 GiB above its base), 2 MiB aligned (QEMU's riscv_compute_fdt_addr). */
export function fdtAddress(ramBase: number, ramSize: number, fdtSize: number): number {
  const top = ramBase + Math.min(ramSize, 3072 * MiB);
  return Math.floor((top - fdtSize) / (2 * MiB)) * 2 * MiB;
}

/** Checks that every blob lies inside RAM or ROM, naming the first one that does not. */
export function checkPlacement(plan: BootPlan, regions: { base: number; size: number; name: string }[], ramMiB: number): void {
  for (const b of plan.blobs) {
    const fits = regions.some((r) => b.addr >= r.base && b.addr + b.size <= r.base + r.size);
    if (!fits) {
      const where = `0x${b.addr.toString(16)}-0x${(b.addr + b.size).toString(16)}`;
      throw new UserError(`the ${b.what} (${where}) does not fit in guest memory (-m ${ramMiB}M); try a larger -m`);
    }
  }
}

function iType(imm: number, rs1: number, f3: number, rd: number, op: number): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}

/**
 * The boot ROM contents: a six-instruction reset vector followed by its data
 * (start address, FDT address) and the fw_dynamic info structure.
 */
export function resetVector(start: number, fdtAddr: number, kernelEntry: number): Uint8Array {
  const T0 = 5, A0 = 10, A1 = 11, A2 = 12;
  const code = [
    0x00000297,                        // auipc t0, 0
    iType(0x28, T0, 0, A2, 0x13),      // addi  a2, t0, 0x28   -> fw_dynamic info
    iType(0xf14, 0, 2, A0, 0x73),      // csrr  a0, mhartid
    iType(0x20, T0, 3, A1, 0x03),      // ld    a1, 0x20(t0)   -> FDT address
    iType(0x18, T0, 3, T0, 0x03),      // ld    t0, 0x18(t0)   -> start address
    iType(0, T0, 0, 0, 0x67),          // jr    t0
  ];
  const rom = new Uint8Array(0x28 + 6 * 8);
  const v = new DataView(rom.buffer);
  code.forEach((insn, i) => v.setUint32(i * 4, insn, true));
  v.setBigUint64(0x18, BigInt(start), true);
  v.setBigUint64(0x20, BigInt(fdtAddr), true);
  // struct fw_dynamic_info: magic "OSBI", version 2, next_addr, next_mode (1 = S), options, boot_hart (-1 = any).
  v.setBigUint64(0x28, 0x4942534fn, true);
  v.setBigUint64(0x30, 2n, true);
  v.setBigUint64(0x38, BigInt(kernelEntry), true);
  v.setBigUint64(0x40, 1n, true);
  v.setBigUint64(0x48, 0n, true);
  v.setBigUint64(0x50, 0xffffffffffffffffn, true);
  return rom;
}
