/**
 * Shared helpers for the benchmarks: run a command, optionally drive its console,
 * and measure wall time and peak RSS (VmHWM sampled from /proc while it runs).
 * Benchmarks always run Vireo and its peer in the same invocation and print the ratio.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readImage, BUNDLED_IMAGES } from '../src/hw/riscv/boot.js';

/** The repository root (bench files run from dist/bench). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The `vireo` command, run as users run it: its first line sets Node's flags and environment. */
export const VIREO = join(ROOT, 'bin', 'vireo.js');

/** Children of runDriven still running and temporary directories: killed and removed when the bench exits. */
const live = new Set<ChildProcess>();
const temps: string[] = [];
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });
  // Run the 'exit' handler on Ctrl-C and kill too.
  for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) process.on(sig, () => process.exit(128 + n));
}

/** A new temporary directory, removed when the process exits. */
export function tempDir(): string {
  hookExit();
  const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-'));
  temps.push(dir);
  return dir;
}

export interface RunResult {
  seconds: number;
  peakRssMiB: number;
  status: number | null;
  output: string;
  stderr: string;
  /** Seconds from the start at which each step's `expect` was seen, in order. */
  marks: number[];
}

/** A console script step: wait for `expect` in the output, then type `send` ('' only marks the time). */
export interface Step {
  expect: RegExp;
  send: string;
}

function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs `cmd args`, answering each step in turn; fails after `timeoutS` seconds. */
export function runDriven(cmd: string, args: string[], steps: Step[], timeoutS: number, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    hookExit();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    live.add(child);
    let output = '';
    let stderr = '';
    let step = 0;
    const marks: number[] = [];
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, peakRss(child.pid!)); }, 20);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out after ${timeoutS}s; output so far:\n${output.slice(-2000)}`));
    }, timeoutS * 1000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('latin1');
      while (step < steps.length && steps[step]!.expect.test(output)) {
        marks.push((performance.now() - start) / 1000);
        if (steps[step]!.send) child.stdin.write(steps[step]!.send);
        step++;
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (status) => {
      live.delete(child);
      const seconds = (performance.now() - start) / 1000;
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ seconds, peakRssMiB: peak, status, output, stderr, marks });
    });
  });
}

/** True if `cmd` can be run. */
export function have(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Guest instructions retired, as reported by Vireo with VIREO_STATS=1. */
export function instret(stderr: string): number {
  const m = /vireo-stats: instret=(\d+)/.exec(stderr);
  return m ? Number(m[1]) : NaN;
}

export function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

// ---- The bundled x86_64 guest under KVM, for bench/kvm-*.ts ----


/** `--jit=on|off|both` among `args` (default off): the JIT modes to run Vireo in. */
export function jitModes(args: string[]): string[] {
  const jit = args.find((a) => a.startsWith('--jit='))?.slice('--jit='.length) ?? 'off';
  if (!['on', 'off', 'both'].includes(jit)) throw new Error('--jit=on|off|both');
  return jit === 'both' ? ['off', 'on'] : [jit];
}

/**
 * Measures Vireo (`args` after bin/vireo.js) once per JIT mode with `measure`, printing
 * `describe` of each result (given its guest instruction count) and the JIT statistics,
 * then the speedup when both modes ran. Returns the result of the last mode.
 */
export async function measureJitModes(modes: string[], args: string[],
  measure: (name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<RunResult>,
  describe: (r: RunResult, instructions: number) => string): Promise<RunResult> {
  let last: RunResult | undefined;
  const times: number[] = [];
  for (const jit of modes) {
    last = await measure('vireo', VIREO, [...args, '-accel', `tcg,jit=${jit}`], { ...process.env, VIREO_STATS: '1' });
    times.push(last.seconds);
    console.log(`vireo jit=${jit}: ${describe(last, instret(last.stderr))}`);
    const stats = /vireo-stats: jit .*/.exec(last.stderr);
    if (stats) console.log(`  ${stats[0]}`);
  }
  if (times.length === 2) console.log(`ratio jit=on/jit=off: ${fmt(times[1]! / times[0]!)}x time (${fmt(times[0]! / times[1]!)}x faster)`);
  return last!;
}

/** Its shell prompt; Debian's busybox then asks for the cursor position (ESC [6n). */
export const X86_PROMPT = /~ # (\x1b\[6n)?$/;
/** Its kernel command line: the one Vireo's microvm uses for it (src/hw/i386/microvm.ts). */
export const X86_CMDLINE = 'console=ttyS0 panic=-1 io_delay=none';
/** Per-run timeout in seconds (BENCH_TIMEOUT; raise it on slow or nested KVM). */
export const KVM_TIMEOUT_S = Number(process.env.BENCH_TIMEOUT ?? 300);

/** A VMM to benchmark: how to start it. */
export interface Peer {
  name: string;
  cmd: string;
  args: string[];
}

/**
 * Vireo's microvm and QEMU's `-M microvm`, both on KVM with one vCPU, on the same bzImage
 * (decompressed to a temporary file, as QEMU needs), initramfs, command line and RAM.
 * `skipped` says, for the top of the output, what cannot run here.
 */
export function kvmPeers(mem = '256M'): { peers: Peer[]; skipped: string[] } {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { peers: [], skipped: ['/dev/kvm is missing or not accessible: skipped Vireo and QEMU, nothing measured'] };
  }
  const images = join(ROOT, 'images', 'x86_64');
  const dir = tempDir();
  const kernel = join(dir, 'bzImage');
  writeFileSync(kernel, gunzipSync(readFileSync(join(images, 'bzImage.gz'))));
  const guest = ['-m', mem, '-smp', '1', '-nographic', '-no-reboot', '-kernel', kernel,
    '-initrd', join(images, 'initramfs.cpio.gz'), '-append', X86_CMDLINE];
  const peers: Peer[] = [{ name: 'vireo', cmd: VIREO, args: ['-M', 'microvm', '-accel', 'kvm', ...guest] }];
  const skipped: string[] = [];
  // QEMU microvm's defaults (qboot firmware for the bzImage, ACPI, in-kernel PIC/PIT, ISA serial)
  // boot this kernel as they are. -cpu host: Vireo also gives the guest the host's CPUID as KVM
  // supports it, where QEMU's default CPU model would hide most features.
  if (have('qemu-system-x86_64')) peers.push({ name: 'qemu', cmd: 'qemu-system-x86_64', args: ['-M', 'microvm', '-accel', 'kvm', '-cpu', 'host', ...guest] });
  else skipped.push('qemu-system-x86_64 not installed (apt-get install qemu-system-x86): skipped QEMU and the ratios');
  return { peers, skipped };
}

/**
 * Runs `peer` through `steps` `runs` times and returns the run with the smallest `key`.
 * A run fails if it exits non-zero, misses a step or `check` returns false.
 */
export async function bestDriven(peer: Peer, steps: Step[], runs: number, key: (r: RunResult) => number,
  check: (r: RunResult) => boolean = () => true): Promise<RunResult> {
  let best: RunResult | null = null;
  for (let i = 0; i < runs; i++) {
    const r = await runDriven(peer.cmd, peer.args, steps, KVM_TIMEOUT_S);
    if (r.status !== 0 || r.marks.length < steps.length || !check(r)) {
      throw new Error(`${peer.name} failed (exit ${r.status}, ${r.marks.length}/${steps.length} steps):\n${r.output.slice(-2000)}\n${r.stderr}`);
    }
    if (!best || key(r) < key(best)) best = r;
  }
  return best!;
}

// ---- The bundled RISC-V guest, for bench/blk.ts and bench/net.ts ----

/** Its shell prompt. */
export const RISCV_PROMPT = /~ # $/;

/**
 * Vireo and qemu-system-riscv64 (-accel tcg,thread=single, as in bench/boot.ts) on the same
 * firmware and kernel (decompressed into a temporary directory), initramfs, command line and
 * RAM; append the devices to each one's args. Throws if QEMU is missing: these benches only
 * mean something as a ratio.
 */
export function riscvPeers(mem = '512M'): Peer[] {
  if (!have('qemu-system-riscv64')) throw new Error('qemu-system-riscv64 not installed (apt-get install qemu-system-misc): no ratio to measure');
  const dir = tempDir();
  const fw = join(dir, 'fw_dynamic.bin');
  const kernel = join(dir, 'Image');
  writeFileSync(fw, readImage(join(BUNDLED_IMAGES, 'fw_dynamic.bin.gz')));
  writeFileSync(kernel, readImage(join(BUNDLED_IMAGES, 'Image.gz')));
  const guest = ['-M', 'virt', '-m', mem, '-smp', '1', '-nographic', '-bios', fw, '-kernel', kernel,
    '-initrd', join(BUNDLED_IMAGES, 'initramfs.cpio.gz'), '-append', 'console=ttyS0'];
  return [
    { name: 'vireo', cmd: VIREO, args: guest },
    { name: 'qemu', cmd: 'qemu-system-riscv64', args: [...guest, '-accel', 'tcg,thread=single'] },
  ];
}

/**
 * Boots `peer` with `extra` args, types `cmds` one after the other at the RISC-V shell (each
 * once the previous one has finished), then powers off. Each command is followed by a marker
 * the shell computes, so the echo of the typed line never matches it. Fails if the VMM exits
 * non-zero or a command does not finish within `timeoutS` seconds of boot.
 */
export async function runGuestCommands(peer: Peer, extra: string[], cmds: string[], timeoutS: number): Promise<RunResult> {
  const mark = (i: number) => `@@${1000 + i}@@`;
  const steps: Step[] = cmds.map((c, i) => ({ expect: i === 0 ? RISCV_PROMPT : new RegExp(mark(i - 1)), send: `${c}; echo @@$((${1000 + i}))@@\n` }));
  steps.push({ expect: new RegExp(mark(cmds.length - 1)), send: 'poweroff\n' });
  const failed = (why: string, done: number, log: string) => new Error(`${peer.name} ${why} after ${done}/${cmds.length} guest commands` +
    (done < cmds.length ? ` (at: ${cmds[done]!.slice(0, 70)}...)` : '') + (process.env.BENCH_DEBUG ? `\n${log}` : '; BENCH_DEBUG=1 shows the console'));
  let r: RunResult;
  try {
    r = await runDriven(peer.cmd, [...peer.args, ...extra], steps, timeoutS);
  } catch (e) {
    // A timeout: its message ends with the console's tail, where the last marker tells how far the guest got.
    const log = e instanceof Error ? e.message : String(e);
    const done = Math.max(0, ...[...log.matchAll(/@@(\d+)@@/g)].map((m) => Number(m[1]) - 1000 + 1));
    throw failed(`timed out (${timeoutS}s, BENCH_TIMEOUT)`, done, log);
  }
  if (r.status !== 0 || r.marks.length < steps.length) throw failed(r.status === null ? 'was killed by a signal' : `exited with status ${r.status}`, Math.max(0, r.marks.length - 1), `${r.output.slice(-3000)}\n${r.stderr}`);
  return r;
}

/** Runs a bench's main; on failure prints one line (`name: FAILED: reason`) and exits 1. */
export function benchMain(name: string, body: () => Promise<void>): void {
  body().catch((e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    const [first, ...rest] = msg.split('\n');
    console.error(`${name}: FAILED: ${first}`);
    if (rest.length) console.error(rest.join('\n'));
    process.exit(1);
  });
}
