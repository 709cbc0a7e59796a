/**
 * Runs the bare-metal ISA test programs (tests/isa/bin/*.elf, built from tests/isa/*.S) on
 * Vireo and, when it is installed, on the reference qemu-system-riscv64.
 *
 * Each program reports through HTIF tohost and QEMU's test finisher (see tests/isa/README.md):
 * exit status 0 is a pass, any other status is the number of the failing check.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/tests/isa/isa.test.js). */
const root = fileURLToPath(new URL('../../../', import.meta.url));
const isaDir = join(root, 'tests', 'isa');
const binDir = join(isaDir, 'bin');
const QEMU = 'qemu-system-riscv64';

const programs = existsSync(binDir)
  ? readdirSync(binDir)
      .filter((f) => f.endsWith('.elf'))
      .map((f) => f.slice(0, -'.elf'.length))
      .sort()
  : [];

/** Why QEMU cannot be used, or null when it can. */
function qemuMissing(): string | null {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? `${QEMU} is not installed` : null;
}

/** The source line that starts check `n` of `program`, for failure messages. */
function checkSource(program: string, n: number): string {
  const srcPath = join(isaDir, `${program}.S`);
  if (!existsSync(srcPath)) return `tests/isa/${program}.S`;
  const lines = readFileSync(srcPath, 'utf8').split('\n');
  // A check number is the first argument of a check macro, or the second one of `amo`.
  const re = new RegExp(`^\\s*(?:\\w*check\\w*|mis_\\w+)\\s+${n}\\b|^\\s*amo\\s+\\d+,\\s*${n}\\b`);
  const i = lines.findIndex((l) => re.test(l));
  return i < 0 ? `tests/isa/${program}.S` : `tests/isa/${program}.S:${i + 1}: ${lines[i].trim()}`;
}

/** Runs one emulator command on one program and asserts that every check passed. */
function runProgram(program: string, cmd: string, args: string[], timeoutMs: number): void {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().slice(-2000);
  const shown = output ? `\n--- output ---\n${output}` : '';
  if (r.error) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `timed out after ${timeoutMs / 1000} s` : r.error.message;
    assert.fail(`${program}: ${why}${shown}`);
  }
  if (r.status === 0) return;
  if (r.status === null) assert.fail(`${program}: killed by ${r.signal}${shown}`);
  const what =
    r.status === 255
      ? 'exit status 255: failed before its first check'
      : `exit status ${r.status}: check ${r.status} failed (${checkSource(program, r.status)})`;
  assert.fail(`${program}: ${what}${shown}`);
}

test('the ISA test programs are built', () => {
  assert.ok(programs.length > 0, `no ${binDir}/*.elf: run scripts/build-isa-tests.sh`);
  for (const p of programs) assert.ok(existsSync(join(isaDir, `${p}.S`)), `${p}.elf has no source ${p}.S`);
});

const qemuSkip = qemuMissing();
/** With VIREO_JIT=1 (tests/jit.test.ts) Vireo runs with -accel tcg,jit=on and the QEMU reference runs are not repeated. */
const jit = process.env.VIREO_JIT === '1';
const tag = jit ? ' (jit=on)' : '';

for (const program of programs) {
  const elf = join('tests', 'isa', 'bin', `${program}.elf`);
  test(`isa: ${program}${tag}`, async (t) => {
    await t.test('vireo', () => {
      runProgram(program, process.execPath, ['bin/vireo.js', '-M', 'virt', '-bios', 'none', '-kernel', elf, '-nographic'], 60_000);
    });
    await t.test(`${QEMU} (reference)`, { skip: qemuSkip ?? (jit ? 'run by isa.test.js' : false) }, () => {
      runProgram(program, QEMU, ['-M', 'virt', '-m', '256M', '-bios', 'none', '-kernel', elf, '-nographic'], 60_000);
    });
  });
}
