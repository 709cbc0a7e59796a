/**
 * Tests for the vCPU CPUID table (src/hw/i386/cpuid.ts), from hand-made Intel-like and
 * AMD-like KVM_GET_SUPPORTED_CPUID results.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CPUID_FLAG_SIGNIFICANT_INDEX, type CpuidEntry, KVM_SIGNATURE, filterCpuid } from '../../src/hw/i386/cpuid.js';

const SIG = CPUID_FLAG_SIGNIFICANT_INDEX;

function leaf(fn: number, eax: number, ebx: number, ecx: number, edx: number, index = 0, flags = 0): CpuidEntry {
  return { fn, index, flags, eax, ebx, ecx, edx };
}

/** A 16-thread Intel host (8 cores x 2 threads) as KVM reports it. */
const INTEL: readonly CpuidEntry[] = [
  leaf(0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69), // GenuineIntel
  leaf(1, 0x000906ea, 0x00100800, 0x76fa3223, 0x0f8bfbff), // VMX (bit 5) set, TSC-deadline clear
  leaf(4, 0x1c004121, 0x01c0003f, 0x3f, 0, 0, SIG), // L1d, 2 threads, 8 cores
  leaf(4, 0x1c004122, 0x01c0003f, 0x3f, 0, 1, SIG), // L1i
  leaf(4, 0x1c004143, 0x00c0003f, 0x3ff, 0, 2, SIG), // L2
  leaf(4, 0x1c03c163, 0x03c0003f, 0x2fff, 6, 3, SIG), // L3, 16 threads
  leaf(4, 0, 0, 0, 0, 4, SIG),
  leaf(7, 0, 0x029c67af, 0x40000004, 0xbc000400, 0, SIG), // SGX (EBX 2) and SGX_LC (ECX 30) set
  leaf(0xb, 1, 2, 0x100, 7, 0, SIG),
  leaf(0xb, 4, 16, 0x201, 7, 1, SIG),
  leaf(0xd, 0x2e7, 0x340, 0xa88, 0, 0, SIG),
  leaf(0x1f, 1, 2, 0x100, 7, 0, SIG),
  leaf(0x1f, 4, 16, 0x201, 7, 1, SIG),
  leaf(0x1f, 0, 0, 2, 7, 2, SIG),
  leaf(0x4000_0000, 0x4000_0001, KVM_SIGNATURE.ebx, KVM_SIGNATURE.ecx, KVM_SIGNATURE.edx),
  leaf(0x4000_0001, 0x0100_7efb, 0, 0, 0),
  leaf(0x8000_0000, 0x8000_0008, 0, 0, 0),
  leaf(0x8000_0001, 0, 0, 0x121, 0x2c100800),
  leaf(0x8000_0008, 0x3027, 0, 0, 0),
];

/** An 8-core AMD host with SMT, without KVM's paravirtual leaves. */
const AMD: readonly CpuidEntry[] = [
  leaf(0, 0x10, 0x68747541, 0x444d4163, 0x69746e65), // AuthenticAMD
  leaf(1, 0x00a20f10, 0x00100800, 0x7ed8320b, 0x178bfbff),
  leaf(7, 0, 0x219c91a9, 0x00000600, 0, 0, SIG),
  leaf(0x8000_0000, 0x8000_0020, 0, 0, 0),
  leaf(0x8000_0001, 0x00a20f10, 0x20000000, 0x75c237ff, 0x2fd3fbff), // SVM (2), CmpLegacy (1), TopoExt (22)
  leaf(0x8000_0008, 0x3030, 0x0, 0x0001_700f, 0), // PerfTscSize 1, ApicIdSize 7, NC 15
  leaf(0x8000_001d, 0x00004121, 0x01c0003f, 0x3f, 0, 0, SIG), // L1d, 2 threads
  leaf(0x8000_001d, 0x00004122, 0x01c0003f, 0x3f, 0, 1, SIG),
  leaf(0x8000_001d, 0x00004143, 0x01c0003f, 0x3ff, 2, 2, SIG),
  leaf(0x8000_001d, 0x0003c163, 0x03c0003f, 0x7fff, 1, 3, SIG), // L3, 16 threads
  leaf(0x8000_001d, 0, 0, 0, 0, 4, SIG),
  leaf(0x8000_001e, 0x0000000b, 0x00000105, 0x00000000, 0),
  leaf(0x8000_001f, 0x0001_0003, 0x0000_016f, 0x1fd, 1), // SME, SEV
];

function find(entries: CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const e = entries.find((x) => x.fn === fn && x.index === index);
  assert.ok(e, `leaf 0x${fn.toString(16)}.${index}`);
  return e;
}

const bit = (v: number, n: number): number => (v >>> n) & 1;

test('leaf 1 gets the APIC ID, package size, hypervisor and TSC-deadline bits; VMX goes', () => {
  const out = filterCpuid(INTEL, 3, 6);
  const l1 = find(out, 1);
  assert.equal(l1.ebx >>> 24, 3); // initial APIC ID
  assert.equal((l1.ebx >>> 16) & 0xff, 8); // 6 cores span 8 APIC IDs
  assert.equal(l1.ebx & 0xffff, 0x0800); // CLFLUSH size and brand index kept
  assert.equal(bit(l1.ecx, 31), 1);
  assert.equal(bit(l1.ecx, 24), 1);
  assert.equal(bit(l1.ecx, 5), 0);
  assert.equal(l1.ecx & ~((1 << 31) | (1 << 24)), 0x76fa3223 & ~(1 << 5));
  assert.equal(bit(l1.edx, 28), 1); // HTT: EBX[23:16] is valid
  assert.equal(l1.eax, 0x000906ea);

  const single = find(filterCpuid(INTEL, 0, 1), 1);
  assert.equal(single.ebx >>> 24, 0);
  assert.equal((single.ebx >>> 16) & 0xff, 1);
  assert.equal(bit(single.edx, 28), 0);
});

test('leaf 7 drops SGX and sets the x87 bits KVM errata.rst recommends', () => {
  const l7 = find(filterCpuid(INTEL, 0, 2), 7);
  assert.equal(bit(l7.ebx, 2), 0);
  assert.equal(bit(l7.ecx, 30), 0);
  assert.equal(bit(l7.ebx, 6), 1);
  assert.equal(bit(l7.ebx, 13), 1);
  assert.equal(l7.ebx & ~((1 << 2) | (1 << 6) | (1 << 13)), 0x029c67af & ~((1 << 2) | (1 << 6) | (1 << 13)));
  assert.equal(l7.edx, 0xbc000400);
});

test('leaves 0xb and 0x1f describe one thread per core and vcpuCount cores', () => {
  const out = filterCpuid(INTEL, 5, 6);
  for (const fn of [0xb, 0x1f]) {
    const levels = out.filter((e) => e.fn === fn);
    assert.deepEqual(levels, [
      { fn, index: 0, flags: SIG, eax: 0, ebx: 1, ecx: 0x100, edx: 5 },
      { fn, index: 1, flags: SIG, eax: 3, ebx: 6, ecx: 0x201, edx: 5 },
      { fn, index: 2, flags: SIG, eax: 0, ebx: 0, ecx: 2, edx: 5 },
    ]);
  }
  // The rebuilt leaves stand where the host's did: the table stays sorted.
  const fns = out.map((e) => e.fn);
  assert.deepEqual(fns, [...fns].sort((a, b) => a - b));
  assert.equal(find(out, 0xd).eax, 0x2e7); // neighbours untouched
  // A power of two needs no extra APIC ID bit.
  assert.equal(find(filterCpuid(INTEL, 0, 4), 0xb, 1).eax, 2);
  assert.equal(find(filterCpuid(INTEL, 0, 1), 0xb, 1).eax, 0);
});

test('cache leaf 4: private L1 and L2, L3 shared by the package', () => {
  const out = filterCpuid(INTEL, 0, 6);
  const eax = [0, 1, 2, 3].map((i) => find(out, 4, i).eax);
  for (const v of eax) assert.equal(v >>> 26, 7); // 8 addressable core IDs
  assert.deepEqual(
    eax.map((v) => (v >>> 14) & 0xfff),
    [0, 0, 0, 7],
  );
  assert.deepEqual(
    eax.map((v) => v & 0x3fff),
    [0x121, 0x122, 0x143, 0x163],
  );
  assert.equal(find(out, 4, 3).ebx, 0x03c0003f);
  assert.deepEqual(find(out, 4, 4), leaf(4, 0, 0, 0, 0, 4, SIG));
  // Intel's reserved 0x80000008 ECX stays as it was.
  assert.equal(find(out, 0x8000_0008).ecx, 0);
});

test('KVM leaves: signature kept, host feature bits kept', () => {
  const out = filterCpuid(INTEL, 0, 2);
  assert.deepEqual(find(out, 0x4000_0000), leaf(0x4000_0000, 0x4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d));
  assert.deepEqual(find(out, 0x4000_0001), leaf(0x4000_0001, 0x0100_7efb, 0, 0, 0));
  const text = new TextDecoder().decode(new Uint32Array([KVM_SIGNATURE.ebx, KVM_SIGNATURE.ecx, KVM_SIGNATURE.edx]));
  assert.equal(text, 'KVMKVMKVM\0\0\0');
  // An old host's max leaf of 0 reads as 0x40000001.
  const old = filterCpuid([leaf(0x4000_0000, 0, 0, 0, 0)], 0, 1);
  assert.equal(find(old, 0x4000_0000).eax, 0x4000_0001);
});

test('AMD: topology in 0x80000008, 0x8000001d and 0x8000001e; SVM and SEV hidden', () => {
  const out = filterCpuid(AMD, 4, 6);
  const e1 = find(out, 0x8000_0001);
  assert.equal(bit(e1.ecx, 2), 0); // SVM
  assert.equal(bit(e1.ecx, 1), 1); // CmpLegacy: more than one core
  assert.equal(bit(e1.ecx, 22), 1); // TopologyExtensions kept
  assert.equal(find(out, 0x8000_0008).ecx, 0x1_0000 | (3 << 12) | 5);
  assert.equal(find(out, 0x8000_0008).eax, 0x3030);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => find(out, 0x8000_001d, i).eax),
    [0x4121 & 0x3fff, 0x4122 & 0x3fff, 0x4143 & 0x3fff, 0x163 | (7 << 14), 0],
  );
  assert.deepEqual(find(out, 0x8000_001e), leaf(0x8000_001e, 4, 4, 0, 0));
  assert.deepEqual(find(out, 0x8000_001f), leaf(0x8000_001f, 0, 0, 0, 0));
  assert.equal(find(out, 1).ebx >>> 24, 4);
  // KVM's leaves are added when the list lacks them.
  assert.deepEqual(find(out, 0x4000_0000), leaf(0x4000_0000, 0x4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d));
  assert.deepEqual(find(out, 0x4000_0001), leaf(0x4000_0001, 0, 0, 0, 0));

  const single = filterCpuid(AMD, 0, 1);
  assert.equal(bit(find(single, 0x8000_0001).ecx, 1), 0);
  assert.equal(find(single, 0x8000_0008).ecx, 0x1_0000);
});

test('the supported list is not modified, and bad vCPU numbers are refused', () => {
  const before = JSON.stringify(INTEL);
  filterCpuid(INTEL, 1, 2);
  filterCpuid(AMD, 1, 2);
  assert.equal(JSON.stringify(INTEL), before);
  assert.throws(() => filterCpuid(INTEL, 0, 0), RangeError);
  assert.throws(() => filterCpuid(INTEL, 2, 2), RangeError);
  assert.throws(() => filterCpuid(INTEL, -1, 2), RangeError);
  assert.throws(() => filterCpuid(INTEL, 0, 256), RangeError);
  assert.equal(find(filterCpuid(INTEL, 254, 255), 1).ebx >>> 24, 254);
  assert.equal((find(filterCpuid(INTEL, 0, 255), 1).ebx >>> 16) & 0xff, 255);
});
