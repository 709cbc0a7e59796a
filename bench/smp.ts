/**
 * bench/smp: N busy processes (a busybox shell loop each) in the bundled RISC-V Linux at
 * -smp N, N = 1, 2, 4, under -accel tcg,thread=single and thread=multi, on Vireo and on
 * qemu-system-riscv64 with the same options (when installed). Prints the wall time of the
 * busy phase (boot excluded) with each emulator's speedup of thread=multi over
 * thread=single, then the boot times (to the shell prompt) with their ratio to -smp 1.
 * Usage: node dist/bench/smp.js [iterations] [smp list] [--jit=on|off|both], e.g.
 * `node dist/bench/smp.js 20000 1,2,4`; --jit=on runs Vireo with -accel tcg,jit=on (both:
 * with and without).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { have, fmt, tempDir, VIREO, RISCV_PROMPT, benchMain, jitModes } from './common.js';
import { readImage, BUNDLED_IMAGES as IMAGES } from '../src/hw/riscv/boot.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const iterations = Number(positional[0] ?? 20000);
const smps = (positional[1] ?? '1,2,4').split(',').map(Number);
const jit = jitModes(process.argv.slice(2));
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT ?? 600) * 1000;

/** Boots `cmd args`, runs `n` busy loops at once, returns the seconds the boot and the busy phase took. */
function busyRun(cmd: string, args: string[], n: number): Promise<{ boot: number; busy: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let phase = 0;
    let start = performance.now();
    let boot = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out in phase ${phase}: ${out.slice(-1000)}`));
    }, TIMEOUT_MS);
    const loop = `i=0; while [ $i -lt ${iterations} ]; do i=$((i+1)); done`;
    const job = Array.from({ length: n }, () => `(${loop}) &`).join(' ');
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (phase === 0 && RISCV_PROMPT.test(out)) {
        phase = 1;
        out = '';
        boot = (performance.now() - start) / 1000;
        start = performance.now();
        child.stdin.write(`${job} wait; echo @@$((6 * 7))@@\n`);
      } else if (phase === 1 && out.includes('@@42@@')) {
        phase = 2;
        const busy = (performance.now() - start) / 1000;
        child.stdin.write('poweroff\n');
        child.on('exit', (code) => {
          clearTimeout(timer);
          if (code === 0) resolve({ boot, busy });
          else reject(new Error(`${cmd} exited with ${code}`));
        });
      }
    });
  });
}

benchMain('smp', async () => {
  const dir = tempDir();
  const fw = join(dir, 'fw_dynamic.bin');
  const kernel = join(dir, 'Image');
  writeFileSync(fw, readImage(join(IMAGES, 'fw_dynamic.bin.gz')));
  writeFileSync(kernel, readImage(join(IMAGES, 'Image.gz')));
  const guest = (smp: number): string[] => ['-M', 'virt', '-m', '512M', '-smp', String(smp), '-nographic', '-bios', fw,
    '-kernel', kernel, '-initrd', join(IMAGES, 'initramfs.cpio.gz'), '-append', 'console=ttyS0'];
  const qemu = have('qemu-system-riscv64');
  // Pairs of columns (thread=single, thread=multi), each pair with its speedup.
  const runs: Array<[string, string, string]> = [];
  for (const mode of jit) {
    for (const thread of ['single', 'multi']) runs.push([`vireo ${thread}${mode === 'on' ? ' jit' : ''}`, VIREO, `${thread}${mode === 'on' ? ',jit=on' : ''}`]);
  }
  if (qemu) for (const thread of ['single', 'multi']) runs.push([`qemu ${thread}`, 'qemu-system-riscv64', thread]);
  const results = new Map<number, Array<{ boot: number; busy: number }>>();
  for (const smp of smps) {
    const row = [];
    for (const [, cmd, thread] of runs) {
      const args = [...guest(smp), '-accel', `tcg,thread=${thread}`];
      row.push(await busyRun(cmd, args, smp));
    }
    results.set(smp, row);
  }
  const line = (cells: string[]): void => console.log(cells.map((c) => c.padStart(18)).join(''));
  console.log(`${iterations} shell-loop iterations per busy process; N busy processes at -smp N; seconds of the busy phase`);
  const pairs = Array.from({ length: runs.length / 2 }, (_, k) => 2 * k);
  line(['smp', ...runs.map(([name]) => name), ...pairs.map((i) => `${runs[i]![0].replace(' single', '')} speedup`)]);
  for (const [smp, row] of results) {
    const up = (i: number): string => `${(row[i]!.busy / row[i + 1]!.busy).toFixed(2)}x`;
    line([String(smp), ...row.map((r) => fmt(r.busy)), ...pairs.map(up)]);
  }
  console.log('seconds from start to the shell prompt (ratio to -smp 1 of the same column)');
  line(['smp', ...runs.map(([name]) => name)]);
  const first = results.get(smps[0]!)!;
  for (const [smp, row] of results) {
    line([String(smp), ...row.map((r, i) => `${fmt(r.boot)} (${(r.boot / first[i]!.boot).toFixed(2)}x)`)]);
  }
  if (!qemu) console.log('qemu-system-riscv64 not installed: no reference columns');
});
