/**
 * The x86_64 microvm under KVM, as a user runs it (`vireo -accel kvm -nographic`): the
 * bundled guest boots to a shell, runs commands, sees both vCPUs with -smp 2 (and two
 * busy processes both finish), reboots, and powers off with exit status 0; with
 * -no-reboot a reboot ends the process instead. scripts/test.mjs runs this file
 * natively, or in a nested VM where /dev/kvm is missing or too slow.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { GuestConsole } from '../functional/guest-console.js';

// Debian's busybox asks the terminal for the cursor position (ESC [6n) after its prompt.
const PROMPT = /~ # (\x1b\[6n)?$/;
const BOOT_TIMEOUT = 300_000;

test('-smp 2: boots the bundled x86_64 guest, runs commands on both CPUs, reboots, powers off', async () => {
  const g = new GuestConsole(['-accel', 'kvm', '-smp', '2', '-m', '256M', '-nographic']);
  try {
    await g.waitFor(/Linux version 6\.1/, BOOT_TIMEOUT);
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    assert.equal((await g.run('uname -m', PROMPT)).trim(), 'x86_64');
    assert.equal((await g.run('echo $((6 * 7))', PROMPT)).trim(), '42');
    assert.match(await g.run('grep -c ^processor /proc/cpuinfo', PROMPT), /^2\s*$/m);
    assert.match(await g.run('grep -m1 -o -w hypervisor /proc/cpuinfo', PROMPT), /hypervisor/);
    assert.match(await g.run('cat /sys/class/rtc/rtc0/name', PROMPT), /rtc_cmos/);
    assert.match(await g.run('date +%Y', PROMPT), new RegExp(`^${new Date().getUTCFullYear()}\\s*$`, 'm'));
    const out = await g.run(
      'for i in 1 2; do (n=0; while [ $n -lt 20000 ]; do n=$((n+1)); done; echo busy-$i-done) & done; wait', PROMPT, 240_000);
    assert.match(out, /busy-1-done/);
    assert.match(out, /busy-2-done/);
    const before = g.output.length;
    g.send('reboot\n');
    await g.waitFor(/Linux version 6\.1/, BOOT_TIMEOUT, before);
    await g.waitFor(PROMPT, BOOT_TIMEOUT, before);
    g.send('poweroff\n');
    assert.equal(await g.exit(120_000), 0, g.tail());
  } finally {
    g.kill();
  }
});

test('-no-reboot: a guest reboot ends the process with status 0', async () => {
  const g = new GuestConsole(['-accel', 'kvm', '-m', '256M', '-nographic', '-no-reboot']);
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    g.send('reboot\n');
    assert.equal(await g.exit(120_000), 0, g.tail());
  } finally {
    g.kill();
  }
});
