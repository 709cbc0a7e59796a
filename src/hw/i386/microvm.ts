/**
 * The x86_64 `microvm` board under KVM, modelled on QEMU's microvm machine and on
 * Firecracker: no firmware (the bzImage's 64-bit entry is entered directly), KVM's
 * in-kernel PIC, IOAPIC, LAPICs and PIT, a 16550 UART at 0x3f8 (IRQ 4), an i8042 for
 * reset, a CMOS RTC, and ACPI hardware-reduced sleep/reset registers for power-off
 * and reboot. virtio devices sit on virtio-mmio transports or, when any -pci model is
 * asked for, on a PCI Express host bridge (configuration through ports 0xcf8/0xcfc and
 * ECAM, MSI-X delivered by KVM), as QEMU's microvm with pcie=on.
 * Queue notifications are caught by KVM (ioeventfd) and interrupts raised through
 * irqfd or KVM_SIGNAL_MSI, so a virtqueue round trip needs no vCPU exit.
 * Guest RAM is one anonymous mapping registered with KVM below the 3 GiB hole and,
 * for larger guests, above 4 GiB.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openKvm, allocGuestMemory, freeGuestMemory, type Kvm, type KvmVm, type KvmVcpu, type GuestMemory } from '../../accel/kvm/kvm.js';
import { KvmVcpuThreads } from '../../accel/kvm/kvm-cpus.js';
import { AddressSpace, type MmioHandler } from '../core/memory.js';
import type { IrqLine } from '../core/irq.js';
import { Serial16550 } from '../char/serial.js';
import { I8042 } from '../input/i8042.js';
import { Mc146818Rtc } from '../rtc/mc146818rtc.js';
import { AcpiGed, GED_SIZE, GED_SLEEP_CONTROL, GED_SLEEP_STATUS, GED_RESET, RESET_VALUE } from '../acpi/ged.js';
import { loadLinux, setupLongMode, kvmGsiRoutes, X86_LAYOUT, X86_HOLE_START, X86_HOLE_END, IOAPIC_ADDR, IOAPIC_PINS, type LongModeState, type Segment } from './x86-boot.js';
import { writeAcpiTables } from './acpi.js';
import { filterCpuid } from './cpuid.js';
import { writeMpTable } from './mptable.js';
import { readImage, BUNDLED_IMAGES } from '../riscv/boot.js';
import { busAccess } from '../../system/exit-channel.js';
import { RegionGuestMemory } from '../core/guest-memory.js';
import { VirtioMmioTransport } from '../virtio/virtio-mmio.js';
import { VirtioPciTransport } from '../virtio/virtio-pci.js';
import { GpexHost, PciWindow } from '../pci/pci-host-gpex.js';
import { PciConf1, PCI_CONF1_PORT, PCI_CONF1_SIZE } from '../pci/pci-conf1.js';
import { PCI_DEVICES_PER_BUS } from '../pci/pci-bus.js';
import { KvmDoorbells } from '../../accel/kvm/ioeventfd.js';
import { eventfd, eventfdWrite, closeFd, KVM_CAP_IOEVENTFD, KVM_CAP_IRQFD, KVM_CAP_SIGNAL_MSI } from '../../accel/kvm/kvm.js';
import type { AcpiPciHost } from './acpi.js';
import { openBackends, closeBackends, createVirtioDevices, type PlannedDevice } from '../../system/backends.js';
import type { Chardev } from '../../chardev/chardev.js';
import type { VirtioDevice } from '../virtio/virtio.js';
import { openSerial } from '../../chardev/open.js';
import { UserError, type VmOptions } from '../../system/options.js';
import { RunState, type MachineControl, type CpuInfo, type RegionInfo, type RunStatus } from '../../monitor/machine-control.js';
import { startMonitors } from '../../monitor/monitor-server.js';
import { enableHugePages } from '../../system/host-memory.js';
import { quitOnSignals } from '../../system/signals.js';

/** Where the bundled x86_64 guest lives. */
export const BUNDLED_X86_IMAGES = join(BUNDLED_IMAGES, '..', 'x86_64');
/** The bundled guest's command line: serial console, no legacy I/O delays, reboot on panic. */
const BUNDLED_CMDLINE = 'console=ttyS0 panic=-1 io_delay=none';

/** I/O ports of the board (QEMU microvm uses the same serial and i8042 ports). */
export const MICROVM_PORTS = { serial: 0x3f8, i8042: 0x60, rtc: 0x70, ged: 0x600, postCode: 0x80 } as const;
/** virtio-mmio transports: 4 KiB each from 0xd0000000 (as Firecracker), on IOAPIC pins 16 and up (as QEMU microvm). */
export const MICROVM_VIRTIO = { base: 0xd0000000, size: 0x1000, gsi: 16, count: 8 } as const;
/**
 * The PCI Express host bridge (when present): QEMU microvm's ECAM address and I/O window
 * and its INTx GSIs 12-15; the 32-bit memory window fills the space below the
 * virtio-mmio transports. Only bus 0 exists, so the ECAM is 1 MiB.
 */
export const MICROVM_PCIE: AcpiPciHost = {
  ecam: { base: 0xe0000000, size: 0x100000 },
  pio: { base: 0x5000, size: 0x3000 },
  mmio32: { base: 0xc0000000, size: 0x10000000 },
  intx: [12, 13, 14, 15],
};
/** ISA IRQs. */
const IRQ_SERIAL = 4;
const IRQ_I8042 = 1;
/** KVM's TSS and identity-map pages, just below the BIOS area at the top of the 32-bit space (as QEMU). */
const KVM_TSS_ADDR = 0xfeffd000;
const KVM_IDENTITY_MAP_ADDR = 0xfeffc000;

const MSR_IA32_MISC_ENABLE = 0x1a0;
const MSR_MTRR_DEF_TYPE = 0x2ff;
/** LAPIC register offsets and delivery modes for the local interrupt pins (virtual wire mode). */
const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
const APIC_MODE_EXTINT = 0x7 << 8;
const APIC_MODE_NMI = 0x4 << 8;

type Stop = { kind: 'poweroff' } | { kind: 'reset' } | { kind: 'quit' } | { kind: 'error'; message: string };

/** Port 0x80 (POST codes, legacy I/O delay): writes vanish, reads return 0. */
const POST_PORT: MmioHandler = { read: () => 0, write: () => {} };

class Microvm {
  private readonly vm: KvmVm;
  private readonly mem: GuestMemory;
  private readonly vcpus: KvmVcpu[] = [];
  private readonly pio = new AddressSpace();
  private readonly mmio = new AddressSpace();
  private stop: ((s: Stop) => void) | null = null;
  private readonly stopped: Promise<Stop>;
  private readonly doorbells: KvmDoorbells;
  /** The irqfds' eventfds, closed with the VM. */
  private readonly irqfds: number[] = [];

  constructor(private readonly kvm: Kvm, private readonly opts: VmOptions, chr: Chardev, kernel: Uint8Array, kernelName: string,
    initrd: Uint8Array | undefined, cmdline: string, devices: readonly PlannedDevice[]) {
    this.stopped = new Promise((resolve) => { this.stop = resolve; });
    this.vm = kvm.createVm();
    this.vm.setTssAddr(KVM_TSS_ADDR);
    this.vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    this.vm.createIrqchip();
    // ISA IRQ 0 (the PIT) is on IOAPIC pin 2, as the MP table and MADT say; KVM's default puts it on pin 0.
    this.vm.setGsiRouting(kvmGsiRoutes());
    this.vm.createPit2();
    this.mem = allocGuestMemory(opts.memBytes);
    const low = Math.min(opts.memBytes, X86_HOLE_START);
    this.vm.setUserMemoryRegion(0, 0, low, this.mem.hostAddr);
    if (opts.memBytes > low) this.vm.setUserMemoryRegion(1, X86_HOLE_END, opts.memBytes - low, this.mem.hostAddr + BigInt(low));

    const P = MICROVM_PORTS;
    this.pio.addRegion({ name: 'serial', base: P.serial, size: 8, handler: new Serial16550(this.irq(IRQ_SERIAL), chr), impl: { min: 1, max: 1 } });
    this.pio.addRegion({ name: 'i8042', base: P.i8042, size: 5, handler: new I8042(this.irq(IRQ_I8042), () => this.finish({ kind: 'reset' })) });
    this.pio.addRegion({ name: 'acpi-ged', base: P.ged, size: GED_SIZE,
      handler: new AcpiGed(() => this.finish({ kind: 'poweroff' }), () => this.finish({ kind: 'reset' })) });
    this.pio.addRegion({ name: 'post', base: P.postCode, size: 1, handler: POST_PORT });
    this.pio.addRegion({ name: 'rtc', base: P.rtc, size: 2, handler: new Mc146818Rtc() });

    const V = MICROVM_VIRTIO;
    const onPci = devices.filter((d) => d.pci).map((d) => d.device);
    const onMmio = devices.filter((d) => !d.pci).map((d) => d.device);
    if (onMmio.length > V.count) throw new UserError(`the microvm machine has ${V.count} virtio-mmio slots; use -pci devices for more`);
    if (onPci.length > PCI_DEVICES_PER_BUS - 1) throw new UserError(`the microvm machine has ${PCI_DEVICES_PER_BUS - 1} PCI slots`);
    for (const [cap, name] of [[KVM_CAP_IOEVENTFD, 'ioeventfd'], [KVM_CAP_IRQFD, 'irqfd'], [KVM_CAP_SIGNAL_MSI, 'MSI injection']] as const) {
      if (kvm.checkExtension(cap) <= 0) throw new UserError(`KVM on this host lacks ${name}`);
    }
    const guestMem = new RegionGuestMemory([
      { base: 0, bytes: this.mem.view.subarray(0, low) },
      ...(opts.memBytes > low ? [{ base: X86_HOLE_END, bytes: this.mem.view.subarray(low) }] : []),
    ]);
    this.doorbells = new KvmDoorbells(this.vm);
    const virtio = onMmio.map((device, i) => {
      const addr = V.base + i * V.size;
      const transport = new VirtioMmioTransport(device, guestMem, this.edge(V.gsi + i));
      this.mmio.addRegion({ name: `virtio${i}`, base: addr, size: V.size, handler: transport });
      device.queueMaxSizes.forEach((_, q) => this.doorbells.create(() => transport.notifyQueue(q)).move(transport.doorbell(addr, q)));
      return { addr, size: V.size, irq: V.gsi + i };
    });
    const pci = onPci.length > 0 ? this.addPciHost(onPci, guestMem) : undefined;

    const ram = this.mem.view;
    // Hardware-reduced ACPI (as QEMU microvm): CPUs and the IOAPIC in the MADT, the UART in the
    // DSDT, power-off and reset through the sleep and reset registers.
    const acpi = writeAcpiTables(ram, X86_LAYOUT.acpi, {
      vcpuCount: opts.smp,
      ioapic: { id: opts.smp, addr: IOAPIC_ADDR },
      sleepControlPort: P.ged + GED_SLEEP_CONTROL,
      sleepStatusPort: P.ged + GED_SLEEP_STATUS,
      reset: { port: P.ged + GED_RESET, value: RESET_VALUE },
      i8042: true,
      cmosRtc: true,
      uarts: [{ port: P.serial, irq: IRQ_SERIAL }],
      virtioMmio: virtio,
      pci,
    });
    const loaded = loadLinux(ram.subarray(0, low), { kernel, kernelName, initrd, cmdline, ramSize: opts.memBytes, acpiRsdp: acpi.rsdp });
    // The MP table too, for kernels booted with acpi=off.
    writeMpTable(ram, X86_LAYOUT.ebda, opts.smp, { id: opts.smp, addr: IOAPIC_ADDR, pins: IOAPIC_PINS });
    const boot = setupLongMode(ram, loaded);
    const supported = kvm.supportedCpuid();
    for (let i = 0; i < opts.smp; i++) {
      const v = this.vm.createVcpu(i);
      this.vcpus.push(v);
      v.setCpuid2(filterCpuid(supported, i, opts.smp));
      v.setMsrs([
        { index: MSR_IA32_MISC_ENABLE, value: 1n }, // fast string operations
        { index: MSR_MTRR_DEF_TYPE, value: (1n << 11n) | 6n }, // MTRRs on, default write-back
      ]);
      v.setFpu({ fcw: 0x37f, mxcsr: 0x1f80 });
      this.setLocalInterrupts(v);
      if (i === 0) this.setBootRegisters(v, boot);
    }
  }

  /** An ISA interrupt line into KVM's PIC and IOAPIC. */
  private irq(gsi: number): IrqLine {
    return { set: (level) => this.vm.irqLine(gsi, level) };
  }

  /**
   * An edge-triggered line (the DSDT declares virtio interrupts so) through an irqfd: every
   * rising request is one pulse, so an event that arrives before the driver acknowledged
   * the last one is still delivered.
   */
  private edge(gsi: number): IrqLine {
    const fd = eventfd();
    this.irqfds.push(fd);
    this.vm.registerIrqfd(fd, gsi);
    return { set: (level) => { if (level) eventfdWrite(fd); } };
  }

  /**
   * The PCI Express host bridge with `devices` in slots 1 and up: configuration through
   * ports 0xcf8/0xcfc and ECAM, the windows in port and memory space, INTx on level
   * GSIs, MSI-X through KVM, and doorbells that follow the virtio BARs wherever the
   * guest puts them.
   */
  private addPciHost(devices: readonly VirtioDevice[], guestMem: RegionGuestMemory): AcpiPciHost {
    const L = MICROVM_PCIE;
    const host = new GpexHost(L.intx.map((gsi) => this.irq(gsi)));
    const impl = { min: 1, max: 4 };
    this.mmio.addRegion({ name: 'pcie-ecam', ...L.ecam, handler: host.ecam, valid: impl, impl });
    this.mmio.addRegion({ name: 'pcie-mmio', ...L.mmio32, handler: new PciWindow(host.spaces.mem, L.mmio32.base), impl });
    this.pio.addRegion({ name: 'pcie-pio', ...L.pio, handler: new PciWindow(host.spaces.io, L.pio.base), impl });
    this.pio.addRegion({ name: 'pci-conf1', base: PCI_CONF1_PORT, size: PCI_CONF1_SIZE, handler: new PciConf1(host.bus), impl });
    const msi = { send: (addr: number, data: number) => { this.vm.signalMsi(addr, data); } };
    const moves: (() => void)[] = [];
    devices.forEach((device, i) => {
      const transport = new VirtioPciTransport(device, { mem: guestMem, msi });
      host.bus.plug(transport, i + 1);
      const bells = device.queueMaxSizes.map((_, q) => this.doorbells.create(() => transport.notifyQueue(q)));
      moves.push(() => bells.forEach((b, q) => b.move(transport.doorbell(q))));
    });
    host.bus.onRemap = () => { for (const m of moves) m(); };
    return L;
  }

  /** Virtual wire mode: LINT0 takes the PIC's ExtINT, LINT1 is the NMI. */
  private setLocalInterrupts(v: KvmVcpu): void {
    const lapic = v.getLapic();
    const dv = new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength);
    const lvt = (off: number, mode: number) => dv.setUint32(off, (dv.getUint32(off, true) & ~0x700) | mode, true);
    lvt(APIC_LVT_LINT0, APIC_MODE_EXTINT);
    lvt(APIC_LVT_LINT1, APIC_MODE_NMI);
    v.setLapic(lapic);
  }

  private setBootRegisters(v: KvmVcpu, boot: LongModeState): void {
    const regs = v.getRegs();
    regs.rip = BigInt(boot.regs.rip);
    regs.rsi = BigInt(boot.regs.rsi);
    regs.rsp = BigInt(boot.regs.rsp);
    regs.rbp = BigInt(boot.regs.rbp);
    regs.rflags = BigInt(boot.regs.rflags);
    v.setRegs(regs);
    const s = v.getSregs();
    const seg = (x: Segment) => ({ ...x, base: BigInt(x.base) });
    const b = boot.sregs;
    Object.assign(s, {
      cs: seg(b.cs), ds: seg(b.ds), es: seg(b.es), fs: seg(b.fs), gs: seg(b.gs), ss: seg(b.ss), tr: seg(b.tr), ldt: seg(b.ldt),
      gdt: { base: BigInt(b.gdt.base), limit: b.gdt.limit }, idt: { base: BigInt(b.idt.base), limit: b.idt.limit },
      cr0: BigInt(b.cr0), cr3: BigInt(b.cr3), cr4: BigInt(b.cr4), efer: BigInt(b.efer),
    });
    v.setSregs(s);
  }

  /** Ends the run (first reason wins). */
  finish(s: Stop): void {
    this.stop?.(s);
    this.stop = null;
  }

  /**
   * Runs the vCPUs until the guest powers off or resets, or the user quits. A pause (QMP
   * stop, -S) ends the vCPU threads; the vCPUs keep their state in KVM and new threads
   * take them up again on resume.
   */
  async run(runState: RunState): Promise<Stop> {
    const pauseMark: Stop = { kind: 'quit' };
    let final: Stop | null = null;
    void this.stopped.then((s) => {
      final = s;
      runState.wake();
    });
    const reason = await runState.run(async () => {
      for (const v of this.vcpus) v.setImmediateExit(false); // left set by the last stop
      const threads = new KvmVcpuThreads(this.vcpus, this.kvm.vcpuMmapSize(),
        (req) => busAccess(req.kind === 'pio' ? this.pio : this.mmio, req));
      void threads.firstStop.then((m) => {
        if (m.reason === 'shutdown') this.finish({ kind: 'reset' }); // a triple fault resets a PC
        else if (m.reason !== 'requested') this.finish({ kind: 'error', message: `vCPU ${m.vcpu} stopped: ${m.detail}` });
      });
      await Promise.race([this.stopped, new Promise<void>((resolve) => {
        runState.onPauseRequest = resolve;
        if (runState.pausing) resolve();
      })]);
      runState.onPauseRequest = null;
      await threads.stop();
      return final ?? pauseMark;
    }, pauseMark, () => final);
    await this.doorbells.close();
    return reason;
  }

  /** The registers of vCPU `i` (only while its thread is stopped: KVM serialises vCPU ioctls). */
  registers(i: number): string | undefined {
    const v = this.vcpus[i];
    if (v === undefined) return undefined;
    const r = v.getRegs();
    const hex = (x: bigint) => x.toString(16).padStart(16, '0');
    const names = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
    const lines: string[] = [];
    for (let k = 0; k < names.length; k += 4) lines.push(names.slice(k, k + 4).map((n) => `${n.toUpperCase().padEnd(3)}=${hex(r[n])}`).join(' '));
    lines.push(`RIP=${hex(r.rip)} RFL=${r.rflags.toString(16).padStart(8, '0')}`);
    return `${lines.join('\n')}\n`;
  }

  /** Guest RAM below the hole and above 4 GiB. */
  readPhys(addr: number, len: number): Uint8Array | null {
    const low = Math.min(this.opts.memBytes, X86_HOLE_START);
    const view = this.mem.view;
    if (addr + len <= low) return view.slice(addr, addr + len);
    if (addr >= X86_HOLE_END && addr + len <= X86_HOLE_END + this.opts.memBytes - low) return view.slice(addr - X86_HOLE_END + low, addr - X86_HOLE_END + low + len);
    return null;
  }

  regions(): Array<{ space: string; regions: readonly RegionInfo[] }> {
    const low = Math.min(this.opts.memBytes, X86_HOLE_START);
    const ram: RegionInfo[] = [{ name: 'microvm.ram', base: 0, size: low }];
    if (this.opts.memBytes > low) ram.push({ name: 'microvm.ram-above-4g', base: X86_HOLE_END, size: this.opts.memBytes - low });
    const list = (a: AddressSpace) => a.list().map((r) => ({ name: r.name, base: r.base, size: r.size }));
    return [{ space: 'memory', regions: [...ram, ...list(this.mmio)] }, { space: 'I/O', regions: list(this.pio) }];
  }

  destroy(): void {
    for (const v of this.vcpus) v.close();
    for (const fd of this.irqfds) closeFd(fd);
    this.vm.close();
    freeGuestMemory(this.mem.hostAddr, this.opts.memBytes);
  }
}

/** Builds and runs the microvm board under KVM; resolves to the process exit status. */
export async function runMicrovm(opts: VmOptions): Promise<number> {
  if (!opts.accel.names.includes('kvm')) throw new UserError('-M microvm: needs -accel kvm (Vireo has no software x86_64 CPU)');
  const kvm = openKvm();
  await enableHugePages();
  const bundled = opts.kernel === undefined;
  const kernelName = opts.kernel ?? join(BUNDLED_X86_IMAGES, 'bzImage.gz');
  const kernel = readImage(kernelName);
  const initrdPath = opts.initrd ?? (bundled ? join(BUNDLED_X86_IMAGES, 'initramfs.cpio.gz') : undefined);
  const initrd = initrdPath === undefined ? undefined : readFileSync(initrdPath);
  const cmdline = opts.append ?? (bundled ? BUNDLED_CMDLINE : '');
  const backends = await openBackends(opts);
  let current: Microvm | null = null;
  const control = new MicrovmControl(opts, () => current);
  const quit = (): void => current?.finish({ kind: 'quit' });
  const chr = openSerial(opts, quit);
  const stopSignals = quitOnSignals(quit);
  const monitors = startMonitors({ opts, machine: control, runState: control.runState, drives: backends.drives, chardevs: backends.chardevs, serial: chr });
  try {
    for (;;) {
      const machine = new Microvm(kvm, opts, chr, kernel, kernelName, initrd, cmdline, createVirtioDevices(opts.devices, backends));
      current = machine;
      let reason: Stop;
      try {
        reason = await machine.run(control.runState);
      } finally {
        current = null;
        machine.destroy();
      }
      control.ended(reason, opts.noReboot);
      if (reason.kind === 'reset' && !opts.noReboot) continue;
      if (reason.kind === 'error') throw new Error(reason.message);
      return 0;
    }
  } finally {
    stopSignals();
    await monitors.close();
    chr.close();
    kvm.close();
    await closeBackends(backends);
  }
}

/**
 * The microvm board as the monitors see it. system_powerdown: the board's ACPI has no
 * power button (no GED event device in the DSDT), so as on QEMU's virt board only the
 * POWERDOWN event is sent and the guest is not told.
 */
class MicrovmControl implements MachineControl {
  readonly target = 'x86_64';
  readonly cpuType = 'host-x86_64-cpu';
  readonly runState: RunState;
  private cause: 'guest' | 'host-qmp-quit' | 'host-ui' | 'host-qmp-system-reset' = 'guest';

  constructor(private readonly opts: VmOptions, private readonly machine: () => Microvm | null) {
    this.runState = new RunState(opts.startPaused === true);
  }

  /** The run ended for `s`: the RESET or SHUTDOWN event, as QEMU sends them. */
  ended(s: Stop, noReboot: boolean): void {
    const cause = this.cause;
    this.cause = 'guest';
    if (s.kind === 'reset' && !noReboot) {
      this.runState.emit('RESET', { guest: cause === 'guest', reason: cause === 'guest' ? 'guest-reset' : cause });
      return;
    }
    const reason = s.kind === 'quit' ? (cause === 'guest' ? 'host-ui' : cause) : s.kind === 'reset' ? (cause === 'guest' ? 'guest-reset' : cause)
      : s.kind === 'poweroff' ? 'guest-shutdown' : 'guest-panic';
    this.runState.emit('SHUTDOWN', { guest: reason.startsWith('guest'), reason });
    this.runState.shutdown();
  }

  status(): RunStatus {
    return this.runState.status;
  }

  pause(): Promise<void> {
    return this.runState.pause();
  }

  resume(): void {
    this.runState.resume();
  }

  reset(): void {
    this.cause = 'host-qmp-system-reset';
    this.machine()?.finish({ kind: 'reset' });
  }

  powerdown(): boolean {
    this.runState.emit('POWERDOWN');
    return false;
  }

  quit(): void {
    this.cause = 'host-qmp-quit';
    this.machine()?.finish({ kind: 'quit' });
  }

  cpus(): CpuInfo[] {
    return Array.from({ length: this.opts.smp }, (_, i) => ({
      index: i,
      threadId: process.pid, // the vCPU worker threads' kernel ids are not known here
      qomPath: `/machine/unattached/device[${i}]`,
      props: { 'core-id': 0, 'thread-id': 0, 'socket-id': i },
    }));
  }

  registers(index: number): string | undefined {
    if (this.runState.status === 'running') return 'registers can be read while the VM is stopped (stop)\n';
    return this.machine()?.registers(index);
  }

  readPhys(addr: number, len: number): Uint8Array | null {
    return this.machine()?.readPhys(addr, len) ?? null;
  }

  regions(): Array<{ space: string; regions: readonly RegionInfo[] }> {
    return this.machine()?.regions() ?? [];
  }
}
