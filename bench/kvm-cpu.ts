/**
 * bench/kvm-cpu: a CPU-bound workload inside the booted x86_64 guest under KVM (busybox
 * md5sum of N MiB of zeros through a pipe: no device exits), timed on the host between two
 * console markers, with Vireo's microvm and with QEMU's on the same guest. Guest code runs
 * on the CPU either way, so on real KVM the ratio should be 1.00 +- 0.03.
 * Usage: npm run bench:kvm-cpu [-- runs [MiB]]
 */
import { createHash } from 'node:crypto';
import { kvmPeers, bestDriven, fmt, X86_PROMPT, type RunResult } from './common.js';

const runs = Number(process.argv[2] ?? 3);
const mib = Number(process.argv[3] ?? 1024);

// The markers are computed by the shell so that the echo of the typed line does not match them.
const work = `dd if=/dev/zero bs=1M count=${mib} 2>/dev/null | md5sum`;
const steps = [
  { expect: X86_PROMPT, send: `echo BENCH-BEGIN-$((6*7)); ${work}; echo BENCH-END-$((6*7)); poweroff\n` },
  { expect: /BENCH-BEGIN-42/, send: '' },
  { expect: /BENCH-END-42/, send: '' },
];
const seconds = (r: RunResult) => r.marks[2]! - r.marks[1]!;

const md5 = createHash('md5');
const zeros = Buffer.alloc(1 << 20);
for (let i = 0; i < mib; i++) md5.update(zeros);
const expected = md5.digest('hex');

const { peers, skipped } = kvmPeers('256M');
for (const s of skipped) console.log(`SKIPPED: ${s}`);
console.log(`kvm-cpu: '${work}' in the bundled x86_64 guest, -M microvm -accel kvm -m 256M, best of ${runs}`);
const results: RunResult[] = [];
for (const p of peers) {
  const r = await bestDriven(p, steps, runs, seconds, (x) => x.output.includes(expected));
  results.push(r);
  console.log(`${p.name.padEnd(6)} ${fmt(seconds(r), 3)} s, ${fmt(mib / seconds(r), 0)} MiB/s, peak RSS ${fmt(r.peakRssMiB, 0)} MiB`);
}
const [v, q] = results;
if (v && q) console.log(`ratio vireo/qemu: ${fmt(seconds(v) / seconds(q), 3)}x time, ${fmt(v.peakRssMiB / q.peakRssMiB)}x peak RSS`);
