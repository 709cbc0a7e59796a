/**
 * Multi-hart bare-metal programs (tests/isa/smp/*.S, built by tests/isa/smp/build.sh): atomics
 * (amoadd, LR/SC, an amoswap spinlock, store buffering with fences) checked for exact totals,
 * and cross-modifying code (hart 0 writes code, hart 1 runs it after an IPI and fence.i;
 * in fencei-jit, code hart 1 runs hot). Each runs under `-accel tcg,thread=multi` (one host
 * thread per hart, the case that needs atomicity across threads), the same with the JIT at
 * a hotness threshold of 2 (so that hart threads translate, and invalidate each other's
 * translations), under thread=single, and on qemu-system-riscv64 when installed.
 * Same result convention as isa.test.ts: exit status 0 is a pass, N is check N failed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const QEMU = 'qemu-system-riscv64';
const qemu = spawnSync(QEMU, ['--version']);
const qemuSkip = qemu.error || qemu.status !== 0 ? `${QEMU} is not installed` : false;

/** Program and hart count. */
const RUNS: [string, number][] = [['atomics-2', 2], ['atomics-4', 4], ['fencei', 2], ['fencei', 4], ['fencei-jit', 2]];

/** Runs the program; returns its stderr. */
function run(cmd: string, args: string[], what: string, env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 240_000, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().slice(-2000);
  assert.ok(!r.error, `${what}: ${r.error?.message} ${out}`);
  assert.equal(r.status, 0, `${what}: exit status ${r.status} (the failed check's number) ${out}`);
  return r.stderr ?? '';
}

/** A number from the VIREO_STATS line of the JIT. */
function jitStat(stderr: string, name: string): number {
  const m = new RegExp(`vireo-stats: jit .*\\b${name}=(\\d+)`).exec(stderr);
  assert.ok(m, `no JIT statistics in ${stderr.slice(-1000)}`);
  return Number(m[1]);
}

for (const [program, harts] of RUNS) {
  const elf = join('tests', 'isa', 'smp', 'bin', `${program}.elf`);
  test(`isa smp: ${program} -smp ${harts}`, async (t) => {
    assert.ok(existsSync(join(root, elf)), `${elf} missing: run tests/isa/smp/build.sh`);
    const args = ['-M', 'virt', '-smp', String(harts), '-bios', 'none', '-kernel', elf, '-nographic'];
    await t.test('vireo thread=multi', () => {
      run(process.execPath, ['bin/vireo.js', ...args, '-accel', 'tcg,thread=multi'], `${program} multi`);
    });
    await t.test('vireo thread=multi jit=on', () => {
      const stderr = run(process.execPath, ['bin/vireo.js', ...args, '-accel', 'tcg,thread=multi,jit=on'], `${program} multi jit`,
        { VIREO_JIT_THRESHOLD: '2', VIREO_STATS: '1' });
      assert.ok(jitStat(stderr, 'region-calls') > 0, 'the harts ran translated code');
      // Hart 0's writes hit code that hart 1 translated (until the page is rewritten too often).
      if (program === 'fencei-jit') assert.ok(jitStat(stderr, 'invalidations') > 0, 'translated code was invalidated');
    });
    await t.test('vireo thread=single', () => {
      run(process.execPath, ['bin/vireo.js', ...args, '-accel', 'tcg,thread=single'], `${program} single`);
    });
    await t.test(`${QEMU} (reference)`, { skip: qemuSkip }, () => {
      // QEMU 7.2's MTTCG runs stale code in fencei-jit about every other time; its single thread does not.
      run(QEMU, [...args, '-m', '256M', ...(program === 'fencei-jit' ? ['-accel', 'tcg,thread=single'] : [])], `${program} qemu`);
    });
  });
}
