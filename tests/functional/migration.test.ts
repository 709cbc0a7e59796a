/**
 * Live migration of the bundled RISC-V Linux between two Vireo processes, driven through
 * QMP by the stdlib Python client: a guest that keeps rewriting an 8 MiB file (and
 * checksumming it) moves to a process started with -incoming while it runs, over many
 * pre-copy passes (max-bandwidth slows the copy down so that the guest dirties pages
 * between passes); on the destination every checksum, before and after the move, matches
 * the file's, and the shell goes on. Under thread=single and thread=multi. Failures (no
 * destination, a destination of another configuration, a stream of garbage) leave the
 * source running and give one-line errors.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole, VIREO } from './guest-console.js';
import { QmpClient, type Msg } from './qmp-client.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-mig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Sends `wait_event` and returns the messages up to and including event `name`. */
async function waitEvent(q: QmpClient, name: string, timeoutMs = 60_000): Promise<Msg[]> {
  q.child.stdin.write(`${JSON.stringify({ wait_event: name })}\n`);
  const seen: Msg[] = [];
  for (;;) {
    const m = await q.next(timeoutMs);
    if (m.eof) throw new Error(`connection closed before event ${name}`);
    seen.push(m);
    if (m.event === name) return seen;
  }
}

/** Polls query-migrate until the migration is over; returns its last answer and the events seen meanwhile. */
async function migrationOver(q: QmpClient): Promise<{ info: Msg; events: Msg[] }> {
  const events: Msg[] = [];
  for (;;) {
    const { events: ev, answer } = await q.request({ execute: 'query-migrate' });
    events.push(...ev);
    const info = answer.return as Msg;
    if (['completed', 'failed', 'cancelled'].includes(info.status as string)) return { info, events };
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A free TCP port on the loopback (nothing listens on it once this resolves). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function qmpArgs(sock: string): string[] {
  return ['-qmp', `unix:${sock},server=on,wait=off`];
}

for (const accel of [[], ['-smp', '2', '-accel', 'tcg,thread=multi']]) {
  const tag = accel.length === 0 ? 'single' : 'multi';
  test(`live migration of a busy guest (${accel.length ? accel.join(' ') : 'thread=single'})`, async () => {
    const base = ['-nographic', '-m', '256M', ...accel];
    const srcSock = join(dir, `src-${tag}.sock`);
    const dstSock = join(dir, `dst-${tag}.sock`);
    const uri = `unix:${join(dir, `mig-${tag}.sock`)}`;
    const src = new GuestConsole([...base, ...qmpArgs(srcSock)]);
    const dst = new GuestConsole([...base, ...qmpArgs(dstSock), '-incoming', uri]);
    const clients: QmpClient[] = [];
    try {
      await src.waitFor(PROMPT, BOOT_TIMEOUT);
      await src.run('dd if=/dev/urandom of=/tmp/a bs=1k count=8192 2>/dev/null; md5sum /tmp/a > /tmp/a.md5', PROMPT, 60_000);
      src.send('(while true; do cp /tmp/a /tmp/b; md5sum /tmp/b >> /tmp/log; done) &\n');
      const q = new QmpClient(srcSock);
      const d = new QmpClient(dstSock);
      clients.push(q, d);
      for (const c of clients) {
        await c.next(); // greeting
        await c.next(); // negotiated
      }
      assert.equal((await d.execute('query-status')).status, 'inmigrate');
      // A guest waiting for its state does not start on cont.
      const cont = await d.request({ execute: 'cont', id: 1 });
      assert.match(cont.answer.error?.desc ?? '', /incoming migration/);
      await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      assert.deepEqual(await q.execute('query-migrate-capabilities'), [{ capability: 'events', state: true }]);
      // Slow enough (20 MB/s) for the guest to rewrite pages between passes.
      await q.execute('migrate-set-parameters', { 'downtime-limit': 1, 'max-bandwidth': 20_000_000 });
      assert.deepEqual(await q.execute('query-migrate-parameters'), { 'downtime-limit': 1, 'max-bandwidth': 20_000_000 });
      await q.execute('migrate', { uri });
      const { info, events } = await migrationOver(q);
      assert.equal(info.status, 'completed', JSON.stringify(info));
      const statuses = events.filter((e) => e.event === 'MIGRATION').map((e) => e.data.status);
      assert.deepEqual(statuses.filter((s, i) => statuses.indexOf(s) === i), ['setup', 'active', 'device', 'completed'].filter((s) => statuses.includes(s)));
      assert.ok(statuses.includes('completed') && statuses.includes('active'), statuses.join(','));
      assert.ok(events.some((e) => e.event === 'STOP'), 'the source stops for the last copy');
      assert.ok(events.filter((e) => e.event === 'MIGRATION_PASS').length >= 2, 'several passes');
      assert.ok(info['ram']['dirty-sync-count'] >= 2, JSON.stringify(info));
      assert.ok(info['ram']['transferred'] > 8 * 2 ** 20, JSON.stringify(info));
      assert.equal(info['ram']['remaining'], 0);
      assert.ok(Number.isInteger(info['downtime']) && info['downtime'] >= 0 && info['total-time'] >= info['downtime'], JSON.stringify(info));
      assert.equal((await q.execute('query-status')).status, 'postmigrate');
      assert.match(await q.execute('human-monitor-command', { 'command-line': 'info migrate' }), /Migration status: completed/);

      // The destination runs the guest on: the loop goes on with the file intact.
      await waitEvent(d, 'RESUME');
      assert.equal((await d.execute('query-status')).status, 'running');
      assert.equal((await d.execute('query-migrate')).status, 'completed');
      await sleep(3000);
      const out = await dst.run('kill %1; wait; sort /tmp/log | uniq -c; md5sum /tmp/a; cat /tmp/a.md5', PROMPT, 60_000);
      const sums = [...out.matchAll(/^\s*(\d+) ([0-9a-f]{32})\s+\/tmp\/b\r?$/gm)];
      const want = /^([0-9a-f]{32})\s+\/tmp\/a\r?$/m.exec(out)?.[1];
      assert.ok(want !== undefined && sums.length > 0, out);
      assert.deepEqual(sums.map((s) => s[2]), [want], `every checksum of the copies is the file's:\n${out}`);
      assert.equal([...out.matchAll(new RegExp(`^${want}\\s+/tmp/a\\r?$`, 'gm'))].length, 2, out);
      assert.match(await dst.run('echo $((6 * 7))', PROMPT), /^42\r?$/m);
    } finally {
      for (const c of clients) c.kill();
      src.kill();
      dst.kill();
    }
  });
}

test('live migration with a qcow2 disk on virtio-pci, user networking and virtio-rng', async (t) => {
  if (!existsSync('/usr/bin/qemu-img')) {
    t.skip('qemu-img not installed (apt-get install qemu-utils)');
    return;
  }
  const img = join(dir, 'disk.qcow2');
  assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '64M']).status, 0);
  const server = createHttpServer((_req, res) => res.end('vireo-host-page\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const httpPort = (server.address() as { port: number }).port;
  const devs = ['-drive', `file=${img},if=none,id=d0,format=qcow2`, '-device', 'virtio-blk-pci,drive=d0',
    '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0', '-device', 'virtio-rng-device'];
  const base = ['-nographic', '-m', '256M', ...devs];
  const srcSock = join(dir, 'src-disk.sock');
  const uri = `unix:${join(dir, 'mig-disk.sock')}`;
  const src = new GuestConsole([...base, ...qmpArgs(srcSock)]);
  const dst = new GuestConsole([...base, '-incoming', uri]);
  let q: QmpClient | null = null;
  try {
    await src.waitFor(PROMPT, BOOT_TIMEOUT);
    await src.run('mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/a bs=1k count=2048 2>/dev/null && ' +
      'md5sum /mnt/a > /mnt/a.md5 && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2', PROMPT, 60_000);
    // Each line of the log is written once its copy is complete and on the disk.
    src.send('(while true; do cp /mnt/a /mnt/b && sync && md5sum /mnt/b >> /mnt/log && sync; done) &\n');
    await sleep(2000);
    q = new QmpClient(srcSock);
    await q.next();
    await q.next();
    await q.execute('migrate', { uri });
    const { info } = await migrationOver(q);
    assert.equal(info.status, 'completed', JSON.stringify(info));
    await dst.waitFor(/./, 1000).catch(() => {});
    await sleep(2000);
    const out = await dst.run('kill %1; wait; sort /mnt/log | uniq -c; cat /mnt/a.md5; sync', PROMPT, 60_000);
    const want = /^([0-9a-f]{32})\s+\/mnt\/a\r?$/m.exec(out)?.[1];
    const sums = [...out.matchAll(/^\s*\d+ ([0-9a-f]{32})\s+\/mnt\/b\r?$/gm)].map((m) => m[1]);
    assert.ok(want !== undefined && sums.length > 0, out);
    assert.deepEqual([...new Set(sums)], [want], out);
    // The file read back from the disk itself (after a remount drops the cache) is the same.
    const reread = await dst.run('md5sum /mnt/a; umount /mnt && mount /dev/vda /mnt && md5sum /mnt/a', PROMPT, 60_000);
    assert.equal(reread.split(want).length - 1, 2, reread);
    // The console is also the kernel's: its messages may come between the lines.
    const page = await dst.run(`wget -q -O - http://10.0.2.2:${httpPort}/`, PROMPT, 60_000);
    assert.ok(page.split(/\r?\n/).includes('vireo-host-page'), page);
    assert.match(await dst.run('head -c 16 /dev/hwrng | wc -c', PROMPT, 30_000), /^\s*16\r?$/m);
    await dst.run('umount /mnt', PROMPT, 30_000);
  } finally {
    q?.kill();
    src.kill();
    dst.kill();
    server.close();
  }
  await src.exit(10_000);
  await dst.exit(10_000);
  const check = spawnSync('qemu-img', ['check', img], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('failed migrations leave the source running; a destination that cannot load exits with one line', async () => {
  const srcSock = join(dir, 'src-fail.sock');
  const src = new GuestConsole(['-nographic', '-m', '256M', ...qmpArgs(srcSock)]);
  let q: QmpClient | null = null;
  const dests: GuestConsole[] = [];
  const clients: QmpClient[] = [];
  /** A destination, once it listens (query-migrate says setup). */
  const destination = async (args: string[], name: string): Promise<GuestConsole> => {
    const sock = join(dir, `${name}.sock`);
    const g = new GuestConsole(['-nographic', ...args, ...qmpArgs(sock)]);
    dests.push(g);
    const c = new QmpClient(sock);
    clients.push(c);
    await c.next();
    await c.next();
    while ((await c.execute('query-migrate')).status !== 'setup') await sleep(100);
    return g;
  };
  try {
    await src.waitFor(PROMPT, BOOT_TIMEOUT);
    src.send('i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done\n');
    await src.waitFor(/tick3\r?\n/, 60_000);
    q = new QmpClient(srcSock);
    await q.next();
    await q.next();
    const stillRunning = async (): Promise<void> => {
      assert.equal((await q!.execute('query-status')).status, 'running');
      const from = src.output.length;
      await src.waitFor(/tick\d+\r?\n/, 30_000, from);
    };

    // Nobody listens.
    await q.execute('migrate', { uri: `tcp:127.0.0.1:${await freePort()}` });
    let { info } = await migrationOver(q);
    assert.equal(info.status, 'failed');
    assert.match(info['error-desc'], /cannot connect/);
    await stillRunning();

    // A destination with another RAM size refuses the stream and exits.
    const port = await freePort();
    const dst = await destination(['-m', '128M', '-incoming', `tcp:127.0.0.1:${port}`], 'd1');
    await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    ({ info } = await migrationOver(q));
    assert.equal(info.status, 'failed');
    assert.match(info['error-desc'], /differs from this one/);
    assert.equal(await dst.exit(30_000), 1);
    assert.match(dst.stderr, /^vireo: load of migration failed: the source machine .* differs from this one .*\n$/);
    await stillRunning();

    // Garbage instead of a migration stream.
    const port2 = await freePort();
    const dst2 = await destination(['-m', '256M', '-incoming', `tcp:127.0.0.1:${port2}`], 'd2');
    const s = connect(port2, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.end(Buffer.from('\x01\xff\xff\xff\x7fGET / HTTP/1.0\r\n\r\n'));
    assert.equal(await dst2.exit(30_000), 1);
    assert.match(dst2.stderr, /^vireo: load of migration failed: migration stream: a record of \d+ bytes\n$/);
  } finally {
    q?.kill();
    src.kill();
    for (const c of clients) c.kill();
    for (const d of dests) d.kill();
  }
});

test('-incoming: a bad address is one line and exit 1', () => {
  for (const [arg, msg] of [['tcp:127.0.0.1:99999', /invalid migration URI/], ['exec:cat', /invalid migration URI/]] as const) {
    const r = spawnSync(process.execPath, [VIREO, '-nographic', '-incoming', arg], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
