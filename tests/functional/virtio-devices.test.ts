/**
 * Virtio devices seen from inside the bundled RISC-V guest, as a user attaches them:
 * a disk on virtio-mmio and one on virtio-pci (raw and qcow2) keep a file system across
 * boots and stay consistent for qemu-img; user networking gives DHCP, reaches an HTTP
 * server on the host's loopback and forwards a host port to a guest service; virtio-rng
 * feeds /dev/hwrng.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';
import { createQcow2 } from '../../src/block/qcow2.js';

const PROMPT = /~ # $/;
const BOOT = 120_000;
const dir = mkdtempSync(join(tmpdir(), 'vireo-virtio-'));

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

for (const [format, transport] of [['raw', 'virtio-blk-device'], ['qcow2', 'virtio-blk-pci']] as const) {
  test(`${format} disk on ${transport}: a file system survives a reboot${format === 'qcow2' ? ' and qemu-img check is clean' : ''}`, async () => {
    const image = join(dir, `disk.${format}`);
    if (format === 'raw') writeFileSync(image, Buffer.alloc(32 << 20));
    else await createQcow2(image, { size: 32 << 20 });
    const args = ['-drive', `file=${image},format=${format},if=none,id=d0`, '-device', `${transport},drive=d0`];
    const g = await boot(args);
    try {
      await g.run('mkfs.ext2 -q /dev/vda && mount /dev/vda /mnt', PROMPT);
      await g.run('seq 1 20000 > /mnt/data && sync', PROMPT);
      const sum = (await g.run('md5sum < /mnt/data', PROMPT)).trim();
      assert.match(sum, /^[0-9a-f]{32}/);
      await g.run('umount /mnt', PROMPT);
      await powerOff(g);
      const h = await boot(args);
      try {
        await h.run('mount /dev/vda /mnt', PROMPT);
        assert.equal((await h.run('md5sum < /mnt/data', PROMPT)).trim(), sum);
        await h.run('umount /mnt', PROMPT);
        await powerOff(h);
      } finally {
        h.kill();
      }
    } finally {
      g.kill();
    }
    if (format === 'qcow2' && haveQemuImg) {
      const check = spawnSync('qemu-img', ['check', image], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
    }
  });
}

test('user networking: DHCP, HTTP to the host loopback, ping, hostfwd into the guest; virtio-rng', async () => {
  const server: Server = createServer((_req, res) => res.end('vireo-host-page\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const httpPort = (server.address() as AddressInfo).port;
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
    assert.equal((await g.run(`wget -q -O - http://10.0.2.2:${httpPort}/`, PROMPT, 60_000)).trim(), 'vireo-host-page');
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
