/**
 * The x86_64 microvm under KVM, as a user runs it (`vireo -accel kvm -nographic`): the
 * bundled guest boots to a shell, runs commands, sees both vCPUs with -smp 2 (and two
 * busy processes both finish), reboots, and powers off with exit status 0; with
 * -no-reboot a reboot ends the process instead. scripts/test.mjs runs this file
 * natively, or in a nested VM where /dev/kvm is missing or too slow.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from '../functional/guest-console.js';

// Debian's busybox asks the terminal for the cursor position (ESC [6n) after its prompt.
const PROMPT = /~ # (\x1b\[6n)?$/;
const BOOT_TIMEOUT = 300_000;

test('-smp 2: boots the bundled x86_64 guest, runs commands on both CPUs, reboots, powers off', async () => {
  const g = new GuestConsole(['-accel', 'kvm', '-smp', '2', '-m', '256M', '-nographic']);
  try {
    await g.waitFor(/Linux version 6\.1/, BOOT_TIMEOUT);
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    await g.run('dmesg -n 1', PROMPT); // keep kernel messages off the console while commands print
    assert.equal((await g.run('uname -m', PROMPT)).trim(), 'x86_64');
    assert.equal((await g.run('echo $((6 * 7))', PROMPT)).trim(), '42');
    assert.match(await g.run('grep -c ^processor /proc/cpuinfo', PROMPT), /^2\s*$/m);
    assert.match(await g.run('grep -m1 -o -w hypervisor /proc/cpuinfo', PROMPT), /hypervisor/);
    assert.match(await g.run('cat /sys/class/rtc/rtc0/name', PROMPT), /rtc_cmos/);
    assert.match(await g.run('date +%Y', PROMPT), new RegExp(`^${new Date().getUTCFullYear()}\\s*$`, 'm'));
    // Short loops: under a nested VM (scripts/kvm-nested.sh) two vCPUs spinning for long starve
    // the outer VM's own threads (its kernel reported soft lockups), which is not what this checks.
    const out = await g.run(
      'for i in 1 2; do (n=0; while [ $n -lt 2000 ]; do n=$((n+1)); done; echo busy-$i-done) & done; wait', PROMPT, 240_000);
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

test('virtio-blk and virtio-net under KVM; -no-reboot: a guest reboot ends the process with status 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-kvm-'));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(16 << 20));
  const server: Server = createServer((_req, res) => res.end('page-for-kvm-guest\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const g = new GuestConsole(['-accel', 'kvm', '-m', '256M', '-nographic', '-no-reboot',
    '-drive', `file=${image},format=raw`, '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0']);
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    await g.run('dmesg -n 1', PROMPT); // keep kernel messages off the console while commands print
    // Debian's busybox-static has no mkfs: write and read the raw disk, bypassing the page cache on the way back.
    await g.run('echo on-disk | dd of=/dev/vda bs=512 conv=sync 2>/dev/null && sync && echo 3 > /proc/sys/vm/drop_caches', PROMPT, 120_000);
    assert.equal((await g.run('dd if=/dev/vda bs=7 count=1 2>/dev/null', PROMPT, 60_000)).trim(), 'on-disk');
    const lease = await g.run('ip link set eth0 up && udhcpc -i eth0 -q -n -s /bin/true', PROMPT, 120_000);
    assert.match(lease, /lease of 10\.0\.2\.15/);
    await g.run('ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2', PROMPT);
    assert.equal((await g.run(`wget -q -O - http://10.0.2.2:${port}/`, PROMPT, 120_000)).trim(), 'page-for-kvm-guest');
    g.send('reboot\n');
    assert.equal(await g.exit(120_000), 0, g.tail());
  } finally {
    g.kill();
    server.close();
  }
  const written = readFileSync(image);
  assert.ok(written.includes(Buffer.from('on-disk')), 'the file reached the host image');
});

test('virtio-pci under KVM: devices found through ACPI, MSI-X interrupts, disk, network, entropy and a console; a 9p share', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-kvm-'));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(16 << 20));
  const share = join(dir, 'share');
  mkdirSync(share);
  writeFileSync(join(share, 'from-host'), 'host-file\n');
  const sock = join(dir, 'console.sock');
  const server: Server = createServer((_req, res) => res.end('page-over-pci\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const g = new GuestConsole(['-accel', 'kvm', '-m', '256M', '-nographic',
    '-drive', `file=${image},format=raw,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0',
    '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0', '-device', 'virtio-rng-pci',
    '-device', 'virtio-serial-pci', '-device', 'virtconsole,chardev=c0', '-chardev', `socket,id=c0,path=${sock},server=on,wait=off`,
    '-virtfs', `local,path=${share},mount_tag=host0,security_model=none`]);
  let consoleClient: Socket | undefined;
  try {
    await g.waitFor(PROMPT, BOOT_TIMEOUT);
    await g.run('dmesg -n 1', PROMPT);
    // Slot 0 is the host bridge, then the devices in command-line order.
    const ids = await g.run('for d in /sys/bus/pci/devices/*; do echo ${d##*/} $(cat $d/vendor $d/device); done', PROMPT);
    assert.match(ids, /0000:00:00\.0 0x1b36 0x0008/);
    assert.match(ids, /0000:00:01\.0 0x1af4 0x1042/);
    assert.match(ids, /0000:00:02\.0 0x1af4 0x1041/);
    assert.match(ids, /0000:00:03\.0 0x1af4 0x1044/);
    assert.match(ids, /0000:00:04\.0 0x1af4 0x1043/);
    await g.run('echo over-pci | dd of=/dev/vda bs=512 conv=sync 2>/dev/null && sync && echo 3 > /proc/sys/vm/drop_caches', PROMPT, 120_000);
    assert.equal((await g.run('dd if=/dev/vda bs=8 count=1 2>/dev/null', PROMPT, 60_000)).trim(), 'over-pci');
    assert.match(await g.run('dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c', PROMPT, 60_000), /^\s*16\s*$/m);
    await g.run('ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2', PROMPT);
    assert.equal((await g.run(`wget -q -O - http://10.0.2.2:${port}/`, PROMPT, 120_000)).trim(), 'page-over-pci');
    // The PCI devices' queue interrupts come as messages (MSI-X); only the virtio-mmio
    // 9p device (probed first, so virtio0) uses an IOAPIC line.
    // Only the first queue of each device and the IOAPIC lines: the console's many port
    // queues would make a long listing for the nested VM's slow serial port.
    const irqs = await g.run("grep virtio /proc/interrupts | grep -E 'IO-APIC|[.]0[[:space:]]*$'", PROMPT, 120_000);
    assert.match(irqs, /PCI-MSI.*virtio\d-req\.0/);
    assert.match(irqs, /PCI-MSI.*virtio\d-input\.0/);
    assert.doesNotMatch(irqs, /IO-APIC.*virtio\d-/);
    assert.match(irqs, /IO-APIC.*virtio0/);

    // The virtio console (hvc0: x86 has no other hvc) carries a line to the host.
    consoleClient = connect(sock);
    let fromGuest = '';
    consoleClient.on('data', (d: Buffer) => { fromGuest += d.toString('latin1'); });
    await new Promise((r) => setTimeout(r, 1000));
    await g.run('echo hello-over-hvc0 > /dev/hvc0', PROMPT, 60_000);
    for (let i = 0; i < 100 && !fromGuest.includes('hello-over-hvc0'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(fromGuest, /hello-over-hvc0/);

    // The 9p share (on virtio-mmio): the guest reads the host's file and writes its own.
    await g.run('mkdir -p /mnt && mount -t 9p -o trans=virtio,version=9p2000.L host0 /mnt', PROMPT, 60_000);
    assert.equal((await g.run('cat /mnt/from-host', PROMPT, 60_000)).trim(), 'host-file');
    await g.run('echo guest-file > /mnt/from-guest && sync', PROMPT, 60_000);
    assert.equal(readFileSync(join(share, 'from-guest'), 'utf8'), 'guest-file\n');
    g.send('poweroff\n');
    assert.equal(await g.exit(120_000), 0, g.tail());
  } finally {
    consoleClient?.destroy();
    g.kill();
    server.close();
  }
  assert.ok(readFileSync(image).includes(Buffer.from('over-pci')), 'the data reached the host image');
  rmSync(dir, { recursive: true, force: true });
});
