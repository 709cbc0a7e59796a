/**
 * How fast this host's KVM runs guest code: a 64-bit guest counts a register down from
 * 20 million in a tight loop. Real hardware virtualization does that in a few
 * milliseconds; a /dev/kvm whose virtualization is itself emulated (seen on some
 * nested cloud machines) takes seconds. The test runner uses this to decide whether
 * the KVM tests can run natively in reasonable time.
 */
import { openKvm, allocGuestMemory, freeGuestMemory } from './kvm.js';

const LOOPS = 2_000_000;

/** Guest loop iterations per second (millions), measured once. */
export function kvmLoopRate(): number {
  const kvm = openKvm();
  const vm = kvm.createVm();
  const size = 4 << 20;
  const mem = allocGuestMemory(size);
  try {
    vm.setUserMemoryRegion(0, 0, size, mem.hostAddr);
    const vcpu = vm.createVcpu(0);
    const ram = new DataView(mem.view.buffer, mem.view.byteOffset);
    // Identity-map the first 2 MiB (PML4 0x2000 -> PDPT 0x3000 -> PD 0x4000), flat 64-bit GDT at 0x500.
    ram.setBigUint64(0x2000, 0x3003n, true);
    ram.setBigUint64(0x3000, 0x4003n, true);
    ram.setBigUint64(0x4000, 0x83n, true);
    ram.setBigUint64(0x508, 0x00af9b000000ffffn, true);
    ram.setBigUint64(0x510, 0x00cf93000000ffffn, true);
    const n = [LOOPS & 0xff, (LOOPS >> 8) & 0xff, (LOOPS >> 16) & 0xff, LOOPS >>> 24];
    // mov rcx, LOOPS; 1: dec rcx; jnz 1b; out 0x80, al
    mem.view.set([0x48, 0xb9, ...n, 0, 0, 0, 0, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0xe6, 0x80], 0x10000);
    const s = vcpu.getSregs();
    const flat = { base: 0n, limit: 0xffffffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };
    s.cs = { ...flat, selector: 8, type: 11, db: 0, l: 1 };
    s.ds = s.es = s.ss = { ...flat, selector: 0x10, type: 3, db: 1, l: 0 };
    s.gdt = { base: 0x500n, limit: 23 };
    s.cr3 = 0x2000n;
    s.cr4 = 1n << 5n;
    s.cr0 = 0x80000011n;
    s.efer = 0x500n;
    vcpu.setSregs(s);
    const r = vcpu.getRegs();
    r.rip = 0x10000n;
    r.rflags = 2n;
    vcpu.setRegs(r);
    const start = performance.now();
    const exit = vcpu.run();
    const seconds = (performance.now() - start) / 1000;
    if (exit.kind !== 'io') throw new Error(`KVM probe: unexpected ${exit.kind} exit`);
    vcpu.close();
    return LOOPS / seconds / 1e6;
  } finally {
    vm.close();
    kvm.close();
    freeGuestMemory(mem.hostAddr, size);
  }
}
