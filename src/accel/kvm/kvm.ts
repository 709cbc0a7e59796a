/**
 * The KVM binding: one class per file-descriptor level, after rust-vmm's
 * kvm-ioctls — `Kvm` (/dev/kvm), `KvmVm` (a VM) and `KvmVcpu` (a vCPU and its
 * mmap'd kvm_run page) — plus guest-RAM and eventfd helpers.
 *
 * A thin, safe wrapper with no policy: each method is one ioctl, a kernel
 * error becomes a `SysError` whose message is `<IOCTL>: <errno text>`, and
 * structs travel as plain objects (see kvm-sys.ts for the layouts).
 *
 * Threads: file descriptors and mappings are process-wide, this module's libc
 * binding is per thread. A vCPU thread (a worker_threads Worker) is handed the
 * vCPU fd number, the mmap size and the guest RAM address, and rebuilds its
 * objects with `KvmVcpu.attach()` and `guestMemoryView()`.
 */
import { constants as bufferConstants } from 'node:buffer';
import { UserError } from '../../system/options.js';
import {
  E2BIG, EAGAIN, EFD_CLOEXEC, EINTR, KVM_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2,
  KVM_CREATE_VCPU, KVM_CREATE_VM, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR,
  KVM_EXIT_IO, KVM_EXIT_IO_OUT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN, KVM_EXIT_SYSTEM_EVENT,
  KVM_GET_API_VERSION, KVM_GET_LAPIC, KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_SUPPORTED_CPUID, KVM_GET_VCPU_MMAP_SIZE,
  KVM_IOEVENTFD, KVM_IOEVENTFD_FLAG_DATAMATCH, KVM_IOEVENTFD_FLAG_DEASSIGN, KVM_IOEVENTFD_FLAG_PIO, KVM_IRQ_LINE, KVM_IRQFD, KVM_SET_GSI_ROUTING, encodeGsiRouting, type IrqchipRoute, KVM_LAPIC_SIZE,
  KVM_REGS_SIZE, KVM_RUN, KVM_SET_CPUID2, KVM_SET_FPU, KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_LAPIC, KVM_SET_MSRS,
  KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_TSS_ADDR, KVM_SET_USER_MEMORY_REGION, KVM_SIGNAL_MSI, KVM_SREGS_SIZE,
  MAP_ANONYMOUS, MAP_FAILED, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, RUN,
  SysError, decodeCpuid2, decodeRegs, decodeSregs, encodeCpuid2, encodeFpu, encodeIoeventfd, encodeIrqLevel,
  encodeIrqfd, encodeMsi, encodeMsrs, encodePitConfig, encodeRegs, encodeSregs, encodeUserMemoryRegion, errnoText,
  ioctlBuffer, ioctlValue, lastErrno, libc, mmapAddress, viewAt,
  type CpuidEntry, type KvmFpu, type KvmRegs, type KvmSregs, type MsrEntry,
} from './kvm-sys.js';

export type { CpuidEntry, KvmDtable, KvmFpu, KvmRegs, KvmSegment, KvmSregs, MsrEntry } from './kvm-sys.js';
export {
  EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_IOEVENTFD, KVM_CAP_IRQCHIP, KVM_CAP_IRQFD,
  KVM_CAP_MAX_VCPUS, KVM_CAP_NR_MEMSLOTS, KVM_CAP_NR_VCPUS, KVM_CAP_PIT2, KVM_CAP_SET_IDENTITY_MAP_ADDR,
  KVM_CAP_SET_TSS_ADDR, KVM_CAP_SIGNAL_MSI, KVM_CAP_TSC_DEADLINE_TIMER, KVM_CAP_USER_MEMORY, KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY, KVM_PIT_SPEAKER_DUMMY, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
  SysError,
} from './kvm-sys.js';
import { adviseGuestRam } from '../../system/host-memory.js';

/** Common to the three fd levels: checked ioctls and close(). */
abstract class KvmFile {
  protected closed = false;

  constructor(
    /** The file descriptor (a process-wide number, valid in every thread). */
    readonly fd: number,
  ) {}

  /** One ioctl; a kernel error throws `SysError` named after the ioctl. */
  protected ioctl(name: string, request: number, arg: number | Uint8Array): number {
    if (this.closed) throw new Error(`${name}: file descriptor ${this.fd} is closed`);
    const ret = typeof arg === 'number' ? ioctlValue(this.fd, request, arg) : ioctlBuffer(this.fd, request, arg);
    if (ret < 0) throw new SysError(name, -ret);
    return ret;
  }

  /** Closes the fd (idempotent); every later call throws instead of reaching a reused fd number. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
  }
}

/**
 * Opens the KVM device. Throws a UserError (one line for the user) when it is
 * missing or inaccessible, or speaks another API version than 12.
 */
export function openKvm(path = '/dev/kvm'): Kvm {
  let fd: number;
  try {
    fd = libc().open(path, O_RDWR | O_CLOEXEC);
  } catch (e) {
    // koffi or libc.so.6 unavailable (not Linux, unsupported architecture).
    throw new UserError(`KVM is not available: ${(e as Error).message}`);
  }
  if (fd < 0) throw new UserError(`KVM is not available: ${path}: ${errnoText(lastErrno())}`);
  const version = ioctlValue(fd, KVM_GET_API_VERSION, 0);
  if (version !== KVM_API_VERSION) {
    libc().close(fd);
    const why = version < 0 ? errnoText(-version) : `KVM API version ${version}, expected ${KVM_API_VERSION}`;
    throw new UserError(`KVM is not available: ${path}: ${why}`);
  }
  return new Kvm(fd);
}

/** The KVM subsystem (/dev/kvm): capability queries and VM creation. Get one with `openKvm()`. */
export class Kvm extends KvmFile {
  /** KVM_CHECK_EXTENSION: 0 if the capability (KVM_CAP_*) is missing, else 1 or a capability-specific count. */
  checkExtension(cap: number): number {
    return this.ioctl('KVM_CHECK_EXTENSION', KVM_CHECK_EXTENSION, cap);
  }

  /** KVM_GET_VCPU_MMAP_SIZE: bytes to mmap from a vCPU fd (kvm_run plus the PIO data page and more). */
  vcpuMmapSize(): number {
    return this.ioctl('KVM_GET_VCPU_MMAP_SIZE', KVM_GET_VCPU_MMAP_SIZE, 0);
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can expose on this host. */
  supportedCpuid(): CpuidEntry[] {
    // KVM fails with E2BIG until the buffer is large enough; 256 fits current hosts.
    for (let capacity = 256; ; capacity *= 2) {
      const buf = encodeCpuid2([], capacity);
      const ret = ioctlBuffer(this.fd, KVM_GET_SUPPORTED_CPUID, buf);
      if (ret === -E2BIG && capacity < 65536) continue;
      if (ret < 0) throw new SysError('KVM_GET_SUPPORTED_CPUID', -ret);
      return decodeCpuid2(buf);
    }
  }

  /** KVM_CREATE_VM (default machine type). */
  createVm(): KvmVm {
    const mmapSize = this.vcpuMmapSize();
    return new KvmVm(this.ioctl('KVM_CREATE_VM', KVM_CREATE_VM, 0), mmapSize);
  }
}

/** Options of `KvmVm.registerIoeventfd`. */
export interface IoeventfdOptions {
  /** Port I/O instead of MMIO. */
  pio?: boolean;
  /** Signal only when the written value equals this; any value when absent. */
  datamatch?: bigint | number;
}

/** A virtual machine: memory slots, in-kernel devices, interrupts and vCPUs. Made by `Kvm.createVm()`. */
export class KvmVm extends KvmFile {
  /** @internal Use `Kvm.createVm()`. */
  constructor(
    fd: number,
    private readonly vcpuMmapSize: number,
  ) {
    super(fd);
  }

  /** KVM_CREATE_VCPU: vCPU `id` (the initial APIC ID), with its kvm_run page mapped. */
  createVcpu(id: number): KvmVcpu {
    const fd = this.ioctl('KVM_CREATE_VCPU', KVM_CREATE_VCPU, id);
    try {
      return KvmVcpu.attach(fd, this.vcpuMmapSize);
    } catch (e) {
      libc().close(fd);
      throw e;
    }
  }

  /** KVM_SET_USER_MEMORY_REGION: maps `size` bytes at host `hostAddr` to guest-physical `guestPhys` (size 0 deletes the slot). */
  setUserMemoryRegion(slot: number, guestPhys: number, size: number, hostAddr: bigint, flags = 0): void {
    this.ioctl('KVM_SET_USER_MEMORY_REGION', KVM_SET_USER_MEMORY_REGION,
      encodeUserMemoryRegion(slot, flags, guestPhys, size, hostAddr));
  }

  /** KVM_CREATE_IRQCHIP: in-kernel PIC pair, IOAPIC and a local APIC per vCPU (before creating vCPUs). */
  createIrqchip(): void {
    this.ioctl('KVM_CREATE_IRQCHIP', KVM_CREATE_IRQCHIP, 0);
  }

  /** KVM_CREATE_PIT2: in-kernel i8254 PIT; flags 0 or KVM_PIT_SPEAKER_DUMMY. Needs the irqchip. */
  createPit2(flags = 0): void {
    this.ioctl('KVM_CREATE_PIT2', KVM_CREATE_PIT2, encodePitConfig(flags));
  }

  /** KVM_SET_TSS_ADDR: three guest-physical pages Intel VMX needs for real mode (must not overlap RAM or MMIO). */
  setTssAddr(addr: number): void {
    this.ioctl('KVM_SET_TSS_ADDR', KVM_SET_TSS_ADDR, addr);
  }

  /** KVM_SET_IDENTITY_MAP_ADDR: one guest-physical page for VMX's real-mode identity page table. */
  setIdentityMapAddr(addr: number): void {
    const buf = new Uint8Array(8);
    new DataView(buf.buffer).setBigUint64(0, BigInt(addr), true);
    this.ioctl('KVM_SET_IDENTITY_MAP_ADDR', KVM_SET_IDENTITY_MAP_ADDR, buf);
  }

  /** KVM_IRQ_LINE: drives interrupt line `gsi` of the in-kernel irqchip. */
  irqLine(gsi: number, level: boolean): void {
    this.ioctl('KVM_IRQ_LINE', KVM_IRQ_LINE, encodeIrqLevel(gsi, level));
  }

  /** KVM_SET_GSI_ROUTING: replaces the whole GSI routing table with these irqchip routes. */
  setGsiRouting(routes: readonly IrqchipRoute[]): void {
    this.ioctl('KVM_SET_GSI_ROUTING', KVM_SET_GSI_ROUTING, encodeGsiRouting(routes));
  }

  /** KVM_IRQFD: a write to `eventfd` raises (edge) interrupt `gsi`. */
  registerIrqfd(eventfd: number, gsi: number): void {
    this.ioctl('KVM_IRQFD', KVM_IRQFD, encodeIrqfd(eventfd, gsi));
  }

  /** KVM_IOEVENTFD: a guest write of `len` bytes to `addr` signals `eventfd` in the kernel instead of exiting. */
  registerIoeventfd(eventfd: number, addr: number, len: number, options: IoeventfdOptions = {}): void {
    this.ioeventfd(eventfd, addr, len, options, 0);
  }

  /** Undoes {@link registerIoeventfd} (same arguments). */
  unregisterIoeventfd(eventfd: number, addr: number, len: number, options: IoeventfdOptions = {}): void {
    this.ioeventfd(eventfd, addr, len, options, KVM_IOEVENTFD_FLAG_DEASSIGN);
  }

  private ioeventfd(eventfd: number, addr: number, len: number, options: IoeventfdOptions, flags: number): void {
    if (options.pio) flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (options.datamatch !== undefined) flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    this.ioctl('KVM_IOEVENTFD', KVM_IOEVENTFD, encodeIoeventfd(eventfd, addr, len, flags, BigInt(options.datamatch ?? 0)));
  }

  /** KVM_SIGNAL_MSI: injects a message-signalled interrupt; false when the guest blocked it. */
  signalMsi(addr: bigint | number, data: number): boolean {
    return this.ioctl('KVM_SIGNAL_MSI', KVM_SIGNAL_MSI, encodeMsi(BigInt(addr), data)) > 0;
  }
}

/** A guest IN or OUT. `data` (size × count bytes) is a view into kvm_run: read an OUT's bytes there, write an IN's result there. */
export interface IoExit {
  readonly kind: 'io';
  readonly port: number;
  /** Access width in bytes: 1, 2 or 4. */
  readonly size: number;
  readonly write: boolean;
  /** Repetitions (string I/O); 1 for a plain IN/OUT. */
  readonly count: number;
  readonly data: Uint8Array;
}

/** A guest access to unbacked guest-physical memory. `data` is the 8-byte field in kvm_run: the first `len` bytes count. */
export interface MmioExit {
  readonly kind: 'mmio';
  readonly addr: number;
  readonly len: number;
  readonly write: boolean;
  readonly data: Uint8Array;
}

/** The guest executed HLT (only without the in-kernel irqchip, which halts in the kernel). */
export interface HltExit {
  readonly kind: 'hlt';
}

/** Triple fault. */
export interface ShutdownExit {
  readonly kind: 'shutdown';
}

/** A platform event; `type` is KVM_SYSTEM_EVENT_SHUTDOWN, _RESET, _CRASH, ... */
export interface SystemEventExit {
  readonly kind: 'system-event';
  readonly type: number;
}

/** KVM_RUN was interrupted by a signal, refused to enter because immediate_exit was set, or asks to be called again (EAGAIN). */
export interface IntrExit {
  readonly kind: 'intr';
}

/** The hardware refused to enter the guest; `reason` is the hardware's code (VMX exit qualification / SVM exit code). */
export interface FailEntryExit {
  readonly kind: 'fail-entry';
  readonly reason: number;
}

/** KVM could not handle an exit itself, e.g. failed instruction emulation (`suberror` is KVM_INTERNAL_ERROR_*). */
export interface InternalErrorExit {
  readonly kind: 'internal-error';
  readonly suberror: number;
}

/** Any other exit; `reason` is kvm_run.exit_reason (KVM_EXIT_*). */
export interface UnknownExit {
  readonly kind: 'unknown';
  readonly reason: number;
}

/** Why `KvmVcpu.run()` returned. */
export type VcpuExit =
  | IoExit | MmioExit | HltExit | ShutdownExit | SystemEventExit | IntrExit | FailEntryExit | InternalErrorExit | UnknownExit;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// Exits without payload are shared constants.
const HLT_EXIT: HltExit = Object.freeze({ kind: 'hlt' });
const SHUTDOWN_EXIT: ShutdownExit = Object.freeze({ kind: 'shutdown' });
const INTR_EXIT: IntrExit = Object.freeze({ kind: 'intr' });

const EMPTY = new Uint8Array(0);

/** A virtual CPU: registers, and `run()` to execute the guest until it needs the VMM. */
export class KvmVcpu extends KvmFile {
  // kvm_run, mapped from the vcpu fd.
  private readonly runBytes: Uint8Array;
  private readonly runView: DataView;
  // One mutable object per exit kind, reused by every run() (no allocation per exit).
  private readonly ioExit: Mutable<IoExit> = { kind: 'io', port: 0, size: 0, write: false, count: 0, data: EMPTY };
  private readonly mmioExit: Mutable<MmioExit>;
  private readonly systemEventExit: Mutable<SystemEventExit> = { kind: 'system-event', type: 0 };
  private readonly failEntryExit: Mutable<FailEntryExit> = { kind: 'fail-entry', reason: 0 };
  private readonly internalErrorExit: Mutable<InternalErrorExit> = { kind: 'internal-error', suberror: 0 };
  private readonly unknownExit: Mutable<UnknownExit> = { kind: 'unknown', reason: 0 };
  // PIO data views keyed by data_offset * 0x10000 + length (length <= one page).
  private readonly ioViews = new Map<number, Uint8Array>();
  private readonly regsBuf = new Uint8Array(KVM_REGS_SIZE);
  private readonly sregsBuf = new Uint8Array(KVM_SREGS_SIZE);

  private constructor(
    fd: number,
    private readonly runAddr: bigint,
    private readonly mmapSize: number,
  ) {
    super(fd);
    this.runBytes = viewAt(runAddr, mmapSize);
    this.runView = new DataView(this.runBytes.buffer);
    this.mmioExit = { kind: 'mmio', addr: 0, len: 0, write: false, data: this.runBytes.subarray(RUN.mmioData, RUN.mmioData + 8) };
  }

  /**
   * Wraps an existing vCPU fd, mapping its kvm_run page (`mmapSize` from
   * `Kvm.vcpuMmapSize()`) into this thread's view: how a worker thread takes
   * over a vCPU created elsewhere. Only one owner should close() the fd.
   */
  static attach(vcpuFd: number, mmapSize: number): KvmVcpu {
    const addr = mmapAddress(mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpuFd);
    if (addr === MAP_FAILED) throw new SysError('mmap(kvm_run)', lastErrno());
    return new KvmVcpu(vcpuFd, addr, mmapSize);
  }

  /**
   * KVM_RUN: runs the guest until an exit userspace must handle. The returned
   * object belongs to this vCPU and is valid until the next run(); complete an
   * IN or MMIO read by writing into its `data` before calling run() again.
   */
  run(): VcpuExit {
    if (this.closed) throw new Error(`KVM_RUN: file descriptor ${this.fd} is closed`);
    const ret = ioctlValue(this.fd, KVM_RUN, 0);
    if (ret < 0) {
      // EAGAIN: a secondary vCPU left its wait-for-SIPI state (INIT arrived); just run again.
      if (ret === -EINTR || ret === -EAGAIN) return INTR_EXIT;
      throw new SysError('KVM_RUN', -ret);
    }
    const r = this.runView;
    const reason = r.getUint32(RUN.exitReason, true);
    switch (reason) {
      case KVM_EXIT_IO: {
        const e = this.ioExit;
        e.write = r.getUint8(RUN.ioDirection) === KVM_EXIT_IO_OUT;
        e.size = r.getUint8(RUN.ioSize);
        e.port = r.getUint16(RUN.ioPort, true);
        e.count = r.getUint32(RUN.ioCount, true);
        e.data = this.ioData(r.getUint32(RUN.ioDataOffset, true), e.size * e.count);
        return e;
      }
      case KVM_EXIT_MMIO: {
        const e = this.mmioExit;
        e.addr = r.getUint32(RUN.mmioPhysAddr, true) + r.getUint32(RUN.mmioPhysAddr + 4, true) * 0x1_0000_0000;
        e.len = r.getUint32(RUN.mmioLen, true);
        e.write = r.getUint8(RUN.mmioIsWrite) !== 0;
        return e;
      }
      case KVM_EXIT_HLT:
        return HLT_EXIT;
      case KVM_EXIT_SHUTDOWN:
        return SHUTDOWN_EXIT;
      case KVM_EXIT_INTR:
        return INTR_EXIT;
      case KVM_EXIT_SYSTEM_EVENT:
        this.systemEventExit.type = r.getUint32(RUN.systemEventType, true);
        return this.systemEventExit;
      case KVM_EXIT_FAIL_ENTRY:
        this.failEntryExit.reason = Number(r.getBigUint64(RUN.failEntryReason, true));
        return this.failEntryExit;
      case KVM_EXIT_INTERNAL_ERROR:
        this.internalErrorExit.suberror = r.getUint32(RUN.internalSuberror, true);
        return this.internalErrorExit;
      default:
        this.unknownExit.reason = reason;
        return this.unknownExit;
    }
  }

  // The PIO data lives in the vcpu mapping (in practice always the page after kvm_run).
  private ioData(offset: number, length: number): Uint8Array {
    const key = offset * 0x10000 + length;
    let view = this.ioViews.get(key);
    if (view === undefined) {
      view = this.runBytes.subarray(offset, offset + length);
      this.ioViews.set(key, view);
    }
    return view;
  }

  /** kvm_run.immediate_exit: while set, run() returns an 'intr' exit without entering the guest. */
  setImmediateExit(on: boolean): void {
    if (this.closed) throw new Error(`immediate_exit: file descriptor ${this.fd} is closed`);
    this.runBytes[RUN.immediateExit] = on ? 1 : 0;
  }

  /** KVM_GET_REGS. */
  getRegs(): KvmRegs {
    this.ioctl('KVM_GET_REGS', KVM_GET_REGS, this.regsBuf);
    return decodeRegs(this.regsBuf);
  }

  /** KVM_SET_REGS. */
  setRegs(regs: KvmRegs): void {
    encodeRegs(regs, this.regsBuf);
    this.ioctl('KVM_SET_REGS', KVM_SET_REGS, this.regsBuf);
  }

  /** KVM_GET_SREGS. */
  getSregs(): KvmSregs {
    this.ioctl('KVM_GET_SREGS', KVM_GET_SREGS, this.sregsBuf);
    return decodeSregs(this.sregsBuf);
  }

  /** KVM_SET_SREGS. Start from getSregs() and change what you need: every field is written. */
  setSregs(sregs: KvmSregs): void {
    encodeSregs(sregs, this.sregsBuf);
    this.ioctl('KVM_SET_SREGS', KVM_SET_SREGS, this.sregsBuf);
  }

  /** KVM_SET_FPU: x87/SSE control words; the register contents become zero. */
  setFpu(fpu: KvmFpu): void {
    this.ioctl('KVM_SET_FPU', KVM_SET_FPU, encodeFpu(fpu));
  }

  /** KVM_SET_CPUID2: what CPUID returns in the guest. */
  setCpuid2(entries: readonly CpuidEntry[]): void {
    this.ioctl('KVM_SET_CPUID2', KVM_SET_CPUID2, encodeCpuid2(entries));
  }

  /** KVM_SET_MSRS: throws naming the first MSR KVM did not accept (the ioctl stops there). */
  setMsrs(entries: readonly MsrEntry[]): void {
    const done = this.ioctl('KVM_SET_MSRS', KVM_SET_MSRS, encodeMsrs(entries));
    if (done < entries.length) {
      throw new Error(`KVM_SET_MSRS: MSR 0x${entries[done].index.toString(16)} not accepted`);
    }
  }

  /** KVM_GET_LAPIC: the 1 KiB local APIC register page (needs the in-kernel irqchip). */
  getLapic(): Uint8Array {
    const regs = new Uint8Array(KVM_LAPIC_SIZE);
    this.ioctl('KVM_GET_LAPIC', KVM_GET_LAPIC, regs);
    return regs;
  }

  /** KVM_SET_LAPIC: `regs` is a 1 KiB register page as returned by getLapic(). */
  setLapic(regs: Uint8Array): void {
    if (regs.length !== KVM_LAPIC_SIZE) throw new RangeError(`KVM_SET_LAPIC: expected ${KVM_LAPIC_SIZE} bytes, got ${regs.length}`);
    this.ioctl('KVM_SET_LAPIC', KVM_SET_LAPIC, regs);
  }

  /** Unmaps kvm_run and closes the fd: exit `data` views from this vCPU must not be touched afterwards. */
  override close(): void {
    if (this.closed) return;
    libc().munmap(this.runAddr, this.mmapSize);
    super.close();
  }
}

/** Anonymous guest RAM: its host address (for setUserMemoryRegion and other threads) and a zero-copy view. */
export interface GuestMemory {
  hostAddr: bigint;
  view: Uint8Array;
}

// koffi.view aborts the process beyond this (measured: 4 GiB works, 4 GiB + 4 KiB does not).
function checkViewSize(size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size > bufferConstants.MAX_LENGTH) {
    throw new RangeError(`guest memory view of ${size} bytes: must be 1..${bufferConstants.MAX_LENGTH}`);
  }
}

/**
 * Maps `size` bytes of zeroed, lazily-backed memory (MAP_PRIVATE |
 * MAP_ANONYMOUS | MAP_NORESERVE) for guest RAM. At most 4 GiB per call
 * (the largest view Node allows): larger RAM is several regions.
 */
export function allocGuestMemory(size: number): GuestMemory {
  checkViewSize(size);
  const hostAddr = mmapAddress(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
  if (hostAddr === MAP_FAILED) throw new SysError('mmap(guest memory)', lastErrno());
  const view = viewAt(hostAddr, size);
  adviseGuestRam(view);
  return { hostAddr, view };
}

/** A view of guest RAM allocated (possibly by another thread) with allocGuestMemory. */
export function guestMemoryView(hostAddr: bigint, size: number): Uint8Array {
  checkViewSize(size);
  return viewAt(hostAddr, size);
}

/** Unmaps guest RAM: every view of it, in every thread, must be dropped first. */
export function freeGuestMemory(hostAddr: bigint, size: number): void {
  if (libc().munmap(hostAddr, size) < 0) throw new SysError('munmap(guest memory)', lastErrno());
}

/** eventfd(2): a kernel counter for irqfd/ioeventfd; close it with closeFd. */
export function eventfd(initval = 0, flags = EFD_CLOEXEC): number {
  const fd = libc().eventfd(initval, flags);
  if (fd < 0) throw new SysError('eventfd', lastErrno());
  return fd;
}

/** Adds `value` to an eventfd's counter. */
export function eventfdWrite(fd: number, value = 1n): void {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setBigUint64(0, value, true);
  if (libc().write(fd, buf, 8) !== 8) throw new SysError('eventfd write', lastErrno());
}

/** Reads and resets an eventfd's counter; 0n when a non-blocking eventfd has nothing pending (EAGAIN). */
export function eventfdRead(fd: number): bigint {
  const buf = new Uint8Array(8);
  if (libc().read(fd, buf, 8) !== 8) {
    const errno = lastErrno();
    if (errno === EAGAIN) return 0n;
    throw new SysError('eventfd read', errno);
  }
  return new DataView(buf.buffer).getBigUint64(0, true);
}

/** close(2) for fds this module hands out as numbers (eventfds). */
export function closeFd(fd: number): void {
  if (libc().close(fd) < 0) throw new SysError('close', lastErrno());
}
