/**
 * Snapshots of the bundled RISC-V Linux (savevm / loadvm / -loadvm with -snapshot-file),
 * driven through the human monitor on a Unix socket: a shell loop counting on the console
 * goes back to the saved count after loadvm and goes on counting, in the same process and
 * in a new one started with -loadvm (no boot); under thread=single and thread=multi. Bad
 * snapshots (missing, truncated, another configuration) give one line and leave the running
 * guest running. A machine with virtio-9p is refused (tests/functional/snapshot-virtio.test.ts
 * covers the other virtio devices).
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { GuestConsole, ROOT } from './guest-console.js';
import { hmp } from './hmp-client.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-snap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The numbers of the `tick` lines printed after output position `from`. */
function ticks(g: GuestConsole, from = 0): number[] {
  return [...g.output.slice(from).matchAll(/tick(\d+)\r?\n/g)].map((m) => Number(m[1]));
}

async function tickAtLeast(g: GuestConsole, n: number, from = 0): Promise<void> {
  await g.waitFor(new RegExp(`tick(${n}|${n + 1}|${n + 2})\\r?\\n`), 60_000, from);
}

/**
 * Stops the tick loop with Ctrl-C and waits for the prompt. busybox ash sometimes goes on
 * looping when the SIGINT lands between its commands (the ^C is echoed, the loop goes on;
 * seen once in CI): then Ctrl-C again.
 */
async function interruptLoop(g: GuestConsole): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const from = g.output.length;
    g.send('\x03');
    try {
      await g.waitFor(PROMPT, 10_000, from);
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

for (const accel of [['-smp', '1'], ['-smp', '2', '-accel', 'tcg,thread=multi']]) {
  test(`savevm, loadvm, info snapshots, delvm and -loadvm (${accel.join(' ')})`, async () => {
    const file = join(dir, `${accel.length}.vsnap`);
    const sock = join(dir, `${accel.length}.sock`);
    const args = ['-nographic', ...accel, '-snapshot-file', file];
    const g = new GuestConsole([...args, '-monitor', `unix:${sock},server=on,wait=off`]);
    let g2: GuestConsole | null = null;
    try {
      await g.waitFor(PROMPT, BOOT_TIMEOUT);
      g.send('i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done\n');
      await tickAtLeast(g, 5);
      // The state is taken as savevm starts; the guest runs on while it is compressed, so the
      // saved count lies between the last tick seen before the command and the last after it.
      const before = Math.max(...ticks(g));
      assert.equal(await hmp(sock, 'savevm s1'), '');
      const saved = Math.max(...ticks(g));
      await tickAtLeast(g, saved + 10);
      assert.match(await hmp(sock, 'info snapshots'), /^s1\s+[\d.]+ MiB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);

      // loadvm: the loop continues from the saved count (the guest may still have had a
      // line or two in its tty buffer when it was saved).
      let from = g.output.length;
      assert.equal(await hmp(sock, 'loadvm s1'), '');
      await tickAtLeast(g, saved + 5, from);
      // Lines printed before the load took effect come first (the last of them may be cut
      // short by the load): start at the last jump back.
      let after = ticks(g, from);
      let back = 0;
      after.forEach((t, k) => { if (k > 0 && t < after[k - 1]!) back = k; });
      after = after.slice(back);
      assert.ok(after[0]! <= saved + 2 && after[0]! >= before - 2, `saved at tick${before}-${saved}, loadvm resumed at tick${after[0]} (${after.join(',')})`);
      for (let k = 1; k < after.length; k++) assert.equal(after[k], after[k - 1]! + 1, `counting goes on: ${after.join(',')}`);

      // Bad requests answer one error line and the guest keeps running.
      assert.match(await hmp(sock, 'loadvm nosuch'), /^Error: snapshot 'nosuch' not found in .*\r?\n$/);
      assert.match(await hmp(sock, 'delvm nosuch'), /^Error: snapshot 'nosuch' not found\r?\n$/);
      from = g.output.length;
      await tickAtLeast(g, Math.max(...ticks(g)) + 2, from);

      // A new process starts from the snapshot, without booting.
      g2 = new GuestConsole([...args, '-loadvm', 's1']);
      await tickAtLeast(g2, saved + 3);
      assert.doesNotMatch(g2.output, /OpenSBI/);
      const resumed = ticks(g2);
      assert.ok(resumed[0]! <= saved + 2 && resumed[0]! >= before - 2, `saved at tick${before}-${saved}, -loadvm resumed at tick${resumed[0]}`);
      await interruptLoop(g2);
      assert.equal((await g2.run('echo $((6*7))', PROMPT)).trim(), '42');
      g2.send('poweroff\n');
      assert.equal(await g2.exit(60_000), 0, g2.tail());

      assert.equal(await hmp(sock, 'delvm s1'), '');
      assert.match(await hmp(sock, 'info snapshots'), /There is no snapshot available/);
      await interruptLoop(g);
      g.send('poweroff\n');
      assert.equal(await g.exit(60_000), 0, g.tail());
    } finally {
      g.kill();
      g2?.kill();
    }
  });
}

/** Runs vireo to completion (it must fail at once) and returns its status and stderr. */
function vireoFails(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'vireo.js'), '-nographic', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

test('-loadvm: a missing snapshot, a truncated or foreign file, another configuration: one line, exit 1, file untouched', async () => {
  const file = join(dir, 'bad.vsnap');
  const sock = join(dir, 'bad.sock');
  const g = new GuestConsole(['-nographic', '-snapshot-file', file, '-monitor', `unix:${sock},server=on,wait=off`]);
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    assert.equal(await hmp(sock, 'savevm good'), '');
    g.send('poweroff\n');
    assert.equal(await g.exit(60_000), 0, g.tail());
  } finally {
    g.kill();
  }
  const bytes = readFileSync(file);
  const cases: Array<[string[], RegExp]> = [
    [['-snapshot-file', file, '-loadvm', 'other'], /^vireo: -loadvm other: snapshot 'other' not found in /],
    [['-snapshot-file', file, '-loadvm', 'good', '-m', '256M'], /snapshot 'good' was taken with -smp 1 -m 512M; this machine has -smp 1 -m 256M/],
    [['-snapshot-file', file, '-loadvm', 'good', '-smp', '2'], /this machine has -smp 2/],
    [['-loadvm', 'good'], /-loadvm needs -snapshot-file/],
  ];
  for (const [args, re] of cases) {
    const r = vireoFails(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const truncated = join(dir, 'truncated.vsnap');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
  const foreign = join(dir, 'foreign.vsnap');
  writeFileSync(foreign, 'QFI\xfb not a snapshot file at all');
  for (const [f, re] of [[truncated, /not a Vireo snapshot file \(truncated\)/], [foreign, /not a Vireo snapshot file \(no VIREOSNP header\)/]] as const) {
    const r = vireoFails(['-snapshot-file', f, '-loadvm', 'good']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, re);
  }
  assert.deepEqual(readFileSync(file), bytes, 'the snapshot file is untouched');
});

test('savevm refuses a machine with a virtio-9p device (its open files are host state), and the guest keeps running', async () => {
  const sock = join(dir, '9p.sock');
  const g = new GuestConsole(['-nographic', '-snapshot-file', join(dir, '9p.vsnap'), '-virtfs', `local,path=${dir},mount_tag=host0,security_model=none`,
    '-device', 'virtio-rng-device', '-monitor', `unix:${sock},server=on,wait=off`]);
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    assert.equal(await hmp(sock, 'savevm s'),
      'Error: snapshots of machines with virtio-9p are not supported (the files it has open on the host cannot be saved)\r\n');
    assert.match(await hmp(sock, 'info snapshots'), /There is no snapshot available/);
    assert.equal((await g.run('echo $((6*7))', PROMPT)).trim(), '42');
    g.send('poweroff\n');
    assert.equal(await g.exit(60_000), 0, g.tail());
  } finally {
    g.kill();
  }
});
