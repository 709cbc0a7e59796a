/**
 * QMP on the bundled RISC-V Linux, driven by a real client (tests/functional/qmp_client.py,
 * Python's socket and json only): negotiation, queries, stop (the guest's counting loop
 * stops advancing) and cont (it advances again, RESUME), human-monitor-command, quit
 * (SHUTDOWN, exit 0); and -S, where nothing runs until cont.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';
import { QmpClient, type Msg } from './qmp-client.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-qmp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Count of `tick` lines the guest printed so far. */
function ticks(g: GuestConsole): number {
  return (g.output.match(/tick\d+/g) ?? []).length;
}

// thread=multi pauses by ending the hart threads, which hand the harts' state back to the main thread.
for (const accel of [[], ['-smp', '2', '-accel', 'tcg,thread=multi']]) {
  const smp = accel.length === 0 ? 1 : 2;
  test(`QMP over a Unix socket${accel.length ? ` (${accel.join(' ')})` : ''}: queries, stop really stops the guest, cont, info registers, quit`, async () => {
  const sock = join(dir, `qmp${smp}.sock`);
  const g = new GuestConsole(['-nographic', '-qmp', `unix:${sock},server=on,wait=off`, '-name', 'qmp-test', ...accel]);
  let q: QmpClient | null = null;
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    q = new QmpClient(sock);
    const greeting = await q.next();
    assert.deepEqual(Object.keys(greeting.QMP.version.qemu).sort(), ['major', 'micro', 'minor']);
    assert.deepEqual(greeting.QMP.capabilities, []);
    assert.deepEqual(await q.next(), { negotiated: true });

    assert.deepEqual(await q.execute('query-status'), { status: 'running', singlestep: false, running: true });
    assert.match((await q.execute('query-version')).package, /^vireo-/);
    assert.deepEqual(await q.execute('query-name'), { name: 'qmp-test' });
    const cpus = await q.execute('query-cpus-fast');
    assert.equal(cpus.length, smp);
    assert.equal(cpus[0]['cpu-index'], 0);
    assert.equal(cpus[0].target, 'riscv64');
    assert.equal(cpus[0]['thread-id'], g.child.pid);
    assert.deepEqual(await q.execute('query-block'), []);
    assert.ok((await q.execute('query-chardev')).some((c: Msg) => c.label === 'compat_monitor0' && c.filename === `unix:${sock},server=on`));
    const bad = await q.request({ execute: 'query-status', arguments: { verbose: true }, id: 9 });
    assert.deepEqual(bad.answer, { error: { class: 'GenericError', desc: "Parameter 'verbose' is unexpected" }, id: 9 });

    // A counting loop on the console; it must not advance while the vCPU is stopped.
    g.send('i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done\n');
    await g.waitFor(/tick5\b/, 30_000);
    const stop = await q.request({ execute: 'stop', id: 'stop' });
    assert.equal(stop.events[0]?.event, 'STOP');
    assert.ok(Number.isInteger(stop.events[0]?.timestamp?.seconds));
    assert.deepEqual(await q.execute('query-status'), { status: 'paused', singlestep: false, running: false });
    await new Promise((r) => setTimeout(r, 500)); // output already on its way
    const frozen = ticks(g);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(ticks(g), frozen, 'the guest printed while paused');
    const regs = await q.execute('human-monitor-command', { 'command-line': 'info registers' });
    // Every hart's pc where it stopped (in OpenSBI, the kernel or the shell loop), not the reset vector.
    const pcs = [...regs.matchAll(/^ pc {7}([0-9a-f]{16})\r$/gm)].map((m) => m[1]);
    assert.equal(pcs.length, smp, regs);
    assert.ok(pcs.every((pc) => pc !== '0000000000001000'), regs);
    assert.match(regs, /x2\/sp {4}[0-9a-f]{16}/);
    const cont = await q.request({ execute: 'cont', id: 'cont' });
    assert.equal(cont.events[0]?.event, 'RESUME');
    await g.waitFor(new RegExp(`tick${frozen + 3}\\b`), 30_000);
    assert.equal((await q.execute('human-monitor-command', { 'command-line': 'info status' })), 'VM status: running\r\n');

    assert.deepEqual((await q.request({ execute: 'quit', id: 'q' })).answer, { return: {}, id: 'q' });
    q.child.stdin.write('{"read_eof": true}\n');
    const rest: Msg[] = [];
    for (let m = await q.next(); !m.eof; m = await q.next()) rest.push(m);
    const shutdown = rest.find((m) => m.event === 'SHUTDOWN');
    assert.deepEqual(shutdown?.data, { guest: false, reason: 'host-qmp-quit' });
    assert.equal(await g.exit(30_000), 0, g.tail());
  } finally {
    q?.kill();
    g.kill();
  }
  });
}

test('-S: the vCPU does not start until cont; then Linux boots', async () => {
  const sock = join(dir, 'qmp-s.sock');
  const g = new GuestConsole(['-nographic', '-S', '-qmp', `unix:${sock},server,nowait`]);
  let q: QmpClient | null = null;
  try {
    q = new QmpClient(sock);
    await q.next();
    assert.deepEqual(await q.next(), { negotiated: true });
    assert.deepEqual(await q.execute('query-status'), { status: 'prelaunch', singlestep: false, running: false });
    await new Promise((r) => setTimeout(r, 1000));
    assert.doesNotMatch(g.output, /OpenSBI/, 'nothing runs before cont');
    assert.equal(await q.execute('human-monitor-command', { 'command-line': 'xp /1xw 0x1000' }).then((s: string) => /^0000000000001000: 0x[0-9a-f]{8}\r\n$/.test(s)), true);
    const cont = await q.request({ execute: 'cont', id: 1 });
    assert.equal(cont.events[0]?.event, 'RESUME');
    await g.waitFor(/OpenSBI v1\.1/, BOOT_TIMEOUT);
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    await q.execute('quit');
    assert.equal(await g.exit(30_000), 0, g.tail());
  } finally {
    q?.kill();
    g.kill();
  }
});
