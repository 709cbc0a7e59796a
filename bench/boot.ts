/**
 * bench/boot: boots the bundled guest (OpenSBI + Linux + busybox initramfs) to its
 * shell prompt and powers it off, once with Vireo and once with qemu-system-riscv64
 * -M virt on the very same firmware, kernel and initramfs, and prints the times to the
 * shell prompt (the measure; busybox's poweroff then sleeps about 2 s in either VMM),
 * their ratio, peak RSS and guest MIPS, and the time to OpenSBI's banner (start-up: the
 * process, loading the images, the firmware's first steps). Vireo decompresses the gzip
 * initramfs on the host, QEMU leaves it to the guest kernel: QEMU is also timed with the
 * initramfs decompressed beforehand, and that ratio printed too. Usage: npm run bench:boot [-- runs] [--jit=on|off|both]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImage, BUNDLED_IMAGES } from '../src/hw/riscv/boot.js';
import { runDriven, have, fmt, tempDir, jitModes, measureJitModes, type RunResult } from './common.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => !a.startsWith('--')) ?? 3);
/** --jit=on|off|both: run Vireo with -accel tcg,jit=on, off (the default), or both and print the speedup. */
const modes = jitModes(args);
const PROMPT = /~ # $/;
/** The firmware's banner (only marked), then the prompt. */
const steps = [{ expect: /OpenSBI v/, send: '' }, { expect: PROMPT, send: 'poweroff\n' }];

const dir = tempDir();
const fw = join(dir, 'fw_dynamic.bin');
const kernel = join(dir, 'Image');
writeFileSync(fw, readImage(join(BUNDLED_IMAGES, 'fw_dynamic.bin.gz')));
writeFileSync(kernel, readImage(join(BUNDLED_IMAGES, 'Image.gz')));
const initrd = join(BUNDLED_IMAGES, 'initramfs.cpio.gz');
const initrdRaw = join(dir, 'initramfs.cpio');
writeFileSync(initrdRaw, readImage(initrd));
const common = ['-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-bios', fw, '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0'];

function best(results: RunResult[]): RunResult {
  return results.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

async function measure(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runDriven(cmd, args, steps, 120, env);
    if (r.status !== 0) throw new Error(`${name} exited with ${r.status}:\n${r.output.slice(-2000)}\n${r.stderr}`);
    results.push({ ...r, seconds: r.marks[1]! });
  }
  return best(results);
}

const vireo = await measureJitModes(modes, common, measure, (r, n) =>
  `${fmt(r.seconds)} s to the shell (${fmt(r.marks[0]!, 3)} s to the firmware banner), peak RSS ${fmt(r.peakRssMiB, 0)} MiB, ${fmt(n / 1e6, 0)} M instructions, ${fmt(n / r.seconds / 1e6, 0)} MIPS (best of ${runs})`);
if (!have('qemu-system-riscv64')) {
  console.log('qemu-system-riscv64 not installed (apt-get install qemu-system-misc): no ratio');
} else {
  const qemu = await measure('qemu', 'qemu-system-riscv64', [...common, '-accel', 'tcg,thread=single']);
  console.log(`qemu:  ${fmt(qemu.seconds)} s to the shell (${fmt(qemu.marks[0]!, 3)} s to the firmware banner), peak RSS ${fmt(qemu.peakRssMiB, 0)} MiB (best of ${runs})`);
  console.log(`ratio vireo/qemu (jit=${modes[modes.length - 1]}): ${fmt(vireo.seconds / qemu.seconds)}x time, ${fmt(vireo.peakRssMiB / qemu.peakRssMiB)}x peak RSS`);
  const raw = common.map((a) => (a === initrd ? initrdRaw : a));
  const qemuRaw = await measure('qemu', 'qemu-system-riscv64', [...raw, '-accel', 'tcg,thread=single']);
  console.log(`qemu, initramfs decompressed beforehand: ${fmt(qemuRaw.seconds)} s to the shell (best of ${runs}); ratio vireo/qemu ${fmt(vireo.seconds / qemuRaw.seconds)}x`);
}
