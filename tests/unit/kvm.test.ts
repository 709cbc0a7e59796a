/**
 * Tests for the KVM binding (src/accel/kvm/): struct layouts and ioctl numbers
 * (everywhere), and real guests on /dev/kvm — real mode, MMIO, long mode,
 * in-kernel devices, a vCPU run from a worker thread, and an exit-rate
 * benchmark. Without a usable /dev/kvm the guest tests skip visibly.
 */
import { after, test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../src/system/options.js';
import { KvmDoorbells } from '../../src/accel/kvm/ioeventfd.js';
import {
  allocGuestMemory, closeFd, eventfd, eventfdRead, eventfdWrite, freeGuestMemory, openKvm, EFD_CLOEXEC, EFD_NONBLOCK,
  KVM_CAP_IRQCHIP, KVM_CAP_USER_MEMORY, KVM_PIT_SPEAKER_DUMMY, SysError,
  type Kvm, type KvmSegment, type KvmVcpu, type KvmVm, type VcpuExit,
} from '../../src/accel/kvm/kvm.js';
import {
  KVM_GET_SREGS, KVM_GET_SUPPORTED_CPUID, KVM_IOEVENTFD, KVM_RUN, KVM_SET_USER_MEMORY_REGION, decodeCpuid2, decodeRegs,
  decodeSregs, encodeCpuid2, encodeRegs, encodeSregs, REG_NAMES, type KvmRegs,
} from '../../src/accel/kvm/kvm-sys.js';

let kvm: Kvm | undefined;
let noKvm = '';
try {
  kvm = openKvm();
} catch (e) {
  if (!(e instanceof UserError)) throw e;
  noKvm = e.message;
}
after(() => kvm?.close());

/** The Kvm handle, or undefined after marking the test skipped. */
function needKvm(t: TestContext): Kvm | undefined {
  if (kvm === undefined) t.skip(noKvm); // e.g. "KVM is not available: /dev/kvm: No such file or directory"
  return kvm;
}

const CODE = 0x1000;
const RAM = 0x10000;

interface Guest {
  vm: KvmVm;
  vcpu: KvmVcpu;
  ram: Uint8Array;
  hostAddr: bigint;
  [Symbol.dispose](): void;
}

/** A VM with 64 KiB of RAM at 0, `code` at 0x1000 and one vCPU. */
function guest(k: Kvm, code: number[]): Guest {
  const vm = k.createVm();
  const mem = allocGuestMemory(RAM);
  vm.setUserMemoryRegion(0, 0, RAM, mem.hostAddr);
  mem.view.set(code, CODE);
  const vcpu = vm.createVcpu(0);
  return {
    vm, vcpu, ram: mem.view, hostAddr: mem.hostAddr,
    [Symbol.dispose]() {
      vcpu.close();
      vm.close();
      freeGuestMemory(mem.hostAddr, RAM);
    },
  };
}

/** Real mode with cs = 0, ip = 0x1000. */
function startRealMode(vcpu: KvmVcpu): void {
  const s = vcpu.getSregs();
  s.cs.base = 0n;
  s.cs.selector = 0;
  vcpu.setSregs(s);
  const regs = vcpu.getRegs();
  regs.rip = BigInt(CODE);
  regs.rflags = 2n;
  vcpu.setRegs(regs);
}

function expectExit<K extends VcpuExit['kind']>(exit: VcpuExit, kind: K): Extract<VcpuExit, { kind: K }> {
  assert.equal(exit.kind, kind, `expected a ${kind} exit, got ${JSON.stringify(exit)}`);
  return exit as Extract<VcpuExit, { kind: K }>;
}

test('ioctl numbers match <linux/kvm.h>', () => {
  assert.equal(KVM_RUN, 0xae80);
  assert.equal(KVM_GET_SREGS, 0x8138ae83);
  assert.equal(KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
  assert.equal(KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
  assert.equal(KVM_IOEVENTFD, 0x4040ae79);
});

test('struct codecs round-trip', () => {
  const regs = Object.fromEntries(REG_NAMES.map((n, i) => [n, BigInt(i + 1) << 56n | BigInt(i)])) as KvmRegs;
  const rbuf = new Uint8Array(144);
  encodeRegs(regs, rbuf);
  assert.deepEqual(decodeRegs(rbuf), regs);
  assert.equal(new DataView(rbuf.buffer).getBigUint64(16 * 8, true), regs.rip); // rip follows r15

  const seg = (selector: number): KvmSegment => ({
    base: BigInt(selector) << 32n, limit: 0xfffff, selector, type: 11, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1, avl: 1, unusable: 0,
  });
  const sregs = {
    cs: seg(1), ds: seg(2), es: seg(3), fs: seg(4), gs: seg(5), ss: seg(6), tr: seg(7), ldt: seg(8),
    gdt: { base: 0x1234n, limit: 0x27 }, idt: { base: 0x5678n, limit: 0xfff },
    cr0: 0x80000011n, cr2: 2n, cr3: 0x2000n, cr4: 0x20n, cr8: 8n, efer: 0x500n, apicBase: 0xfee00900n,
    interruptBitmap: [1n, 0n, 0n, 1n << 63n],
  };
  const sbuf = new Uint8Array(312);
  encodeSregs(sregs, sbuf);
  assert.deepEqual(decodeSregs(sbuf), sregs);
  assert.equal(new DataView(sbuf.buffer).getBigUint64(224, true), 0x80000011n); // cr0 after 8 segments + 2 dtables

  const cpuid = [{ fn: 0x8000_0001, index: 0, flags: 0, eax: 1, ebx: 0xffff_ffff, ecx: 3, edx: 4 }];
  const cbuf = encodeCpuid2(cpuid, 4);
  assert.equal(cbuf.length, 8 + 4 * 40);
  new DataView(cbuf.buffer).setUint32(0, 1, true); // the kernel's nent
  assert.deepEqual(decodeCpuid2(cbuf), cpuid);
});

test('openKvm reports a missing or wrong device as a one-line UserError', () => {
  assert.throws(() => openKvm('/nonexistent/kvm'), (e: unknown) =>
    e instanceof UserError && e.message === 'KVM is not available: /nonexistent/kvm: No such file or directory');
  assert.throws(() => openKvm('/dev/null'), (e: unknown) =>
    e instanceof UserError && e.message === 'KVM is not available: /dev/null: Inappropriate ioctl for device');
});

test('eventfd counter', () => {
  const fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  try {
    assert.equal(eventfdRead(fd), 0n);
    eventfdWrite(fd, 2n);
    eventfdWrite(fd);
    assert.equal(eventfdRead(fd), 3n);
  } finally {
    closeFd(fd);
  }
});

test('system ioctls', (t) => {
  const k = needKvm(t);
  if (!k) return;
  assert.ok(k.checkExtension(KVM_CAP_USER_MEMORY) > 0);
  assert.ok(k.vcpuMmapSize() >= 4096);
  const cpuid = k.supportedCpuid();
  const leaf0 = cpuid.find((e) => e.fn === 0);
  assert.ok(leaf0 && leaf0.eax >= 1, 'CPUID leaf 0 present');
  const vendor = Buffer.alloc(12);
  vendor.writeUInt32LE(leaf0.ebx, 0);
  vendor.writeUInt32LE(leaf0.edx, 4);
  vendor.writeUInt32LE(leaf0.ecx, 8);
  assert.match(vendor.toString('latin1'), /^(AuthenticAMD|GenuineIntel|HygonGenuine|CentaurHauls)$/);
});

test('real mode: OUT, IN and HLT exits', (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xb0, 0x56, //       mov al, 'V'
    0xee, //             out dx, al
    0xec, //             in al, dx
    0xf4, //             hlt
  ]);
  startRealMode(g.vcpu);

  const out = expectExit(g.vcpu.run(), 'io');
  assert.deepEqual({ port: out.port, size: out.size, write: out.write, count: out.count }, { port: 0x3f8, size: 1, write: true, count: 1 });
  assert.deepEqual([...out.data], [0x56]);

  const inp = expectExit(g.vcpu.run(), 'io');
  assert.deepEqual({ port: inp.port, size: inp.size, write: inp.write, count: inp.count }, { port: 0x3f8, size: 1, write: false, count: 1 });
  inp.data[0] = 0x42; // the IN result, consumed by the next KVM_RUN

  expectExit(g.vcpu.run(), 'hlt');
  const regs = g.vcpu.getRegs();
  assert.equal(regs.rax & 0xffffn, 0x42n);
  assert.equal(regs.rdx & 0xffffn, 0x3f8n);
  assert.equal(regs.rip, BigInt(CODE + 8));
});

test('real mode: MMIO write and read at an unmapped address', (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [
    0xb8, 0x00, 0x20, //                   mov ax, 0x2000
    0x8e, 0xd8, //                         mov ds, ax
    0xc7, 0x06, 0x00, 0x00, 0x34, 0x12, // mov word [0], 0x1234
    0x8b, 0x0e, 0x04, 0x00, //             mov cx, [4]
    0xf4, //                               hlt
  ]);
  startRealMode(g.vcpu);

  const w = expectExit(g.vcpu.run(), 'mmio');
  assert.deepEqual({ addr: w.addr, len: w.len, write: w.write }, { addr: 0x20000, len: 2, write: true });
  assert.deepEqual([...w.data.subarray(0, w.len)], [0x34, 0x12]);

  const r = expectExit(g.vcpu.run(), 'mmio');
  assert.deepEqual({ addr: r.addr, len: r.len, write: r.write }, { addr: 0x20004, len: 2, write: false });
  r.data.set([0xef, 0xbe]);

  expectExit(g.vcpu.run(), 'hlt');
  assert.equal(g.vcpu.getRegs().rcx & 0xffffn, 0xbeefn);
});

test('long mode: 64-bit code with identity paging', (t) => {
  const k = needKvm(t);
  if (!k) return;
  const imm = 0xfedcba9876543210n;
  const immBytes = [...new Uint8Array(new BigUint64Array([imm]).buffer)];
  using g = guest(k, [
    0x48, 0xb8, ...immBytes, //       mov rax, imm64
    0xba, 0xf8, 0x03, 0x00, 0x00, //  mov edx, 0x3f8
    0xef, //                          out dx, eax
    0xf4, //                          hlt
  ]);
  const ram = new DataView(g.ram.buffer, g.ram.byteOffset);
  // PML4 at 0x2000 → PDPT at 0x3000 → PD at 0x4000, whose entry 0 maps a 2 MiB page at 0.
  ram.setBigUint64(0x2000, 0x3000n | 3n, true); // present, writable
  ram.setBigUint64(0x3000, 0x4000n | 3n, true);
  ram.setBigUint64(0x4000, 0x83n, true); // present, writable, page size
  // GDT at 0x500: null, 64-bit code (selector 8), data (selector 0x10).
  ram.setBigUint64(0x508, 0x00af9b000000ffffn, true);
  ram.setBigUint64(0x510, 0x00cf93000000ffffn, true);

  const s = g.vcpu.getSregs();
  const flat = { base: 0n, limit: 0xffffffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };
  s.cs = { ...flat, selector: 0x08, type: 11, db: 0, l: 1 };
  s.ds = s.es = s.fs = s.gs = s.ss = { ...flat, selector: 0x10, type: 3, db: 1, l: 0 };
  s.gdt = { base: 0x500n, limit: 23 };
  s.cr3 = 0x2000n;
  s.cr4 = 1n << 5n; // PAE
  s.cr0 = (1n << 31n) | (1n << 4n) | 1n; // PG, ET, PE
  s.efer = (1n << 10n) | (1n << 8n); // LMA, LME
  g.vcpu.setSregs(s);
  const regs = g.vcpu.getRegs();
  regs.rip = BigInt(CODE);
  regs.rsp = 0x8000n;
  regs.rflags = 2n;
  g.vcpu.setRegs(regs);

  const out = expectExit(g.vcpu.run(), 'io');
  assert.deepEqual({ port: out.port, size: out.size, write: out.write }, { port: 0x3f8, size: 4, write: true });
  assert.deepEqual([...out.data], [0x10, 0x32, 0x54, 0x76]);
  expectExit(g.vcpu.run(), 'hlt');
  const after = g.vcpu.getRegs();
  assert.equal(after.rax, imm);
  assert.equal(after.rip, BigInt(CODE + 17));
  const sAfter = g.vcpu.getSregs();
  assert.equal(sAfter.cs.l, 1);
  assert.equal(sAfter.efer & 0x500n, 0x500n);
});

test('immediate_exit makes run() return an intr exit', (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [0xf4]);
  startRealMode(g.vcpu);
  g.vcpu.setImmediateExit(true);
  expectExit(g.vcpu.run(), 'intr');
  g.vcpu.setImmediateExit(false);
  expectExit(g.vcpu.run(), 'hlt');
});

test('in-kernel irqchip, PIT, TSS and vCPU state ioctls', (t) => {
  const k = needKvm(t);
  if (!k) return;
  assert.ok(k.checkExtension(KVM_CAP_IRQCHIP) > 0);
  const vm = k.createVm();
  const efd = eventfd();
  try {
    vm.setTssAddr(0xfffb_d000);
    vm.setIdentityMapAddr(0xfffb_c000);
    vm.createIrqchip();
    vm.createPit2(KVM_PIT_SPEAKER_DUMMY);
    const vcpu = vm.createVcpu(0);
    try {
      assert.throws(() => vm.createVcpu(0), (e: unknown) => e instanceof SysError && e.message === 'KVM_CREATE_VCPU: File exists');
      vcpu.setCpuid2(k.supportedCpuid());
      vcpu.setMsrs([{ index: 0x174, value: 0x10n }]); // IA32_SYSENTER_CS
      assert.throws(() => vcpu.setMsrs([{ index: 0xdead_0000, value: 0n }]), /^Error: KVM_SET_MSRS: MSR 0xdead0000 not accepted$/);
      vcpu.setFpu({ fcw: 0x37f, mxcsr: 0x1f80 });
      const lapic = vcpu.getLapic();
      assert.equal(lapic.length, 1024);
      assert.equal(lapic[0x20 + 3], 0); // APIC ID register: vCPU 0 (ID in bits 31:24)
      vcpu.setLapic(lapic);
      assert.throws(() => vcpu.setLapic(new Uint8Array(16)), RangeError);
      vm.irqLine(4, true);
      vm.irqLine(4, false);
      vm.registerIrqfd(efd, 5);
      assert.equal(typeof vm.signalMsi(0xfee0_0000, 0x30), 'boolean');
    } finally {
      vcpu.close();
    }
    assert.throws(() => vcpu.getRegs(), /KVM_GET_REGS: file descriptor \d+ is closed/);
  } finally {
    closeFd(efd);
    vm.close();
  }
});

test('ioeventfd: a matching OUT signals the eventfd without exiting', (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [
    0xba, 0x00, 0x05, // mov dx, 0x500
    0xb0, 0x07, //       mov al, 7
    0xee, //             out dx, al   (ioeventfd)
    0x42, //             inc dx
    0xee, //             out dx, al   (datamatch 9: not matched, exits)
    0xf4, //             hlt
  ]);
  const efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  try {
    g.vm.registerIoeventfd(efd, 0x500, 1, { pio: true });
    g.vm.registerIoeventfd(efd, 0x501, 1, { pio: true, datamatch: 9 });
    startRealMode(g.vcpu);
    const io = expectExit(g.vcpu.run(), 'io');
    assert.equal(io.port, 0x501);
    assert.equal(eventfdRead(efd), 1n);
    expectExit(g.vcpu.run(), 'hlt');
  } finally {
    closeFd(efd);
  }
});

test('doorbells: a caught MMIO write runs its handler on this thread without an exit; a lifted one exits', async (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [
    0xb8, 0x00, 0x20, //                               mov ax, 0x2000
    0x8e, 0xd8, //                                     mov ds, ax
    0x66, 0xc7, 0x06, 0x00, 0x00, 0x07, 0, 0, 0, //    mov dword [0], 7   (guest-physical 0x20000, no RAM)
    0xf4, //                                           hlt
  ]);
  const doorbells = new KvmDoorbells(g.vm);
  const alive = setInterval(() => {}, 1000); // the poller thread does not keep the process alive
  try {
    let rung!: () => void;
    const ringing = new Promise<void>((resolve) => { rung = resolve; });
    const bell = doorbells.create(() => rung());
    bell.move({ addr: 0x20000, size: 4, value: 7 });
    bell.move({ addr: 0x20000, size: 4, value: 7 }); // the same place: nothing to do
    startRealMode(g.vcpu);
    expectExit(g.vcpu.run(), 'hlt');
    await ringing;
    bell.move(null);
    startRealMode(g.vcpu);
    const w = expectExit(g.vcpu.run(), 'mmio');
    assert.deepEqual({ addr: w.addr, len: w.len, write: w.write }, { addr: 0x20000, len: 4, write: true });
  } finally {
    clearInterval(alive);
    await doorbells.close();
  }
});

test('a worker thread attaches to the vCPU and guest RAM and runs the guest', async (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [0xb0, 0x57, 0xe6, 0x80, 0xf4]); // mov al, 'W'; out 0x80, al; hlt
  startRealMode(g.vcpu);
  const workerCode = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    import(w.module).then((kvm) => {
      const vcpu = kvm.KvmVcpu.attach(w.fd, w.mmapSize);
      const ram = kvm.guestMemoryView(w.hostAddr, w.ramSize);
      const e = vcpu.run();
      const first = { kind: e.kind, port: e.port, data: [...e.data] };
      parentPort.postMessage({ first, second: vcpu.run().kind, code: ram[${CODE}] });
    });`;
  const worker = new Worker(workerCode, {
    eval: true,
    workerData: {
      module: new URL('../../src/accel/kvm/kvm.js', import.meta.url).href,
      fd: g.vcpu.fd, mmapSize: k.vcpuMmapSize(), hostAddr: g.hostAddr, ramSize: RAM,
    },
  });
  const result = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.deepEqual(result, { first: { kind: 'io', port: 0x80, data: [0x57] }, second: 'hlt', code: 0xb0 });
});

test('benchmark: port I/O exits per second (printed, not asserted)', (t) => {
  const k = needKvm(t);
  if (!k) return;
  using g = guest(k, [
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xee, //             out dx, al
    0xeb, 0xfd, //       jmp back to the out
  ]);
  startRealMode(g.vcpu);
  const exits = (n: number): void => {
    for (let i = 0; i < n; i++) {
      if (g.vcpu.run().kind !== 'io') assert.fail('expected io exits only');
    }
  };
  exits(20_000); // warm-up
  const n = 200_000;
  const t0 = process.hrtime.bigint();
  exits(n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  t.diagnostic(`${Math.round(1e9 / ns).toLocaleString('en-US')} port I/O exits/s, ${(ns / 1000).toFixed(2)} µs per KVM_RUN round trip`);
});
