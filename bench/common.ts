/**
 * Shared helpers for the benchmarks: run a command, optionally drive its console,
 * and measure wall time and peak RSS (VmHWM sampled from /proc while it runs).
 * Benchmarks always run Vireo and its peer in the same invocation and print the ratio.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (bench files run from dist/bench). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const VIREO = join(ROOT, 'bin', 'vireo.js');

export interface RunResult {
  seconds: number;
  peakRssMiB: number;
  status: number | null;
  output: string;
  stderr: string;
}

/** A console script step: wait for `expect` in the output, then type `send`. */
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
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let output = '';
    let stderr = '';
    let step = 0;
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, peakRss(child.pid!)); }, 20);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} timed out after ${timeoutS}s; output so far:\n${output.slice(-2000)}`));
    }, timeoutS * 1000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('latin1');
      while (step < steps.length && steps[step]!.expect.test(output)) {
        child.stdin.write(steps[step]!.send);
        step++;
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (status) => {
      const seconds = (performance.now() - start) / 1000;
      clearInterval(sampler);
      clearTimeout(timer);
      resolve({ seconds, peakRssMiB: peak, status, output, stderr });
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
