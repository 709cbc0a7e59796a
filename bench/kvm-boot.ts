/**
 * bench/kvm-boot: boots the bundled x86_64 guest (Linux + busybox initramfs) under KVM
 * to its init (the `Welcome to Vireo` banner of /etc/init.d/rcS) and to its shell
 * prompt, then powers it off; once with Vireo's microvm and once with QEMU's, on the
 * same kernel, initramfs and command line. Prints the times from process start, their
 * ratios and each one's peak RSS. Usage: npm run bench:kvm-boot [-- runs]
 */
import { kvmPeers, bestDriven, fmt, X86_PROMPT, type RunResult } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const steps = [
  { expect: /Welcome to Vireo/, send: '' },
  { expect: X86_PROMPT, send: 'poweroff\n' },
];

const { peers, skipped } = kvmPeers('256M');
for (const s of skipped) console.log(`SKIPPED: ${s}`);
console.log(`kvm-boot: bundled x86_64 guest, -M microvm -accel kvm -m 256M, best of ${runs} (by time to prompt)`);
const results: RunResult[] = [];
for (const p of peers) {
  const r = await bestDriven(p, steps, runs, (x) => x.marks[1]!);
  results.push(r);
  console.log(`${p.name.padEnd(6)} init ${fmt(r.marks[0]!)} s, prompt ${fmt(r.marks[1]!)} s, powered off ${fmt(r.seconds)} s, peak RSS ${fmt(r.peakRssMiB, 0)} MiB`);
}
const [v, q] = results;
if (v && q) {
  console.log(`ratio vireo/qemu: ${fmt(v.marks[0]! / q.marks[0]!)}x to init, ${fmt(v.marks[1]! / q.marks[1]!)}x to prompt, `
    + `${fmt(v.seconds / q.seconds)}x to power-off, ${fmt(v.peakRssMiB / q.peakRssMiB)}x peak RSS`);
}
