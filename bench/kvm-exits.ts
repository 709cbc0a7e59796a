/**
 * bench/kvm-exits: port I/O exits per second, i.e. the cost of one VM exit served by the
 * VMM (for Vireo: KVM_RUN through koffi in the vCPU worker thread, the exit channel to the
 * main thread and back; for QEMU: its vCPU thread and the BQL), Vireo's microvm vs QEMU's.
 *
 * The booted x86_64 guest reads /dev/port from port 0x1000 to 0xffff with dd, one `inb`
 * (one exit) per byte. Those ports are unassigned on both boards, so each read exits to
 * the VMM, which answers 0xff; KVM's in-kernel devices, which never leave the kernel (PIC
 * 0x20/0xa0/0x4d0, PIT 0x40-0x43 and 0x61), and both boards' devices (serial 0x3f8,
 * i8042 0x60/0x64, RTC 0x70, POST 0x80, fw_cfg 0x510, Vireo's ACPI GED 0x600) are below.
 * Timed on the host between two console markers; the few fork/execs of dd are noise.
 * Usage: npm run bench:kvm-exits [-- runs [passes]]   (61440 exits per pass)
 */
import { kvmPeers, bestDriven, fmt, X86_PROMPT, type RunResult } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const passes = Number(process.argv[3] ?? 8);
const PER_PASS = 0x10000 - 0x1000;
const exits = passes * PER_PASS;

const read = 'dd if=/dev/port bs=4096 skip=1 2>/dev/null';
// The markers are computed by the shell so that the echo of the typed line does not match them.
// After the end marker (untimed), one pass through wc checks that dd really read every port.
const steps = [
  { expect: X86_PROMPT, send: `echo BENCH-BEGIN-$((6*7)); i=0; while [ $i -lt ${passes} ]; do ${read} >/dev/null; i=$((i+1)); done; `
    + `echo BENCH-END-$((6*7)); echo BENCH-READ-$(${read} | wc -c); poweroff\n` },
  { expect: /BENCH-BEGIN-42/, send: '' },
  { expect: /BENCH-END-42/, send: '' },
];
const seconds = (r: RunResult) => r.marks[2]! - r.marks[1]!;
const readAll = (r: RunResult) => r.output.includes(`BENCH-READ-${PER_PASS}`);

const { peers, skipped } = kvmPeers('256M');
for (const s of skipped) console.log(`SKIPPED: ${s}`);
console.log(`kvm-exits: ${passes} x ${PER_PASS} port reads (0x1000-0xffff via /dev/port) in the bundled x86_64 guest, best of ${runs}`);
const results: RunResult[] = [];
for (const p of peers) {
  const r = await bestDriven(p, steps, runs, seconds, readAll);
  results.push(r);
  console.log(`${p.name.padEnd(6)} ${fmt(seconds(r), 3)} s, ${fmt(exits / seconds(r) / 1000, 1)} k exits/s, ${fmt(seconds(r) / exits * 1e6)} us/exit, peak RSS ${fmt(r.peakRssMiB, 0)} MiB`);
}
const [v, q] = results;
if (v && q) console.log(`ratio vireo/qemu: ${fmt(seconds(v) / seconds(q))}x time per exit, ${fmt(v.peakRssMiB / q.peakRssMiB)}x peak RSS`);
