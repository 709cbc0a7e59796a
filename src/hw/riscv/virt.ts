/**
 * The RISC-V `virt` board, compatible with QEMU's (hw/riscv/virt.c): one memory
 * map table feeds both device creation and the generated device tree, so the
 * guest is told exactly what exists. The build reads as a recipe of small
 * attach steps, as in Firecracker's builder. Host-independent: the Node run loop is
 * virt-run.ts, the browser's src/web/worker.ts.
 */
import { AddressSpace, type MmioHandler } from '../core/memory.js';
import { Clock } from '../core/clock.js';
import { FdtBuilder } from '../core/fdt.js';
import { RiscvCpus, Mip, MAX_ROM_SIZE } from '../../target/riscv/cpu.js';
import { RiscvPlic, plicFdtNode } from '../intc/riscv-plic.js';
import { RiscvAclint, clintFdtNode, CLINT_TIMEBASE_FREQ, CLINT_VALID_ACCESS } from '../intc/riscv-aclint.js';
import { Serial16550, serialFdtNode } from '../char/serial.js';
import { GoldfishRtc, goldfishRtcFdtNode } from '../rtc/goldfish-rtc.js';
import { SifiveTest, sifiveTestFdtNode, sifiveTestSysconFdtNodes, type ShutdownEvent } from '../misc/sifive-test.js';
import { VIRTIO_ID, type VirtioDevice } from '../virtio/virtio.js';
import { VirtioInput } from '../virtio/virtio-input.js';
import { SimpleFramebuffer, SIMPLEFB_DEFAULT } from '../display/simplefb.js';
import { VirtioMmioTransport, virtioMmioFdtNode } from '../virtio/virtio-mmio.js';
import { VirtioPciTransport } from '../virtio/virtio-pci.js';
import { GpexHost, gpexFdtNode } from '../pci/pci-host-gpex.js';
import { PCI_DEVICES_PER_BUS } from '../pci/pci-bus.js';
import { RegionGuestMemory } from '../core/guest-memory.js';
import { CodeGuardMemory } from '../../target/riscv/jit/jit.js';
import type { PlannedDevice } from '../../system/backends.js';
import { checkPlacement, fdtAddress, resetVector, type BootPlan } from './boot-plan.js';
import type { Chardev } from '../../chardev/chardev.js';
import { UserError, type VmOptions } from '../../system/options.js';

/** QEMU virt's memory map (virt_memmap[]). */
export const VIRT_MEMMAP = {
  mrom: { base: 0x1000, size: 0xf000 },
  test: { base: 0x100000, size: 0x1000 },
  rtc: { base: 0x101000, size: 0x1000 },
  clint: { base: 0x2000000, size: 0x10000 },
  plic: { base: 0xc000000, size: 0x600000 },
  uart0: { base: 0x10000000, size: 0x100 },
  virtio: { base: 0x10001000, size: 0x1000 },
  pcie: {
    ecam: { base: 0x30000000, size: 0x10000000 },
    pio: { base: 0x3000000, size: 0x10000 },
    mmio32: { base: 0x40000000, size: 0x40000000 },
    mmio64: { base: 0x4_0000_0000, size: 0x4_0000_0000 },
  },
  dram: { base: 0x80000000 },
} as const;

/** PLIC interrupt numbers (QEMU's enum): RTC 11, UART0 10, virtio slots 1-8, PCIe INTA-D 0x20-0x23. */
export const VIRT_IRQ = { uart0: 10, rtc: 11, virtio: 1, pcie: 0x20 } as const;
export const VIRTIO_COUNT = 8;
const PLIC_NUM_SOURCES = 96;
const ISA = 'rv64imafdc_zicsr_zifencei';

/** QEMU's -device names of the virtio devices, without the transport's suffix (-device or -pci). */
const VIRTIO_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_ID.NET, 'virtio-net'], [VIRTIO_ID.BLOCK, 'virtio-blk'], [VIRTIO_ID.CONSOLE, 'virtio-serial'],
  [VIRTIO_ID.RNG, 'virtio-rng'], [VIRTIO_ID.NINEP, 'virtio-9p'],
]);

/** The -device name of a virtio device without its transport: `virtio-blk`, `virtio-tablet`. */
export function virtioKind(d: VirtioDevice): string {
  if (d instanceof VirtioInput) return `virtio-${d.kind}`;
  return VIRTIO_NAMES.get(d.deviceId) ?? `virtio-${d.deviceId}`;
}

/** A plugged virtio device: its transport, and the name snapshots know it by. */
export interface VirtioSlot {
  /** The -device name and where it sits: `virtio-blk-device@10001000` (its virtio-mmio node), `virtio-net-pci@00:01.0`. */
  name: string;
  transport: VirtioMmioTransport | VirtioPciTransport;
}

/** A built virt machine: CPUs, devices on the bus, and the device tree describing them. */
export class VirtMachine {
  readonly clock = new Clock();
  readonly bus = new AddressSpace();
  readonly cpus: RiscvCpus;
  readonly clint: RiscvAclint;
  readonly plic: RiscvPlic;
  readonly uart: Serial16550;
  readonly rtc: GoldfishRtc;
  readonly pcie: GpexHost;
  /** The virtio devices: on virtio-mmio slots in order, then on PCI. */
  readonly virtio: VirtioSlot[] = [];
  /**
   * `-device simple-framebuffer`, or null. Its pixels are guest RAM just above what the
   * memory node declares (so the harts and the JIT access them as RAM), and the host
   * reads them from `cpus.ram` at offset opts.memBytes.
   */
  readonly framebuffer: SimpleFramebuffer | null;
  private loaded = false;
  /** Set by the finisher device; the run loop stops when it is. */
  shutdown: ShutdownEvent | null = null;

  /** `devices` are the virtio devices to plug: on virtio-mmio slots in order, or on the PCIe host bridge. */
  constructor(readonly opts: VmOptions, readonly serialChr: Chardev, devices: readonly PlannedDevice[] = []) {
    const m = VIRT_MEMMAP;
    const fb = opts.devices.find((d) => d.driver === 'simple-framebuffer');
    this.framebuffer = fb ? new SimpleFramebuffer(fb.width ?? SIMPLEFB_DEFAULT.width, fb.height ?? SIMPLEFB_DEFAULT.height) : null;
    const fbBytes = this.framebuffer ? Math.ceil(this.framebuffer.bytes / 4096) * 4096 : 0;
    this.cpus = new RiscvCpus(
      { ramBase: m.dram.base, ramSize: opts.memBytes + fbBytes, romBase: m.mrom.base, romSize: m.mrom.size },
      opts.smp, this.bus, () => this.clint.mtime(),
      // VIREO_JIT=1 leaves the JIT off under -gdb, which needs the interpreter. The
      // default threshold is the boot's fastest (docs/riscv-core.md): lower, compiling the
      // regions costs more than they save; higher, little of the boot is translated.
      (opts.accel.jit ?? (process.env.VIREO_JIT === '1' && opts.gdb === undefined))
        ? { threshold: Number(process.env.VIREO_JIT_THRESHOLD ?? 48000), threads: opts.accel.thread === 'multi' } : null);
    const harts = this.cpus.harts;
    this.clint = new RiscvAclint(this.clock, harts.map((h) => h.irqLine(Mip.MSIP)), harts.map((h) => h.irqLine(Mip.MTIP)));
    this.attach('clint', m.clint, this.clint, CLINT_VALID_ACCESS);
    this.plic = new RiscvPlic(harts.flatMap((h) => [h.irqLine(Mip.MEIP), h.irqLine(Mip.SEIP)]), PLIC_NUM_SOURCES);
    this.attach('plic', m.plic, this.plic, { min: 4, max: 4 });
    this.uart = new Serial16550(this.plic.line(VIRT_IRQ.uart0), serialChr);
    this.attach('uart0', m.uart0, this.uart, { min: 1, max: 8 }, 1);
    this.rtc = new GoldfishRtc(this.clock, this.plic.line(VIRT_IRQ.rtc));
    this.attach('rtc', m.rtc, this.rtc, { min: 4, max: 4 });
    this.attach('test', m.test, new SifiveTest((e) => this.requestShutdown(e)), { min: 2, max: 4 });
    const ram = new RegionGuestMemory([{ base: m.dram.base, bytes: this.cpus.ram, dirty: this.cpus.dirty }]);
    const jit = this.cpus.jit;
    const mem = jit ? new CodeGuardMemory(ram, jit, m.dram.base, this.cpus.ramHost) : ram;
    const onMmio = devices.filter((d) => !d.pci).map((d) => d.device);
    if (onMmio.length > VIRTIO_COUNT) throw new UserError(`the virt machine has ${VIRTIO_COUNT} virtio-mmio slots; use -pci devices for more`);
    const name = (d: VirtioDevice, transport: string): string => `${virtioKind(d)}-${transport}`;
    for (let i = 0; i < VIRTIO_COUNT; i++) {
      const base = m.virtio.base + i * m.virtio.size;
      const device = onMmio[i] ?? null;
      const transport = new VirtioMmioTransport(device, mem, this.plic.line(VIRT_IRQ.virtio + i));
      this.attach(`virtio${i}`, { base, size: m.virtio.size }, transport);
      if (device) this.virtio.push({ name: `${name(device, 'device')}@${base.toString(16)}`, transport });
    }
    // The PCIe host bridge, with INTx on the PLIC (the board has no MSI controller, so MSI-X goes nowhere).
    this.pcie = new GpexHost([0, 1, 2, 3].map((i) => this.plic.line(VIRT_IRQ.pcie + i)));
    for (const r of this.pcie.regions(m.pcie)) this.bus.addRegion(r);
    devices.filter((d) => d.pci).forEach((d, i) => {
      const slot = i + 1;
      if (slot >= PCI_DEVICES_PER_BUS) throw new UserError(`at most ${PCI_DEVICES_PER_BUS - 1} PCI devices fit on the virt machine's PCIe bus`);
      const transport = new VirtioPciTransport(d.device, { mem, msi: { send() {} } });
      this.pcie.bus.plug(transport, slot);
      this.virtio.push({ name: `${name(d.device, 'pci')}@00:${slot.toString(16).padStart(2, '0')}.0`, transport });
    });
  }

  /** The framebuffer's pixels (a live view of guest RAM), or null without one. */
  framebufferPixels(): Uint8Array | null {
    const fb = this.framebuffer;
    return fb ? this.cpus.ram.subarray(this.opts.memBytes, this.opts.memBytes + fb.bytes) : null;
  }

  /** What a live migration's destination must match: the board, vCPUs, RAM and the devices plugged (in order). */
  migrationConfig(): Record<string, unknown> {
    return { machine: 'virt', smp: this.opts.smp, ramBytes: this.opts.memBytes, devices: this.opts.devices.map((d) => d.driver) };
  }

  /**
   * Resolves once no virtio request is in flight (QEMU's bdrv_drain_all), for snapshots
   * and migration; the harts must be stopped, so that no new request comes.
   */
  async drain(): Promise<void> {
    await Promise.all(this.virtio.map((v) => v.transport.device?.drain?.()));
  }

  private attach(name: string, r: { base: number; size: number }, handler: MmioHandler,
    valid = { min: 1, max: 8 }, implMax = 4): void {
    this.bus.addRegion({ name, base: r.base, size: r.size, handler, valid, impl: { min: 1, max: implMax } });
  }

  private requestShutdown(e: ShutdownEvent): void {
    this.shutdown = e;
    for (const h of this.cpus.harts) h.requestExit();
  }

  /** The device tree for this machine, as QEMU's create_fdt() lays it out. */
  fdt(bootargs: string, initrd: { start: number; end: number } | null): Uint8Array {
    const m = VIRT_MEMMAP;
    const f = new FdtBuilder();
    const harts = this.cpus.harts;
    const intc = harts.map(() => f.allocPhandle());
    const plicPhandle = f.allocPhandle();
    const testPhandle = f.allocPhandle();
    f.beginNode('');
    f.propU32('#address-cells', 2);
    f.propU32('#size-cells', 2);
    f.propString('compatible', 'riscv-virtio');
    f.propString('model', 'riscv-virtio,qemu');

    f.beginNode('chosen');
    if (this.framebuffer) {
      // Addresses of /chosen's children are the root's (as U-Boot writes it).
      f.propU32('#address-cells', 2);
      f.propU32('#size-cells', 2);
      f.propEmpty('ranges');
    }
    if (bootargs !== '') f.propString('bootargs', bootargs);
    f.propString('stdout-path', `/soc/serial@${m.uart0.base.toString(16)}`);
    if (initrd) {
      f.propU64('linux,initrd-start', initrd.start);
      f.propU64('linux,initrd-end', initrd.end);
    }
    this.framebuffer?.fdtNode(f, m.dram.base + this.opts.memBytes);
    f.endNode();

    f.beginNode(`memory@${m.dram.base.toString(16)}`);
    f.propString('device_type', 'memory');
    f.propCells64('reg', [m.dram.base, this.opts.memBytes]);
    f.endNode();

    // QEMU 7.2 puts the poweroff and reboot syscon nodes at the root.
    sifiveTestSysconFdtNodes(f, testPhandle);

    f.beginNode('cpus');
    f.propU32('#address-cells', 1);
    f.propU32('#size-cells', 0);
    f.propU32('timebase-frequency', CLINT_TIMEBASE_FREQ);
    harts.forEach((h, i) => {
      f.beginNode(`cpu@${h.id}`);
      f.propString('device_type', 'cpu');
      f.propU32('reg', h.id);
      f.propString('status', 'okay');
      f.propString('compatible', 'riscv');
      f.propString('riscv,isa', ISA);
      f.propString('mmu-type', 'riscv,sv48');
      f.beginNode('interrupt-controller');
      f.propU32('#interrupt-cells', 1);
      f.propEmpty('interrupt-controller');
      f.propString('compatible', 'riscv,cpu-intc');
      f.propU32('phandle', intc[i]!);
      f.endNode();
      f.endNode();
    });
    f.endNode();

    f.beginNode('soc');
    f.propU32('#address-cells', 2);
    f.propU32('#size-cells', 2);
    f.propString('compatible', 'simple-bus');
    f.propEmpty('ranges');
    sifiveTestFdtNode(f, m.test.base, m.test.size, testPhandle);
    goldfishRtcFdtNode(f, m.rtc.base, m.rtc.size, VIRT_IRQ.rtc, plicPhandle);
    serialFdtNode(f, m.uart0.base, m.uart0.size, VIRT_IRQ.uart0, plicPhandle);
    plicFdtNode(f, m.plic.base, m.plic.size, plicPhandle, intc, PLIC_NUM_SOURCES - 1);
    clintFdtNode(f, m.clint.base, m.clint.size, intc);
    for (let i = 0; i < VIRTIO_COUNT; i++) {
      virtioMmioFdtNode(f, m.virtio.base + i * m.virtio.size, m.virtio.size, VIRT_IRQ.virtio + i, plicPhandle);
    }
    gpexFdtNode(f, m.pcie, VIRT_IRQ.pcie, plicPhandle);
    f.endNode();
    f.endNode();
    return f.finish();
  }

  /**
   * Copies the boot images and the device tree into the machine's memory, which is fresh
   * (all zero), and resets the harts; once per machine.
   */
  load(plan: BootPlan, dtb: Uint8Array): void {
    if (this.loaded) throw new Error('a machine is loaded once');
    this.loaded = true;
    const m = VIRT_MEMMAP;
    const ramMiB = Math.floor(this.opts.memBytes / 2 ** 20);
    checkPlacement(plan, [
      { base: m.dram.base, size: this.opts.memBytes, name: 'RAM' },
      { base: m.mrom.base, size: m.mrom.size, name: 'ROM' },
    ], ramMiB);
    const fdtAddr = fdtAddress(m.dram.base, this.opts.memBytes, dtb.length);
    for (const b of plan.blobs) {
      if (fdtAddr < b.addr + b.size && b.addr < fdtAddr + dtb.length) {
        throw new UserError(`the ${b.what} overlaps the device tree at the top of RAM; try a larger -m`);
      }
    }
    const { ram, rom } = this.cpus;
    for (const b of plan.blobs) {
      const [mem, base] = b.addr >= m.dram.base ? [ram, m.dram.base] : [rom, m.mrom.base];
      // The rest of its size (a kernel's BSS) is zero already.
      copyNonZeroPages(mem, b.addr - base, b.data);
    }
    ram.set(dtb, fdtAddr - m.dram.base);
    const vec = resetVector(plan.start, fdtAddr, plan.kernelEntry);
    if (vec.length > MAX_ROM_SIZE) throw new Error('reset vector too large');
    rom.set(vec, 0);
    for (const h of this.cpus.harts) h.reset(m.mrom.base);
  }
}

/**
 * Copies `src` to `dst` at `offset`, leaving out the 4 KiB pages of `src` that are all zero,
 * which `dst` (fresh memory) has already: a kernel built with CONFIG_STRICT_KERNEL_RWX (as
 * distributions build theirs) is ~40% zero pages, the padding between its 2 MiB-aligned
 * sections, whose first write would each cost the host a page fault (about 15 us on a
 * virtualised host, where the browser cannot ask for huge pages). Runs of non-zero pages go
 * in one copy.
 */
export function copyNonZeroPages(dst: Uint8Array, offset: number, src: Uint8Array): void {
  const PAGE = 4096;
  const words = src.byteOffset % 4 === 0 ? new Int32Array(src.buffer, src.byteOffset, src.length >>> 2) : null;
  let run = 0; // start of the current run of non-zero pages
  for (let at = 0; at < src.length; at += PAGE) {
    const end = Math.min(at + PAGE, src.length);
    if (words === null || end - at < PAGE || !zeroWords(words, at >>> 2, end >>> 2)) continue;
    if (run < at) dst.set(src.subarray(run, at), offset + run);
    run = end;
  }
  if (run < src.length) dst.set(src.subarray(run), offset + run);
}

/** Whether words[from..to) are all zero; a function of its own, so that V8 optimises the loop at once. */
function zeroWords(words: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (words[i] !== 0) return false;
  return true;
}
