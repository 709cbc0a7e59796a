/**
 * Snapshots of the bundled RISC-V Linux with virtio devices: an ext4 disk (qcow2, on
 * virtio-mmio and on virtio-pci under thread=multi), user networking, virtio-rng and a
 * virtio-serial port. The disk takes an internal snapshot along with the machine, as in
 * QEMU: a change written and synced to the disk after savevm is gone after loadvm. After
 * loadvm in the same process, and after -loadvm in a new one, the guest sees the file as
 * saved (also from the disk), reads and writes the disk, fetches a page from an HTTP
 * server on the host, reads /dev/hwrng and writes to its serial port. The image checks
 * clean afterwards (qemu-img check, e2fsck), `qemu-img snapshot -l` lists the disk's
 * snapshots, a machine with other virtio devices refuses the snapshot, and a writable raw
 * disk (no internal snapshots) is refused as QEMU refuses it.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole, ROOT } from './guest-console.js';
import { hmp } from './hmp-client.js';
import { createQcow2 } from '../../src/block/qcow2.js';

const PROMPT = /~ # $/;
const BOOT_TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-snapv-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const haveE2fsck = spawnSync('e2fsck', ['-V']).status === 0;

test('savevm refuses a writable raw disk, takes a read-only one', async () => {
  const image = join(dir, 'plain.raw');
  writeFileSync(image, Buffer.alloc(1 << 20));
  for (const [ro, want] of [['off', /^Error: Device 'd0' is writable but does not support snapshots\r?$/m], ['on', /^$/]] as const) {
    const mon = join(dir, `raw-${ro}.mon`);
    const g = new GuestConsole(['-nographic', '-S', '-snapshot-file', join(dir, `raw-${ro}.vsnap`), '-monitor', `unix:${mon},server=on,wait=off`,
      '-drive', `file=${image},format=raw,if=none,id=d0,readonly=${ro}`, '-device', 'virtio-blk-device,drive=d0']);
    try {
      await until('the monitor socket', () => existsSync(mon));
      assert.match(await hmp(mon, 'savevm s1'), want);
    } finally {
      g.kill();
      await g.exit(10_000);
    }
  }
});

/** A host client of a chardev socket, collecting what the guest sends. */
async function hostEnd(path: string): Promise<{ s: Socket; data: () => string }> {
  const s = connect(path);
  let data = '';
  s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  await new Promise((r) => setTimeout(r, 300)); // Vireo takes the connection before the guest writes
  return { s, data: () => data };
}

/**
 * The line of a command's output that matches `re`: the console is also the kernel's,
 * whose messages may come in between, and a long command line wraps and echoes its tail.
 */
function lineOf(out: string, re: RegExp): string {
  const line = out.split(/\r?\n/).find((l) => re.test(l));
  assert.ok(line !== undefined, `${re} in ${JSON.stringify(out)}`);
  return line;
}
const MD5 = /^[0-9a-f]{32} {2}-$/;

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const [transport, format, accel] of [
  ['device', 'qcow2', ['-smp', '1']],
  ['pci', 'qcow2', ['-smp', '2', '-accel', 'tcg,thread=multi']],
] as const) {
  test(`savevm, loadvm and -loadvm with a ${format} disk, user networking, virtio-rng and virtio-serial on virtio-${transport === 'pci' ? 'pci' : 'mmio'} (${accel.join(' ')})`, async (t) => {
    const http = createHttpServer((_req, res) => res.end('vireo-host-page\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://10.0.2.2:${(http.address() as AddressInfo).port}/`;
    const image = join(dir, `disk-${transport}.${format}`);
    await createQcow2(image, { size: 32 << 20 });
    const file = join(dir, `${transport}.vsnap`);
    const mon = join(dir, `${transport}.mon`);
    const port = join(dir, `${transport}.port`);
    const devices = ['-snapshot-file', file, ...accel,
      '-drive', `file=${image},format=${format},if=none,id=d0`, '-device', `virtio-blk-${transport},drive=d0`,
      '-netdev', 'user,id=n0', '-device', `virtio-net-${transport},netdev=n0`, '-device', `virtio-rng-${transport}`,
      '-device', `virtio-serial-${transport}`, '-device', 'virtserialport,chardev=c1,name=org.vireo.snap',
      '-chardev', `socket,id=c1,path=${port},server=on,wait=off`];
    const g = new GuestConsole(['-nographic', ...devices, '-monitor', `unix:${mon},server=on,wait=off`]);
    let g2: GuestConsole | null = null;
    const ends: Socket[] = [];
    /** What a guest has to show after each load: the saved file, a working disk, network, entropy and serial port. */
    const works = async (v: GuestConsole, data: string, label: string): Promise<void> => {
      assert.equal(lineOf(await v.run('md5sum < /mnt/data', PROMPT), MD5), data, `${label}: the file as saved`);
      // Not just the page cache: what the disk holds agrees.
      assert.equal(lineOf(await v.run('echo 3 > /proc/sys/vm/drop_caches; md5sum < /mnt/data', PROMPT), MD5), data);
      const blob = lineOf(await v.run(`dd if=/dev/urandom of=/mnt/${label} bs=64k count=16 2>/dev/null && sync && md5sum < /mnt/${label}`, PROMPT, 60_000), MD5);
      assert.equal(lineOf(await v.run(`echo 3 > /proc/sys/vm/drop_caches; md5sum < /mnt/${label}`, PROMPT), MD5), blob);
      lineOf(await v.run('head -c 16 /dev/hwrng | wc -c', PROMPT), /^\s*16$/);
      lineOf(await v.run(`wget -q -O - ${url}`, PROMPT, 60_000), /^vireo-host-page$/);
      for (const e of ends.splice(0)) e.destroy(); // the chardev serves one client at a time
      const end = await hostEnd(port);
      ends.push(end.s);
      await v.run(`echo ${label}-on-the-port > $(echo /dev/vport*p1)`, PROMPT);
      await until(`${label}-on-the-port`, () => end.data().includes(`${label}-on-the-port\n`));
    };
    try {
      await g.waitFor(PROMPT, BOOT_TIMEOUT);
      await g.run('mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 /dev/vda && mount -o commit=600 /dev/vda /mnt', PROMPT, 60_000);
      // The bundled initramfs has no udhcpc script: take the lease, then configure it by hand.
      assert.match(await g.run('ip link set eth0 up && udhcpc -i eth0 -q -n -s /bin/true', PROMPT, 60_000), /lease of 10\.0\.2\.15 obtained/);
      await g.run('ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2', PROMPT);
      const end = await hostEnd(port);
      ends.push(end.s);
      await g.run('echo before > $(echo /dev/vport*p1)', PROMPT);
      await until('before', () => end.data() === 'before\n');
      const data = lineOf(await g.run('seq 1 20000 > /mnt/data && sync && md5sum < /mnt/data', PROMPT, 60_000), MD5);

      assert.equal(await hmp(mon, 'savevm s1'), '');
      // Written through to the disk: loadvm takes the disk back too.
      const changed = lineOf(await g.run('echo changed >> /mnt/data && sync && md5sum < /mnt/data', PROMPT), MD5);
      assert.notEqual(changed, data);
      assert.equal(await hmp(mon, 'loadvm s1'), '');
      // The shell is back in its read of the command line, where it was at savevm.
      await works(g, data, 'loadvm');

      assert.equal(await hmp(mon, 'savevm s2'), '');
      await g.run('echo later >> /mnt/data && sync', PROMPT);
      g.send('\x01x'); // Ctrl-A x: quit
      assert.equal(await g.exit(60_000), 0, g.tail());

      g2 = new GuestConsole(['-nographic', ...devices, '-loadvm', 's2']);
      lineOf(await g2.run('echo resumed', PROMPT, 60_000), /^resumed$/);
      assert.doesNotMatch(g2.output, /OpenSBI/);
      await works(g2, data, 'restart');
      lineOf(await g2.run('echo $(ls /mnt)', PROMPT), /^data loadvm lost\+found restart$/);
      await g2.run('umount /mnt', PROMPT);

      // Another set of virtio devices (no virtio-rng): refused in one line.
      const rng = `virtio-rng-${transport}`;
      const other = devices.filter((a, i) => a !== rng && devices[i + 1] !== rng);
      const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'vireo.js'), '-nographic', ...other, '-loadvm', 's2'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^vireo: -loadvm s2: snapshot 's2' was taken with virtio devices .*virtio-rng-.*; this machine has /);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

      g2.send('poweroff\n');
      assert.equal(await g2.exit(60_000), 0, g2.tail());
    } finally {
      g.kill();
      g2?.kill();
      for (const s of ends) s.destroy();
      http.close();
    }
    if (!haveQemuImg) return t.skip('qemu-img not installed (apt-get install qemu-utils): image not checked');
    const check = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const list = spawnSync('qemu-img', ['snapshot', '-l', image], { encoding: 'utf8' });
    assert.match(list.stdout, /\bs1\b[^\n]*\n[^\n]*\bs2\b/, list.stdout);
    if (!haveE2fsck) return t.skip('e2fsck not installed (apt-get install e2fsprogs): file system not checked');
    const raw = `${image}.raw`;
    assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', image, raw]).status, 0);
    const fsck = spawnSync('e2fsck', ['-fn', raw], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  });
}
