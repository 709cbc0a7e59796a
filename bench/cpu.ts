/**
 * bench/cpu: a CPU-bound bare-metal guest under Vireo and qemu-system-riscv64 -M virt
 * -bios none, in the same run; prints both times, the ratio and guest MIPS. The program:
 * bench/guest/cpu.c (fill and checksum 32 MiB: one hot loop; the default) or, with
 * --program=calls, bench/guest/calls.c (small functions on separate pages called in a loop).
 * Usage: npm run bench:cpu [-- runs] [--jit=on|off|both] [--program=cpu|calls]
 */
import { join } from 'node:path';
import { runDriven, have, instret, fmt, ROOT, jitModes, measureJitModes, type RunResult } from './common.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => !a.startsWith('--')) ?? 3);
/** --jit=on|off|both: run Vireo with -accel tcg,jit=on, off (the default), or both and print the speedup. */
const modes = jitModes(args);
const program = args.find((a) => a.startsWith('--program='))?.slice('--program='.length) ?? 'cpu';
if (program !== 'cpu' && program !== 'calls') throw new Error('--program=cpu|calls');
const elf = join(ROOT, 'bench', 'guest', `${program}.elf`);
const common = ['-M', 'virt', '-m', '256M', '-nographic', '-bios', 'none', '-kernel', elf];

async function measure(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  let best: RunResult | null = null;
  for (let i = 0; i < runs; i++) {
    const r = await runDriven(cmd, args, [], 300, env);
    if (r.status !== 0 || !/checksum [0-9a-f]{16}/.test(r.output)) throw new Error(`${name} failed (${r.status}): ${r.output}${r.stderr}`);
    if (!best || r.seconds < best.seconds) best = r;
  }
  return best!;
}

const vireo = await measureJitModes(modes, common, measure, (r, n) =>
  `${fmt(r.seconds)} s, ${fmt(n / r.seconds / 1e6, 0)} MIPS (${fmt(n / 1e6, 0)} M instructions, best of ${runs})`);
const n = instret(vireo.stderr);
if (!have('qemu-system-riscv64')) {
  console.log('qemu-system-riscv64 not installed (apt-get install qemu-system-misc): no ratio');
} else {
  const qemu = await measure('qemu', 'qemu-system-riscv64', [...common, '-accel', 'tcg,thread=single']);
  console.log(`qemu:  ${fmt(qemu.seconds)} s, ${fmt(n / qemu.seconds / 1e6, 0)} MIPS (same program, same instruction count)`);
  console.log(`ratio vireo/qemu (jit=${modes[modes.length - 1]}): ${fmt(vireo.seconds / qemu.seconds)}x time`);
}
