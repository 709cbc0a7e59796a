/**
 * The gdbstub with a real gdb-multiarch on a bare-metal program (tests/functional/gdbstub/
 * target.S, built with symbols): software and hardware breakpoints, registers (integer,
 * FP, CSR, priv), stepi, register and memory writes the program then sees, write and read
 * watchpoints, `info threads`, and the exit reaching gdb. And over the raw protocol: -S
 * waits for gdb, the run state is `debug` at a breakpoint, a monitor's cont steps over it,
 * Ctrl-C stops a spinning guest with SIGINT, a gdb connecting stops a running machine,
 * D lets it go, k ends Vireo.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';
import { Qmp, RspClient, freePort, gdbSkip, runGdb } from './gdb-helpers.js';

const ELF = join('tests', 'functional', 'gdbstub', 'bin', 'target.elf');
// Addresses in target.elf (riscv64-unknown-elf-nm): code from 0x80000000, data from 0x80001000.
const MARKER = 0x80000020;
const SPIN = 0x80000058;
const GO = 0x80001060;
const skip = gdbSkip();
const dir = mkdtempSync(join(tmpdir(), 'vireo-gdb-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function vireo(port: number, ...extra: string[]): GuestConsole {
  return new GuestConsole(['-M', 'virt', '-bios', 'none', '-kernel', ELF, '-nographic', '-gdb', `tcp::${port}`, ...extra]);
}

test('gdb-multiarch: breakpoints, registers, stepi, writes, watchpoints, threads and the exit', { skip, timeout: 120_000 }, async () => {
  const port = await freePort();
  const v = vireo(port, '-S');
  try {
    const out = await runGdb(port, [
      'break *marker',
      'continue',
      'printf "PC=%lx A0=%lx\\n", $pc, $a0',
      'printf "FA0=%.1f\\n", $fa0.double',
      'info registers priv',
      'printf "MSTATUS.FS=%lx\\n", ($mstatus >> 13) & 3',
      'stepi',
      'printf "STEP PC=%lx A1=%lx\\n", $pc, $a1',
      'set $a2 = 7',
      'set {long}&poke = 0x55',
      'printf "POKE=%lx\\n", *(long *)&poke',
      'delete',
      'watch *(long *)&counter',
      'continue',
      'printf "WATCH PC=%lx\\n", $pc',
      'continue',
      'continue',
      'delete',
      'rwatch *(long *)&rvar',
      'continue',
      'printf "RWATCH PC=%lx T3=%lx\\n", $pc, $t3',
      'delete',
      'hbreak *done',
      'set {long}&go = 1',
      'continue',
      'printf "DONE PC=%lx\\n", $pc',
      'info threads',
      'continue',
    ], ELF, 90_000);
    const has = (re: RegExp) => assert.match(out, re, out);
    has(/Breakpoint 1, 0x0000000080000020 in marker \(\)/);
    has(/PC=80000020 A0=1234abcd/);
    has(/FA0=305441741\.0/);
    has(/priv\s+0x3\s+prv:3 \[Machine\]/);
    has(/MSTATUS\.FS=3/);
    has(/STEP PC=80000024 A1=1234abce/);
    has(/POKE=55/);
    // The write watchpoint: each store of counter, reported after gdb steps over it.
    has(/Hardware watchpoint 2: \*\(long \*\)&counter\s+Old value = 0\s+New value = 1/);
    has(/WATCH PC=80000040/);
    has(/Old value = 1\s+New value = 2/);
    has(/Old value = 2\s+New value = 3/);
    has(/Hardware read watchpoint 3: \*\(long \*\)&rvar\s+Value = 24589/);
    has(/RWATCH PC=80000050 T3=600d/);
    has(/Breakpoint 4, 0x0000000080000060 in done \(\)/);
    has(/DONE PC=80000060/);
    has(/\* 1 +Thread 1 \(CPU#0 \[running\]\) 0x0000000080000060 in done \(\)/);
    // Exit status 0: the program saw a2 = 7, poke = 0x55 and the stepped a1.
    has(/\[Inferior 1 \(Remote target\) exited normally\]/);
    assert.equal(await v.exit(30_000), 0, v.tail());
  } finally {
    v.kill();
  }
});

test('raw protocol: -S waits for gdb; debug run state at a breakpoint; Ctrl-C stops a spinning guest; k quits', { skip, timeout: 120_000 }, async () => {
  const port = await freePort();
  const qmp = join(dir, 'qmp1.sock');
  const v = vireo(port, '-S', '-qmp', `unix:${qmp},server=on,wait=off`);
  try {
    const c = await RspClient.connect(port);
    const q = await Qmp.open(qmp);
    assert.match(await c.ask('qSupported:swbreak+;hwbreak+'), /qXfer:features:read\+/);
    assert.equal(await c.ask('?'), 'T05thread:01;');
    assert.equal(await q.status(), 'prelaunch');
    assert.equal(await c.ask('p20'), '0010000000000000'); // the reset vector, 0x1000
    assert.equal(await c.ask(`Z0,${MARKER.toString(16)},4`), 'OK');
    assert.equal(await c.ask('vCont;c'), 'T05thread:01;swbreak:;');
    assert.equal(await c.ask('p20'), '2000008000000000');
    assert.equal(await q.status(), 'debug');
    // A monitor's cont steps over the breakpoint (still set) rather than stopping there again.
    await q.execute('cont');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await q.status(), 'running');
    // Nothing sets `go`: the guest spins until Ctrl-C.
    c.send('c');
    c.interrupt();
    assert.equal(await c.reply(), 'T02thread:01;');
    assert.equal(await q.status(), 'paused');
    const pc = Buffer.from(await c.ask('p20'), 'hex').readBigUInt64LE();
    assert.ok(pc === BigInt(SPIN) || pc === BigInt(SPIN + 4), `pc ${pc.toString(16)} in the spin loop`);
    assert.equal(await c.ask(`m${GO.toString(16)},8`), '0000000000000000');
    c.send('k');
    assert.equal(await v.exit(30_000), 0, v.tail());
  } finally {
    v.kill();
  }
});

test('raw protocol: a gdb connecting stops a running machine; D lets it run on', { skip, timeout: 120_000 }, async () => {
  const port = await freePort();
  const qmp = join(dir, 'qmp2.sock');
  const v = vireo(port, '-qmp', `unix:${qmp},server=on,wait=off`);
  try {
    const c = await RspClient.connect(port);
    const q = await Qmp.open(qmp);
    assert.equal(await c.ask('?'), 'T05thread:01;');
    assert.equal(await q.status(), 'paused');
    // Set go: once detached, the program runs to its end (status 1: the debugger set no a2).
    assert.equal(await c.ask(`M${GO.toString(16)},8:0100000000000000`), 'OK');
    assert.equal(await c.ask('D'), 'OK');
    assert.equal(await v.exit(30_000), 1, v.tail());
  } finally {
    v.kill();
  }
});
