/**
 * The CPUID table a vCPU gets (for KVM_SET_CPUID2), derived from what the host and KVM
 * support (KVM_GET_SUPPORTED_CPUID).
 *
 * Leaf and bit meanings follow the Intel SDM vol. 2A (CPUID) and the AMD APM vol. 3
 * (appendix E); the paravirtual leaves follow Linux's Documentation/virt/kvm/x86/cpuid.rst,
 * and the adjustments KVM leaves to userspace follow Documentation/virt/kvm/api.rst
 * ("Known KVM API problems") and Documentation/virt/kvm/x86/errata.rst.
 *
 * The topology presented is one socket of `vcpuCount` cores with one thread each; the APIC ID
 * (and x2APIC ID) of a vCPU is its index, which is also KVM's default for vcpu_id.
 */

/** One CPUID entry, as in struct kvm_cpuid_entry2 (`fn` is its `function`). */
export type { CpuidEntry } from '../../accel/kvm/kvm-sys.js';
import type { CpuidEntry } from '../../accel/kvm/kvm-sys.js';

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry applies only to its own `index`. */
export const CPUID_FLAG_SIGNIFICANT_INDEX = 1;

/** The most vCPUs this topology describes: APIC IDs are 8 bits and 0xff means broadcast. */
export const MAX_VCPUS = 255;

/** "KVMKVMKVM\0\0\0" as EBX, ECX, EDX of leaf 0x40000000. */
export const KVM_SIGNATURE = Object.freeze({ ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x0000004d });
const KVM_CPUID_SIGNATURE = 0x4000_0000;
const KVM_CPUID_FEATURES = 0x4000_0001;

// Leaf 1.
const L1_ECX_VMX = 1 << 5;
const L1_ECX_TSC_DEADLINE = 1 << 24;
const L1_ECX_HYPERVISOR = 1 << 31;
const L1_EDX_HTT = 1 << 28;
// Leaf 7 subleaf 0.
const L7_EBX_SGX = 1 << 2;
const L7_EBX_FDP_EXCPTN_ONLY = 1 << 6;
const L7_EBX_ZERO_FCS_FDS = 1 << 13;
const L7_ECX_SGX_LC = 1 << 30;
// Leaf 0x80000001.
const E1_ECX_CMP_LEGACY = 1 << 1;
const E1_ECX_SVM = 1 << 2;

/** Level types of leaves 0xb and 0x1f (ECX[15:8]). */
const LEVEL_SMT = 1;
const LEVEL_CORE = 2;

const u32 = (v: number): number => v >>> 0;

/** Bits needed to number `n` items: ceil(log2(n)). */
function bitsFor(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

function vendorOf(entries: readonly CpuidEntry[]): string {
  const leaf0 = entries.find((e) => e.fn === 0);
  if (leaf0 === undefined) return '';
  const bytes = new Uint8Array(12);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, leaf0.ebx, true);
  v.setUint32(4, leaf0.edx, true);
  v.setUint32(8, leaf0.ecx, true);
  return new TextDecoder('latin1').decode(bytes);
}

/** The subleaves of leaf 0xb or 0x1f: SMT level, core level, then the invalid level that ends the list. */
function topologyLeaf(fn: number, vcpuIndex: number, vcpuCount: number): CpuidEntry[] {
  const level = (index: number, shift: number, count: number, type: number): CpuidEntry => ({
    fn,
    index,
    flags: CPUID_FLAG_SIGNIFICANT_INDEX,
    eax: shift,
    ebx: count,
    ecx: (type << 8) | index,
    edx: vcpuIndex,
  });
  return [level(0, 0, 1, LEVEL_SMT), level(1, bitsFor(vcpuCount), vcpuCount, LEVEL_CORE), level(2, 0, 0, 0)];
}

/**
 * Builds the CPUID table of vCPU `vcpuIndex` of `vcpuCount` from `supported` (the result of
 * KVM_GET_SUPPORTED_CPUID), without modifying it. Changes:
 * - leaf 1: initial APIC ID (EBX[31:24]) = vcpuIndex, addressable IDs (EBX[23:16]) and HTT for
 *   the package, the hypervisor bit, and TSC-deadline, which KVM's in-kernel LAPIC emulates but
 *   older kernels leave out of the supported list (the KVM layer must create the in-kernel
 *   irqchip, which X2APIC and PV_UNHALT need as well);
 * - VMX and SVM cleared: no nested virtualization (the VMM neither offers nor saves nested state);
 * - leaf 7: SGX and SGX_LC cleared (the VMM provides no enclave memory), and FDP_EXCPTN_ONLY and
 *   ZERO_FCS_FDS set, as KVM's errata.rst recommends;
 * - topology: leaves 0xb and 0x1f rebuilt (SMT level: 1 thread; core level: vcpuCount cores),
 *   the core and sharing counts of cache leaf 4 (Intel) and 0x8000001d (AMD) redone (L1 and L2
 *   per core, L3 and up shared by the package), and on AMD 0x80000008 ECX (core count, APIC ID
 *   size), 0x8000001e (extended APIC ID, core ID, node 0) and CmpLegacy;
 * - leaf 0x8000001f (SEV/SME) zeroed: a guest that sees SEV probes MSRs KVM only backs for
 *   confidential guests;
 * - KVM leaves: 0x40000000 gets the "KVMKVMKVM" signature and a max leaf of at least
 *   0x40000001; 0x40000001 keeps the feature bits the host reports (added, empty, if missing).
 * @throws RangeError when vcpuCount is not in 1..{@link MAX_VCPUS} or vcpuIndex not below it.
 */
export function filterCpuid(supported: readonly CpuidEntry[], vcpuIndex: number, vcpuCount: number): CpuidEntry[] {
  if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > MAX_VCPUS) throw new RangeError(`vcpuCount ${vcpuCount} is not in 1..${MAX_VCPUS}`);
  if (!Number.isInteger(vcpuIndex) || vcpuIndex < 0 || vcpuIndex >= vcpuCount) throw new RangeError(`vcpuIndex ${vcpuIndex} is not below vcpuCount ${vcpuCount}`);
  const vendor = vendorOf(supported);
  const amd = vendor === 'AuthenticAMD' || vendor === 'HygonGenuine';
  const coreBits = bitsFor(vcpuCount);
  // Number of APIC IDs the package spans: a power of two, as the "addressable IDs" fields count.
  const idSpan = 1 << coreBits;

  const out: CpuidEntry[] = [];
  const rebuilt = new Set<number>();
  for (const entry of supported) {
    const e = { ...entry };
    switch (e.fn) {
      case 1:
        e.ebx = u32((e.ebx & 0xffff) | (Math.min(idSpan, 0xff) << 16) | (vcpuIndex << 24));
        e.ecx = u32((e.ecx | L1_ECX_HYPERVISOR | L1_ECX_TSC_DEADLINE) & ~L1_ECX_VMX);
        e.edx = u32(vcpuCount > 1 ? e.edx | L1_EDX_HTT : e.edx & ~L1_EDX_HTT);
        break;
      case 4:
        // EAX[4:0] = 0 marks the end of the cache list.
        if ((e.eax & 0x1f) !== 0) {
          const level = (e.eax >>> 5) & 0x7;
          const sharing = level >= 3 ? idSpan - 1 : 0;
          e.eax = u32((e.eax & 0x3fff) | (sharing << 14) | ((idSpan - 1) << 26));
        }
        break;
      case 7:
        if (e.index === 0) {
          e.ebx = u32((e.ebx | L7_EBX_FDP_EXCPTN_ONLY | L7_EBX_ZERO_FCS_FDS) & ~L7_EBX_SGX);
          e.ecx = u32(e.ecx & ~L7_ECX_SGX_LC);
        }
        break;
      case 0xb:
      case 0x1f:
        // Replaced as a whole by the subleaves of our topology, where the first one stood.
        if (!rebuilt.has(e.fn)) out.push(...topologyLeaf(e.fn, vcpuIndex, vcpuCount));
        rebuilt.add(e.fn);
        continue;
      case KVM_CPUID_SIGNATURE:
        e.eax = Math.max(e.eax, KVM_CPUID_FEATURES);
        Object.assign(e, KVM_SIGNATURE);
        break;
      case KVM_CPUID_FEATURES:
        e.ebx = 0;
        e.ecx = 0;
        break;
      case 0x8000_0001:
        e.ecx = u32(e.ecx & ~E1_ECX_SVM);
        if (amd) e.ecx = u32(vcpuCount > 1 ? e.ecx | E1_ECX_CMP_LEGACY : e.ecx & ~E1_ECX_CMP_LEGACY);
        break;
      case 0x8000_0008:
        // ECX[7:0] = cores - 1, ECX[15:12] = APIC ID bits for the core; keep PerfTscSize (17:16).
        if (amd) e.ecx = u32((e.ecx & 0x3_0000) | (coreBits << 12) | (vcpuCount - 1));
        break;
      case 0x8000_001d:
        if (amd && (e.eax & 0x1f) !== 0) {
          const level = (e.eax >>> 5) & 0x7;
          e.eax = u32((e.eax & ~(0xfff << 14)) | ((level >= 3 ? idSpan - 1 : 0) << 14));
        }
        break;
      case 0x8000_001e:
        if (amd) {
          e.eax = vcpuIndex; // extended APIC ID
          e.ebx = vcpuIndex; // core ID; ThreadsPerCore - 1 = 0
          e.ecx = 0; // node 0, one node per package
          e.edx = 0;
        }
        break;
      case 0x8000_001f:
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
    }
    out.push(e);
  }

  if (!out.some((e) => e.fn === KVM_CPUID_SIGNATURE)) {
    out.push({ fn: KVM_CPUID_SIGNATURE, index: 0, flags: 0, eax: KVM_CPUID_FEATURES, ...KVM_SIGNATURE });
  }
  if (!out.some((e) => e.fn === KVM_CPUID_FEATURES)) {
    out.push({ fn: KVM_CPUID_FEATURES, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 });
  }
  return out;
}
