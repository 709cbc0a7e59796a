/**
 * The gdbstub with a real gdb-multiarch on the bundled Linux (images/riscv64/Image.gz, no
 * symbols), started with `-S -gdb` at -smp 2: a hardware breakpoint at start_kernel stops
 * there, every hart is a thread, kernel virtual memory reads through the MMU (the
 * `Linux version` banner), and gdb's kill ends Vireo.
 *
 * The addresses come from the image itself, so the test follows a rebuilt kernel: the
 * guest is booted once to read start_kernel from /proc/kallsyms (no KASLR), and the banner
 * (linux_banner is data, which this kernel's kallsyms leaves out) is found in the
 * decompressed Image, which Linux maps at 0xffffffff80000000 (KERNEL_LINK_ADDR).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GuestConsole, ROOT } from './guest-console.js';
import { freePort, gdbSkip, runGdb } from './gdb-helpers.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 60_000;
const KERNEL_LINK_ADDR = 0xffffffff80000000n;
const skip = gdbSkip();

/** start_kernel's address, from /proc/kallsyms in a booted guest. */
async function startKernelAddress(): Promise<bigint> {
  const g = new GuestConsole(['-nographic']);
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    const out = await g.run("grep ' start_kernel$' /proc/kallsyms", PROMPT);
    const m = /^([0-9a-f]{16}) T start_kernel/m.exec(out);
    assert.ok(m, `start_kernel in /proc/kallsyms:\n${out}`);
    g.send('poweroff\n');
    assert.equal(await g.exit(30_000), 0, g.tail());
    return BigInt(`0x${m[1]}`);
  } finally {
    g.kill();
  }
}

test('gdb-multiarch on Linux: hbreak at start_kernel, one thread per hart, kernel memory, kill', { skip, timeout: 150_000 }, async () => {
  const image = gunzipSync(readFileSync(join(ROOT, 'images', 'riscv64', 'Image.gz')));
  const bannerOffset = image.indexOf('Linux version 6.');
  assert.ok(bannerOffset > 0, 'the banner is in the Image');
  const banner = KERNEL_LINK_ADDR + BigInt(bannerOffset);
  const startKernel = await startKernelAddress();
  assert.ok(startKernel > KERNEL_LINK_ADDR && startKernel < KERNEL_LINK_ADDR + BigInt(image.length), startKernel.toString(16));

  const port = await freePort();
  const v = new GuestConsole(['-nographic', '-smp', '2', '-S', '-gdb', `tcp::${port}`]);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const hex = (a: bigint) => `0x${a.toString(16)}`;
    const out = await runGdb(port, [
      'info threads',
      `hbreak *${hex(startKernel)}`,
      'continue',
      'printf "PC=%lx\\n", $pc',
      'info threads',
      `x/s ${hex(banner)}`,
      'info registers priv',
      'kill',
    ], null, 100_000);
    const has = (re: RegExp) => assert.match(out, re, out);
    assert.equal(v.output.includes('Linux version'), false, 'nothing ran before gdb said continue');
    has(/Hardware assisted breakpoint 1 at 0xffffffff[0-9a-f]{8}/);
    has(new RegExp(`Thread 1 hit Breakpoint 1, 0x${startKernel.toString(16)} in \\?\\? \\(\\)`));
    has(new RegExp(`PC=${startKernel.toString(16)}\\n`));
    has(/\* 1 +Thread 1 \(CPU#0 \[\w+\]\) 0xffffffff[0-9a-f]{8} in \?\? \(\)\n +2 +Thread 2 \(CPU#1 \[\w+\]\) 0x[0-9a-f]+ in \?\? \(\)/);
    has(new RegExp(`${hex(banner)}:\\s+"Linux version 6\\.1`));
    has(/priv\s+0x1\s+prv:1 \[Supervisor\]/);
    has(/\[Inferior 1 \(Remote target\) killed\]/);
    assert.equal(await v.exit(30_000), 0, v.tail());
  } finally {
    v.kill();
  }
});
