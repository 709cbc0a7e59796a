/**
 * Virtio devices seen from inside the bundled RISC-V guest, as a user attaches them:
 * raw and qcow2 disks on virtio-mmio and virtio-pci keep an ext4 file system the guest
 * made across boots (with no I/O scheduler in the guest), and stay clean for qemu-img check and the host's e2fsck; SIGTERM shuts
 * down cleanly, writing back what a qcow2 disk kept for the guest's next flush; user networking gives DHCP, reaches an HTTP
 * server on the host's loopback and forwards a host port to a guest service; virtio-rng
 * feeds /dev/hwrng.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';
import { createQcow2 } from '../../src/block/qcow2.js';
import { openBlockBackend } from '../../src/block/block.js';

const PROMPT = /~ # $/;
const BOOT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-virtio-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function boot(args: string[]): Promise<GuestConsole> {
  const g = new GuestConsole(['-nographic', ...args]);
  await g.waitFor(PROMPT, BOOT);
  return g;
}

async function powerOff(g: GuestConsole): Promise<void> {
  g.send('poweroff\n');
  assert.equal(await g.exit(60_000), 0, g.tail());
}

const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const haveE2fsck = spawnSync('e2fsck', ['-V']).status === 0;

test('SIGTERM is a clean shutdown, as in QEMU: a qcow2 disk keeps what the guest wrote without a flush', async () => {
  const image = join(dir, 'sigterm.qcow2');
  await createQcow2(image, { size: 16 << 20 });
  const g = await boot(['-drive', `file=${image},format=qcow2,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0']);
  try {
    // O_DIRECT: the write reaches the disk, and the guest never flushes it. The new
    // cluster's table entry waits in Vireo's memory for a flush.
    await g.run('echo vireo-sigterm | dd of=/dev/vda bs=512 seek=5000 conv=sync oflag=direct', PROMPT);
    g.child.kill('SIGTERM');
    assert.equal(await g.exit(30_000), 0, g.tail());
    assert.match(g.stderr, /^vireo: terminating on signal 15$/m);
  } finally {
    g.kill();
  }
  const b = await openBlockBackend({ file: image, readOnly: true, cache: 'writeback' });
  try {
    const back = new Uint8Array(16);
    await b.read(5000 * 512, back);
    assert.equal(new TextDecoder().decode(back.subarray(0, 14)), 'vireo-sigterm\n');
  } finally {
    await b.close();
  }
  if (haveQemuImg) assert.equal(spawnSync('qemu-img', ['check', image], { encoding: 'utf8' }).status, 0, 'qemu-img check: clean, no leaks');
});

for (const [format, transport] of [
  ['raw', 'virtio-blk-device'], ['raw', 'virtio-blk-pci'], ['qcow2', 'virtio-blk-device'], ['qcow2', 'virtio-blk-pci'],
] as const) {
  test(`${format} disk on ${transport}: an ext4 file system made by the guest survives a reboot and checks clean`, async (t) => {
    const image = join(dir, `disk-${transport}.${format}`);
    if (format === 'raw') writeFileSync(image, Buffer.alloc(32 << 20));
    else await createQcow2(image, { size: 32 << 20 });
    const args = ['-drive', `file=${image},format=${format},if=none,id=d0`, '-device', `${transport},drive=d0`];
    const g = await boot(args);
    try {
      // The bundled guest's init takes the virtio disk's I/O scheduler away (images/README.md).
      assert.match(await g.run('cat /sys/block/vda/queue/scheduler', PROMPT), /^\[none\]/m);
      await g.run('mkfs.ext4 -q /dev/vda && mount -t ext4 /dev/vda /mnt', PROMPT, 60_000);
      await g.run('seq 1 20000 > /mnt/data && mkdir /mnt/dir && cp /mnt/data /mnt/dir/copy && sync', PROMPT);
      const sum = (await g.run('md5sum < /mnt/data', PROMPT)).trim();
      assert.match(sum, /^[0-9a-f]{32}/);
      await g.run('umount /mnt', PROMPT);
      await powerOff(g);
      const h = await boot(args);
      try {
        await h.run('mount -t ext4 /dev/vda /mnt', PROMPT);
        assert.equal((await h.run('md5sum < /mnt/data', PROMPT)).trim(), sum);
        assert.equal((await h.run('md5sum < /mnt/dir/copy', PROMPT)).trim(), sum);
        await h.run('umount /mnt', PROMPT);
        await powerOff(h);
      } finally {
        h.kill();
      }
    } finally {
      g.kill();
    }
    if (!haveQemuImg) return t.skip('qemu-img not installed (apt-get install qemu-utils): image not checked');
    if (format === 'qcow2') {
      const check = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
    }
    // The file system itself, as the host sees the image.
    if (!haveE2fsck) return t.skip('e2fsck not installed (apt-get install e2fsprogs): file system not checked');
    const raw = format === 'raw' ? image : `${image}.raw`;
    if (format === 'qcow2') assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', image, raw]).status, 0);
    const fsck = spawnSync('e2fsck', ['-fn', raw], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  });
}

test('user networking: DHCP, HTTP to the host loopback, a download and an upload with the offloads, ping, hostfwd into the guest; virtio-rng', async () => {
  // 3 MiB that no compression or pattern could fake.
  const big = Buffer.alloc(3 << 20);
  for (let i = 0, x = 1; i < big.length; i++) big[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  const server: Server = createServer((req, res) => res.end(req.url === '/big' ? big : 'vireo-host-page\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const httpPort = (server.address() as AddressInfo).port;
  // A sink on the host: the MD5 of each connection's bytes once the guest closes it.
  const uploads: Promise<string>[] = [];
  const sink = createNetServer((s) => {
    const md5 = createHash('md5');
    uploads.push(new Promise((resolve) => {
      s.on('data', (d) => md5.update(d));
      s.on('end', () => resolve(md5.digest('hex')));
    }));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkPort = (sink.address() as AddressInfo).port;
  // Pick a free host port for the forward.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const fwdPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const g = await boot(['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${fwdPort}-:7777`, '-device', 'virtio-net-device,netdev=n0',
    '-device', 'virtio-rng-pci']);
  try {
    // The bundled initramfs has no udhcpc script: take the lease, then configure it by hand.
    const lease = await g.run('ip link set eth0 up && udhcpc -i eth0 -q -n -s /bin/true', PROMPT, 60_000);
    assert.match(lease, /lease of 10\.0\.2\.15 obtained from 10\.0\.2\.2/);
    await g.run('ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2', PROMPT);
    // The console is also the kernel's: its messages may come between the lines.
    const page = await g.run(`wget -q -O - http://10.0.2.2:${httpPort}/`, PROMPT, 60_000);
    assert.ok(page.split(/\r?\n/).includes('vireo-host-page'), page);
    // The driver took CSUM, GUEST_CSUM, GUEST_TSO4 and HOST_TSO4 (bits 0, 1, 7 and 11 of the
    // negotiated features): TCP segments of up to 64 KiB with partial checksums, both ways, arrive byte-exact.
    const features = /^[01]{64}$/m.exec(await g.run('cat /sys/class/net/eth0/device/features', PROMPT))?.[0] ?? '';
    assert.equal(features[0] + features[1] + features[7] + features[11], '1111', features);
    const fetched = await g.run(`wget -q -O - http://10.0.2.2:${httpPort}/big | md5sum`, PROMPT, 60_000);
    assert.equal(/^[0-9a-f]{32}/m.exec(fetched)?.[0], createHash('md5').update(big).digest('hex'), fetched);
    const sent = /^[0-9a-f]{32}/m.exec(await g.run(`seq 1 200000 > /tmp/up && md5sum < /tmp/up && nc 10.0.2.2 ${sinkPort} < /tmp/up`, PROMPT, 60_000))?.[0];
    assert.equal(await uploads[0], sent);
    assert.match(await g.run('ping -c 1 10.0.2.2', PROMPT, 30_000), /1 packets received/);
    // A guest service behind hostfwd: the host connects and reads what the guest sends.
    await g.run('(echo guest-says-hi | nc -l -p 7777 &) ; sleep 1', PROMPT);
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect(fwdPort, '127.0.0.1');
      let data = '';
      s.on('data', (d) => { data += d; });
      s.on('end', () => resolve(data));
      s.on('error', reject);
      setTimeout(() => { s.destroy(); resolve(data); }, 20_000);
    });
    assert.match(got, /guest-says-hi/);
    assert.match(await g.run('head -c 32 /dev/hwrng | wc -c', PROMPT), /^32\s*$/m);
    await powerOff(g);
  } finally {
    g.kill();
    server.close();
    sink.close();
  }
});

test('two VMs on one Ethernet segment through a socket netdev: ping and a TCP transfer', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const a = await boot(['-netdev', `socket,id=s,listen=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=s,mac=52:54:00:00:00:0a']);
  const b = await boot(['-netdev', `socket,id=s,connect=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=s,mac=52:54:00:00:00:0b']);
  try {
    await a.run('ip link set eth0 up && ip addr add 192.168.7.1/24 dev eth0', PROMPT);
    await b.run('ip link set eth0 up && ip addr add 192.168.7.2/24 dev eth0', PROMPT);
    assert.match(await b.run('ping -c 2 192.168.7.1', PROMPT, 30_000), /2 packets received/);
    await a.run('(nc -l -p 5000 | md5sum > /tmp/got &) ; sleep 1', PROMPT);
    const sent = (await b.run('seq 1 30000 > /tmp/s && md5sum < /tmp/s && nc 192.168.7.1 5000 < /tmp/s', PROMPT, 60_000)).trim().split(/\s/)[0]!;
    assert.match(sent, /^[0-9a-f]{32}$/);
    await new Promise((r) => setTimeout(r, 2000)); // the listener's md5sum finishes after the sender closes
    assert.equal((await a.run('cat /tmp/got', PROMPT)).trim().split(/\s/)[0], sent);
    await powerOff(a);
    await powerOff(b);
  } finally {
    a.kill();
    b.kill();
  }
});
