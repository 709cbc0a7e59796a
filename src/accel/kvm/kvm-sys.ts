/**
 * The raw KVM interface: the libc functions Vireo calls through koffi, the
 * x86_64 KVM ioctl request numbers, and the layouts of the structs those
 * ioctls take, with (de)serialisers between plain objects and bytes.
 *
 * Nothing here has policy; `kvm.ts` builds the safe classes on top. Layouts
 * follow <linux/kvm.h> and <asm/kvm.h> for x86_64 (KVM API version 12) and
 * are checked against the kernel by the tests that run real guests.
 *
 * libc is loaded lazily and once per thread: every worker_threads Worker gets
 * its own instance of this module, so each vCPU thread binds its own copy.
 */
import koffi from 'koffi';

// ---------------------------------------------------------------------------
// libc

/** The libc entry points used by the KVM binding, bound for the current thread. */
export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** Variadic: the third argument's C type is passed before its value, e.g. `ioctl(fd, req, 'void *', buf)`. */
  ioctl(fd: number, request: number, ...typedArg: unknown[]): number;
  /** Returns a koffi pointer; `koffi.address()` turns it into a bigint. */
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: bigint, length: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  strerror(errnum: number): string;
  /** `fds` holds struct pollfd entries (8 bytes each: int fd, short events, short revents). */
  poll(fds: Uint8Array, nfds: number, timeout: number): number;
}

let libcInstance: Libc | undefined;

/** libc for this thread, bound on first use. */
export function libc(): Libc {
  if (libcInstance === undefined) {
    const lib = koffi.load('libc.so.6');
    libcInstance = {
      open: lib.func('int open(const char *path, int flags)'),
      close: lib.func('int close(int fd)'),
      ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
      mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      munmap: lib.func('int munmap(uintptr_t addr, size_t length)'),
      eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
      read: lib.func('long read(int fd, void *buf, size_t count)'),
      write: lib.func('long write(int fd, const void *buf, size_t count)'),
      strerror: lib.func('const char *strerror(int errnum)'),
      poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    };
  }
  return libcInstance;
}

/** errno left by the last libc call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** The C library's text for an errno value, e.g. 2 → "No such file or directory". */
export function errnoText(errno: number): string {
  return libc().strerror(errno);
}

/** A failed system call: the message is `<call>: <errno text>`, e.g. `KVM_CREATE_VCPU: File exists`. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${errnoText(errno)}`);
    this.name = 'SysError';
  }
}

export const O_RDWR = 0x2;
export const O_CLOEXEC = 0x80000;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** mmap's `(void *)-1` as an address. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
export const EFD_SEMAPHORE = 0x1;
export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;
export const EINTR = 4;
export const E2BIG = 7;
export const EAGAIN = 11;
export const POLLIN = 0x1;

/** mmap; returns the mapping's address, or MAP_FAILED (errno in lastErrno()). */
export function mmapAddress(length: number, prot: number, flags: number, fd: number): bigint {
  const ptr = libc().mmap(null, length, prot, flags, fd, 0);
  return ptr === null ? 0n : koffi.address(ptr);
}

/**
 * A zero-copy view of `length` bytes of this process's memory at `addr`.
 * Nothing checks that the memory is mapped: callers pass what mmap returned.
 */
export function viewAt(addr: bigint, length: number): Uint8Array {
  return new Uint8Array(koffi.view(addr, length));
}

/** ioctl with an integer argument; returns the result, or -errno on failure (kernel style, so no throw on the hot path). */
export function ioctlValue(fd: number, request: number, value: number): number {
  const ret = libc().ioctl(fd, request, 'unsigned long', value);
  return ret < 0 ? -koffi.errno() : ret;
}

/** ioctl with a pointer to `buf` (read and/or written by the kernel in place); returns the result or -errno. */
export function ioctlBuffer(fd: number, request: number, buf: Uint8Array): number {
  const ret = libc().ioctl(fd, request, 'void *', buf);
  return ret < 0 ? -koffi.errno() : ret;
}

// ---------------------------------------------------------------------------
// ioctl request numbers (_IO/_IOR/_IOW/_IOWR with KVMIO = 0xAE)

const KVMIO = 0xae;
const IOC_WRITE = 1; // userspace → kernel
const IOC_READ = 2; // kernel → userspace
const ioc = (dir: number, nr: number, size: number): number => ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
const io = (nr: number): number => ioc(0, nr, 0);
const ior = (nr: number, size: number): number => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, nr, size);

/** The only KVM API version there has ever been. */
export const KVM_API_VERSION = 12;

// system ioctls
export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, 8);
// VM ioctls
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, 32);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, 8);
export const KVM_SET_GSI_ROUTING = iow(0x6a, 8);
export const KVM_IRQFD = iow(0x76, 32);
export const KVM_CREATE_PIT2 = iow(0x77, 64);
export const KVM_IOEVENTFD = iow(0x79, 64);
export const KVM_SIGNAL_MSI = iow(0xa5, 32);
// vCPU ioctls
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, 144);
export const KVM_SET_REGS = iow(0x82, 144);
export const KVM_GET_SREGS = ior(0x83, 312);
export const KVM_SET_SREGS = iow(0x84, 312);
export const KVM_SET_MSRS = iow(0x89, 8);
export const KVM_SET_FPU = iow(0x8d, 416);
export const KVM_GET_LAPIC = ior(0x8e, 1024);
export const KVM_SET_LAPIC = iow(0x8f, 1024);
export const KVM_SET_CPUID2 = iow(0x90, 8);

/** KVM_CHECK_EXTENSION capability numbers (a selection). */
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_SET_TSS_ADDR = 4;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_NR_MEMSLOTS = 10;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_PIT2 = 33;
export const KVM_CAP_IOEVENTFD = 36;
export const KVM_CAP_SET_IDENTITY_MAP_ADDR = 37;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_TSC_DEADLINE_TIMER = 72;
export const KVM_CAP_SIGNAL_MSI = 77;
export const KVM_CAP_IMMEDIATE_EXIT = 136;

/** KVM_CREATE_PIT2 flag: emulate the PC speaker port (0x61) as a dummy instead of exiting to userspace. */
export const KVM_PIT_SPEAKER_DUMMY = 1;
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;

// ---------------------------------------------------------------------------
// struct kvm_run (the mmap'd vCPU page)

/** Byte offsets of the kvm_run fields Vireo reads or writes. */
export const RUN = {
  immediateExit: 1,
  exitReason: 8,
  // union, KVM_EXIT_IO
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  // union, KVM_EXIT_MMIO
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  // union, other exits
  failEntryReason: 32,
  internalSuberror: 32,
  systemEventType: 32,
} as const;

export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;
export const KVM_EXIT_IO_OUT = 1;

export const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
export const KVM_SYSTEM_EVENT_RESET = 2;
export const KVM_SYSTEM_EVENT_CRASH = 3;

// ---------------------------------------------------------------------------
// Struct layouts. All little-endian; 64-bit fields are bigints where they can
// exceed 2^53, plain numbers where the kernel defines them as 8/16/32-bit.

const dataView = (buf: Uint8Array): DataView => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

/** The general-purpose registers in struct kvm_regs order. */
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;

/** struct kvm_regs: general-purpose registers, rip and rflags. */
export type KvmRegs = { [K in (typeof REG_NAMES)[number]]: bigint };

export const KVM_REGS_SIZE = 144;

export function decodeRegs(buf: Uint8Array): KvmRegs {
  const dv = dataView(buf);
  const regs = {} as KvmRegs;
  REG_NAMES.forEach((name, i) => (regs[name] = dv.getBigUint64(i * 8, true)));
  return regs;
}

export function encodeRegs(regs: KvmRegs, buf: Uint8Array): void {
  const dv = dataView(buf);
  REG_NAMES.forEach((name, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, regs[name]), true));
}

/** struct kvm_segment: a segment register with its hidden descriptor cache. Flag fields are 0 or 1. */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  /** Descriptor type (4 bits), e.g. 11 = execute/read accessed code, 3 = read/write accessed data. */
  type: number;
  present: number;
  dpl: number;
  /** Default operation size (1 = 32-bit). */
  db: number;
  /** 1 = code/data, 0 = system segment. */
  s: number;
  /** 64-bit code segment. */
  l: number;
  /** Granularity (1 = limit in 4 KiB units). */
  g: number;
  avl: number;
  unusable: number;
}

/** struct kvm_dtable: GDTR or IDTR. */
export interface KvmDtable {
  base: bigint;
  limit: number;
}

/** struct kvm_sregs: segment, descriptor-table and control registers. */
export interface KvmSregs {
  cs: KvmSegment;
  ds: KvmSegment;
  es: KvmSegment;
  fs: KvmSegment;
  gs: KvmSegment;
  ss: KvmSegment;
  tr: KvmSegment;
  ldt: KvmSegment;
  gdt: KvmDtable;
  idt: KvmDtable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  /** Pending external interrupt as a 256-bit bitmap in four 64-bit words (only without the in-kernel irqchip). */
  interruptBitmap: bigint[];
}

export const KVM_SREGS_SIZE = 312;
const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SEGMENT_SIZE = 24;
const SREGS_GDT = 192;
const SREGS_IDT = 208;
const SREGS_CR0 = 224;
const SREGS_INTERRUPT_BITMAP = 280;
const CONTROL_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;
// The one-byte fields of kvm_segment, in order from offset 14.
const SEGMENT_BYTES = ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;

function decodeSegment(dv: DataView, off: number): KvmSegment {
  const seg = {
    base: dv.getBigUint64(off, true),
    limit: dv.getUint32(off + 8, true),
    selector: dv.getUint16(off + 12, true),
  } as KvmSegment;
  SEGMENT_BYTES.forEach((name, i) => (seg[name] = dv.getUint8(off + 14 + i)));
  return seg;
}

function encodeSegment(dv: DataView, off: number, seg: KvmSegment): void {
  dv.setBigUint64(off, BigInt.asUintN(64, seg.base), true);
  dv.setUint32(off + 8, seg.limit, true);
  dv.setUint16(off + 12, seg.selector, true);
  SEGMENT_BYTES.forEach((name, i) => dv.setUint8(off + 14 + i, seg[name]));
  dv.setUint8(off + 23, 0); // padding
}

export function decodeSregs(buf: Uint8Array): KvmSregs {
  const dv = dataView(buf);
  const s = {} as KvmSregs;
  SEGMENT_NAMES.forEach((name, i) => (s[name] = decodeSegment(dv, i * SEGMENT_SIZE)));
  s.gdt = { base: dv.getBigUint64(SREGS_GDT, true), limit: dv.getUint16(SREGS_GDT + 8, true) };
  s.idt = { base: dv.getBigUint64(SREGS_IDT, true), limit: dv.getUint16(SREGS_IDT + 8, true) };
  CONTROL_NAMES.forEach((name, i) => (s[name] = dv.getBigUint64(SREGS_CR0 + i * 8, true)));
  s.interruptBitmap = [0, 1, 2, 3].map((i) => dv.getBigUint64(SREGS_INTERRUPT_BITMAP + i * 8, true));
  return s;
}

export function encodeSregs(s: KvmSregs, buf: Uint8Array): void {
  const dv = dataView(buf);
  buf.fill(0);
  SEGMENT_NAMES.forEach((name, i) => encodeSegment(dv, i * SEGMENT_SIZE, s[name]));
  dv.setBigUint64(SREGS_GDT, BigInt.asUintN(64, s.gdt.base), true);
  dv.setUint16(SREGS_GDT + 8, s.gdt.limit, true);
  dv.setBigUint64(SREGS_IDT, BigInt.asUintN(64, s.idt.base), true);
  dv.setUint16(SREGS_IDT + 8, s.idt.limit, true);
  CONTROL_NAMES.forEach((name, i) => dv.setBigUint64(SREGS_CR0 + i * 8, BigInt.asUintN(64, s[name]), true));
  for (let i = 0; i < 4; i++) dv.setBigUint64(SREGS_INTERRUPT_BITMAP + i * 8, BigInt.asUintN(64, s.interruptBitmap[i] ?? 0n), true);
}

/** The parts of struct kvm_fpu a VMM sets at reset; everything else (x87 stack, XMM registers) is zeroed. */
export interface KvmFpu {
  /** x87 control word (0x37f at reset). */
  fcw: number;
  /** SSE control/status (0x1f80 at reset). */
  mxcsr: number;
}

export const KVM_FPU_SIZE = 416;

export function encodeFpu(fpu: KvmFpu): Uint8Array {
  const buf = new Uint8Array(KVM_FPU_SIZE);
  const dv = dataView(buf);
  dv.setUint16(128, fpu.fcw, true);
  dv.setUint32(408, fpu.mxcsr, true);
  return buf;
}

/** struct kvm_userspace_memory_region. */
export function encodeUserMemoryRegion(slot: number, flags: number, guestPhys: number, size: number, hostAddr: bigint): Uint8Array {
  const buf = new Uint8Array(32);
  const dv = dataView(buf);
  dv.setUint32(0, slot, true);
  dv.setUint32(4, flags, true);
  dv.setBigUint64(8, BigInt(guestPhys), true);
  dv.setBigUint64(16, BigInt(size), true);
  dv.setBigUint64(24, hostAddr, true);
  return buf;
}

/** One struct kvm_cpuid_entry2: the result of CPUID leaf `fn`, subleaf `index`. */
export interface CpuidEntry {
  fn: number;
  index: number;
  /** KVM_CPUID_FLAG_* (1 = significant index). */
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

const CPUID_ENTRY_SIZE = 40;
const CPUID_FIELDS = ['fn', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

/** struct kvm_cpuid2 with room for `capacity` entries, the first ones filled from `entries`. */
export function encodeCpuid2(entries: readonly CpuidEntry[], capacity = entries.length): Uint8Array {
  const buf = new Uint8Array(8 + capacity * CPUID_ENTRY_SIZE);
  const dv = dataView(buf);
  dv.setUint32(0, capacity, true);
  entries.forEach((e, i) => {
    CPUID_FIELDS.forEach((name, j) => dv.setUint32(8 + i * CPUID_ENTRY_SIZE + j * 4, e[name] >>> 0, true));
  });
  return buf;
}

/** The entries of a struct kvm_cpuid2 (its `nent` as updated by the kernel). */
export function decodeCpuid2(buf: Uint8Array): CpuidEntry[] {
  const dv = dataView(buf);
  const entries: CpuidEntry[] = [];
  for (let i = 0, n = dv.getUint32(0, true); i < n; i++) {
    const e = {} as CpuidEntry;
    CPUID_FIELDS.forEach((name, j) => (e[name] = dv.getUint32(8 + i * CPUID_ENTRY_SIZE + j * 4, true)));
    entries.push(e);
  }
  return entries;
}

/** One struct kvm_msr_entry. */
export interface MsrEntry {
  index: number;
  value: bigint;
}

/** struct kvm_msrs followed by its entries. */
export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const buf = new Uint8Array(8 + entries.length * 16);
  const dv = dataView(buf);
  dv.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    dv.setUint32(8 + i * 16, e.index >>> 0, true);
    dv.setBigUint64(8 + i * 16 + 8, BigInt.asUintN(64, e.value), true);
  });
  return buf;
}

/** struct kvm_lapic_state: the local APIC register page as KVM exposes it. */
export const KVM_LAPIC_SIZE = 1024;

/** struct kvm_irq_level. */
export function encodeIrqLevel(irq: number, level: boolean): Uint8Array {
  const buf = new Uint8Array(8);
  const dv = dataView(buf);
  dv.setUint32(0, irq, true);
  dv.setUint32(4, level ? 1 : 0, true);
  return buf;
}

/** struct kvm_pit_config. */
export function encodePitConfig(flags: number): Uint8Array {
  const buf = new Uint8Array(64);
  dataView(buf).setUint32(0, flags, true);
  return buf;
}

/** struct kvm_irqfd (no resample fd, not deassigning). */
export function encodeIrqfd(fd: number, gsi: number): Uint8Array {
  const buf = new Uint8Array(32);
  const dv = dataView(buf);
  dv.setUint32(0, fd, true);
  dv.setUint32(4, gsi, true);
  return buf;
}

/** struct kvm_ioeventfd. */
export function encodeIoeventfd(fd: number, addr: number, len: number, flags: number, datamatch: bigint): Uint8Array {
  const buf = new Uint8Array(64);
  const dv = dataView(buf);
  dv.setBigUint64(0, BigInt.asUintN(64, datamatch), true);
  dv.setBigUint64(8, BigInt(addr), true);
  dv.setUint32(16, len, true);
  dv.setInt32(20, fd, true);
  dv.setUint32(24, flags, true);
  return buf;
}

/** struct kvm_msi (no device id). */
export function encodeMsi(addr: bigint, data: number): Uint8Array {
  const buf = new Uint8Array(32);
  const dv = dataView(buf);
  dv.setBigUint64(0, BigInt.asUintN(64, addr), true); // address_lo, address_hi
  dv.setUint32(8, data, true);
  return buf;
}

/** One KVM_IRQ_ROUTING_IRQCHIP entry of KVM_SET_GSI_ROUTING: asserting `gsi` drives `pin` of `irqchip`. */
export interface IrqchipRoute {
  gsi: number;
  irqchip: number;
  pin: number;
}

const KVM_IRQ_ROUTING_IRQCHIP = 1;
const ROUTING_ENTRY_SIZE = 48;

/** struct kvm_irq_routing with irqchip entries (struct kvm_irq_routing_entry is 48 bytes). */
export function encodeGsiRouting(routes: readonly IrqchipRoute[]): Uint8Array {
  const buf = new Uint8Array(8 + routes.length * ROUTING_ENTRY_SIZE);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, routes.length, true);
  routes.forEach((r, i) => {
    const at = 8 + i * ROUTING_ENTRY_SIZE;
    dv.setUint32(at, r.gsi, true);
    dv.setUint32(at + 4, KVM_IRQ_ROUTING_IRQCHIP, true);
    dv.setUint32(at + 16, r.irqchip, true);
    dv.setUint32(at + 20, r.pin, true);
  });
  return buf;
}
