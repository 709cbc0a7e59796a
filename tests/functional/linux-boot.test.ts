/**
 * The bundled guest, booted as the README says (`vireo -nographic`, no other option):
 * OpenSBI, Linux and a busybox shell; commands run in the shell; `poweroff` ends
 * the process with status 0. Also: input piped in before the guest is ready is held,
 * not dropped.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { GuestConsole, ROOT, VIREO } from './guest-console.js';

const PROMPT = /~ # $/;

/** User + system CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}
const BOOT_TIMEOUT = 120_000;

test('boots the bundled Linux to a shell, runs commands, powers off with status 0', async () => {
  const g = new GuestConsole(['-nographic']);
  try {
    await g.waitFor(/OpenSBI v1\.1/, BOOT_TIMEOUT);
    await g.waitFor(/Linux version 6\.1/, BOOT_TIMEOUT);
    await g.waitFor(/Welcome to Vireo/, BOOT_TIMEOUT);
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    assert.equal((await g.run('uname -m', PROMPT)).trim(), 'riscv64');
    assert.equal((await g.run('echo $((6 * 7 + 1000000007 % 97))', PROMPT)).trim(), String(6 * 7 + (1000000007 % 97)));
    await g.run('echo vireo-tmpfs-check > /tmp/f && sync', PROMPT);
    assert.equal((await g.run('cat /tmp/f', PROMPT)).trim(), 'vireo-tmpfs-check');
    assert.match(await g.run('grep -c processor /proc/cpuinfo', PROMPT), /^1\s*$/m);
    // An idle guest sits in WFI, and so does the host thread: little CPU time over 3 s.
    const before = cpuSeconds(g.child.pid!);
    await new Promise((r) => setTimeout(r, 3000));
    const used = cpuSeconds(g.child.pid!) - before;
    assert.ok(used < 1.5, `idle guest used ${used.toFixed(2)} s of CPU in 3 s`);
    g.send('poweroff\n');
    assert.equal(await g.exit(60_000), 0, g.tail());
  } finally {
    g.kill();
  }
});

test('input piped before the guest reads it is held, not dropped, to its first byte', () => {
  // Linux's 8250 driver reads RBR and resets the FIFO while it probes and opens ttyS0: no byte may be lost to that.
  const r = spawnSync(process.execPath, [VIREO, '-nographic'], {
    cwd: ROOT,
    input: 'echo piped-$((40 + 2))\npoweroff\n',
    timeout: BOOT_TIMEOUT,
    encoding: 'latin1',
  });
  assert.equal(r.status, 0, `${r.stdout.slice(-3000)}\n${r.stderr}`);
  assert.match(r.stdout, /^piped-42\r?$/m, 'the echo ran (not a command cut short)');
});
