/**
 * The QEMU-compatible command line (src/system/cmdline.ts) and the entry point's error
 * reporting (src/system/vl.ts).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseCommandLine } from '../../src/system/cmdline.js';
import { main, userMessage, type MainEnv } from '../../src/system/vl.js';
import { UserError, type VmOptions } from '../../src/system/options.js';

const MiB = 1024 * 1024;

function run(...argv: string[]): VmOptions {
  const r = parseCommandLine(argv);
  assert.equal(r.kind, 'run');
  return (r as { options: VmOptions }).options;
}

/** Asserts the arguments are rejected with exactly this one-line message. */
function rejects(argv: string[], message: string): void {
  assert.throws(() => parseCommandLine(argv), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

test('defaults: virt, 512 MiB, one CPU, default firmware, serial on stdio', () => {
  assert.deepEqual(run(), {
    machine: 'virt',
    memBytes: 512 * MiB,
    smp: 1,
    bios: { kind: 'default' },
    serial: { kind: 'stdio' },
    nographic: false,
    noReboot: false,
    accel: { names: ['tcg'], thread: 'single' },
    drives: [],
    netdevs: [],
    devices: [],
  });
});

test('-drive, -blockdev, -netdev and -device, and the checks between them', () => {
  const o = run('-drive', 'file=a,,b.img,format=qcow2,readonly=on', '-blockdev', 'driver=raw,node-name=d1,file=x.raw',
    '-device', 'virtio-blk-pci,drive=d1', '-netdev', 'user,id=n0,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53',
    '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:12:34:56', '-device', 'virtio-rng-device');
  assert.deepEqual(o.drives, [
    { id: 'drive0', file: 'a,b.img', format: 'qcow2', readOnly: true, cache: 'writeback' },
    { id: 'd1', file: 'x.raw', format: 'raw', readOnly: false, cache: 'writeback' },
  ]);
  assert.deepEqual(o.netdevs, [{ id: 'n0', kind: 'user', hostfwd: [
    { proto: 'tcp', hostAddr: '', hostPort: 2222, guestAddr: '', guestPort: 22 },
    { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 5353, guestAddr: '', guestPort: 53 },
  ] }]);
  assert.deepEqual(o.devices, [
    { driver: 'virtio-blk-device', drive: 'drive0' },
    { driver: 'virtio-blk-pci', drive: 'd1' },
    { driver: 'virtio-net-device', netdev: 'n0', mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56] },
    { driver: 'virtio-rng-device' },
  ]);
  assert.deepEqual(run('-netdev', 'socket,id=s,listen=:1234').netdevs, [{ id: 's', kind: 'socket', listen: { host: '127.0.0.1', port: 1234 }, connect: undefined }]);
  assert.deepEqual(run('-drive', 'file=x,if=none,id=z').devices, [], 'if=none adds no device');
  rejects(['-drive', 'file=a,id=x', '-drive', 'file=b,id=x'], "-drive/-blockdev: duplicate id 'x'");
  rejects(['-drive', 'file=a,format=vmdk'], "-drive file=a,format=vmdk: unknown format 'vmdk' (raw or qcow2)");
  rejects(['-device', 'virtio-blk-device,drive=nope'], "-device virtio-blk-device: drive 'nope' not found");
  rejects(['-drive', 'file=a,if=none,id=x', '-device', 'virtio-blk-device,drive=x', '-device', 'virtio-blk-pci,drive=x'],
    "-device virtio-blk-pci: 'x' is already in use by another device");
  rejects(['-device', 'e1000'], "-device e1000: 'e1000' is not a valid device model name (-device help lists them)");
  rejects(['-netdev', 'tap,id=t'], "-netdev tap,id=t: netdev type 'tap' is not supported (user, socket, stream or dgram)");
  rejects(['-netdev', 'user,id=u,hostfwd=tcp::99999-:22'], '-netdev user,id=u,hostfwd=tcp::99999-:22: bad port 99999 in hostfwd');
  rejects(['-device', 'virtio-net-pci,mac=zz'], "-device virtio-net-pci,mac=zz: bad MAC address 'zz'");
});

test('a typical Linux boot line, with -opt and --opt spellings mixed', () => {
  const o = run('-M', 'virt', '--m', '1G', '-smp', '4', '--nographic', '-bios', 'fw.bin', '-kernel', 'Image',
    '-initrd', 'rootfs.cpio', '-append', 'console=ttyS0 earlycon', '-dtb', 'board.dtb', '-no-reboot', '-display', 'none');
  assert.equal(o.memBytes, 1024 * MiB);
  assert.equal(o.smp, 4);
  assert.equal(o.nographic, true);
  assert.deepEqual(o.bios, { kind: 'file', path: 'fw.bin' });
  assert.equal(o.kernel, 'Image');
  assert.equal(o.initrd, 'rootfs.cpio');
  assert.equal(o.append, 'console=ttyS0 earlycon');
  assert.equal(o.dtb, 'board.dtb');
  assert.equal(o.noReboot, true);
});

test('option values are taken verbatim, even when they start with a dash', () => {
  assert.equal(run('-kernel', 'k', '-append', '-v --foo').append, '-v --foo');
  assert.equal(run('-kernel', 'k', '-append', '').append, '');
});

test('-device virtio-blk-*,queue-size=N: a power of two from 4 to 1024, as QEMU checks it', () => {
  const base = ['-drive', 'file=a.img,if=none,id=d0'];
  assert.equal(run(...base, '-device', 'virtio-blk-device,drive=d0').devices[0]!.queueSize, undefined);
  assert.equal(run(...base, '-device', 'virtio-blk-pci,drive=d0,queue-size=256').devices[0]!.queueSize, 256);
  assert.equal(run(...base, '-device', 'virtio-blk-device,drive=d0,queue-size=4').devices[0]!.queueSize, 4);
  for (const v of ['2', '0', 'x']) {
    rejects([...base, '-device', `virtio-blk-device,drive=d0,queue-size=${v}`], `-device virtio-blk-device,drive=d0,queue-size=${v}: invalid queue-size property (${v}), must be > 2`);
  }
  for (const v of ['96', '2048']) {
    rejects([...base, '-device', `virtio-blk-device,drive=d0,queue-size=${v}`], `-device virtio-blk-device,drive=d0,queue-size=${v}: invalid queue-size property (${v}), must be a power of 2 (max 1024)`);
  }
  rejects(['-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0,queue-size=256'], "-device virtio-net-device,netdev=n0,queue-size=256: property 'queue-size' not found for virtio-net-device");
});

test('-m: plain numbers are MiB; K/M/G/T/B suffixes in either case; fractions need a suffix', () => {
  assert.equal(run('-m', '256').memBytes, 256 * MiB);
  assert.equal(run('-m', '256m').memBytes, 256 * MiB);
  assert.equal(run('-m', '2g').memBytes, 2048 * MiB);
  assert.equal(run('-m', '1.5G').memBytes, 1536 * MiB);
  assert.equal(run('-m', '1.G').memBytes, 1024 * MiB);
  assert.equal(run('-m', '65536K').memBytes, 64 * MiB);
  assert.equal(run('-m', `${32 * MiB}B`).memBytes, 32 * MiB);
  assert.equal(run('-m', 'size=128M').memBytes, 128 * MiB);
  assert.equal(run('-m', '3584M').memBytes, 3584 * MiB);
  // Rounded up to 8 KiB, as QEMU does.
  assert.equal(run('-m', `${16 * MiB + 1}b`).memBytes, 16 * MiB + 8192);
  assert.equal(run('-m', '64', '-m', '96').memBytes, 96 * MiB, 'the last -m wins');
});

test('-m: bad syntax and sizes out of range', () => {
  const syntax = 'expects a size in MiB, or with a K, M, G or T suffix (e.g. 512 or 1G)';
  for (const v of ['512MB', '512MiB', '1.5', '.5G', 'abc', '-1', ' 512', '512 ', '0x200']) rejects(['-m', v], `-m ${v}: ${syntax}`);
  rejects(['-m', '8G'], '-m 8G: at most 3584M of guest RAM is supported');
  rejects(['-m', '3585'], '-m 3585: at most 3584M of guest RAM is supported');
  rejects(['-m', '8M'], '-m 8M: at least 16M of guest RAM is needed');
  rejects(['-m', '512M,slots=2'], "-m 512M,slots=2: 'slots' is not supported (no memory hotplug)");
  rejects(['-m'], '-m: requires an argument');
  rejects(['-m', ''], '-m: empty value');
  rejects(['-m', '512,'], '-m 512,: empty element in the list');
});

test('-smp: N or cpus=N from 1 to 8; topology is rejected', () => {
  assert.equal(run('-smp', '8').smp, 8);
  assert.equal(run('-smp', 'cpus=2').smp, 2);
  rejects(['-smp', '9'], '-smp 9: at most 8 CPUs are supported');
  rejects(['-smp', '0'], '-smp 0: at least 1 CPU is needed');
  rejects(['-smp', 'two'], '-smp two: expects a number of CPUs');
  rejects(['-smp', '2,sockets=2'], "-smp 2,sockets=2: 'sockets' is not supported; give only the number of CPUs (-smp N)");
});

test('-machine: virt or microvm, with dumpdtb, type= and accel=; other machines and properties are errors', () => {
  assert.equal(run('-machine', 'virt,dumpdtb=out.dtb').dumpdtb, 'out.dtb');
  assert.equal(run('-machine', 'dumpdtb=out.dtb').dumpdtb, 'out.dtb');
  assert.equal(run('-M', 'type=virt,dumpdtb=a,,b.dtb').dumpdtb, 'a,b.dtb', 'a doubled comma is a literal comma');
  assert.deepEqual(run('-M', 'virt,accel=tcg').accel.names, ['tcg']);
  assert.equal(run('-M', 'microvm').machine, 'microvm');
  assert.deepEqual(run('-M', 'virt,accel=kvm:tcg').accel.names, ['kvm', 'tcg']);
  rejects(['-M', 'spike'], "-M spike: unsupported machine type 'spike' (use -machine help to list supported machines)");
  rejects(['-M', 'virt,foo=bar'], "-M virt,foo=bar: machine property 'foo' is not supported");
  rejects(['-M', 'virt,dumpdtb='], "-M virt,dumpdtb=: 'dumpdtb' needs a value");
  rejects(['-M', 'virt,aia'], "-M virt,aia: expected '=' after 'aia'");
});

test('-machine help and -accel help list what exists, after checking the other options', () => {
  const m = parseCommandLine(['-M', 'help']);
  assert.equal(m.kind, 'help');
  assert.match((m as { text: string }).text, /^virt +RISC-V VirtIO board/m);
  const a = parseCommandLine(['-accel', 'help']);
  assert.deepEqual(a, { kind: 'help', text: 'Accelerators supported in Vireo:\ntcg\nkvm' });
  rejects(['-M', 'help', '-bogus'], '-bogus: invalid option');
});

test('-accel: tcg with a thread mode, kvm, fallback lists; others are errors', () => {
  assert.deepEqual(run('-accel', 'tcg,thread=multi').accel, { names: ['tcg'], thread: 'multi' });
  assert.deepEqual(run('-accel', 'accel=tcg').accel, { names: ['tcg'], thread: 'single' });
  // As in QEMU, thread=multi is the default with several vCPUs, with or without the JIT.
  assert.equal(run('-smp', '2').accel.thread, 'multi');
  assert.equal(run('-smp', '2', '-accel', 'tcg,thread=single').accel.thread, 'single');
  assert.equal(run('-smp', '2', '-accel', 'tcg,jit=on').accel.thread, 'multi');
  assert.equal(run('-smp', '1').accel.thread, 'single');
  assert.equal(run('-accel', 'kvm').machine, 'microvm', 'kvm without -M means the x86_64 microvm');
  assert.equal(run('-accel', 'kvm', '-M', 'virt').machine, 'virt');
  assert.equal(run('-accel', 'tcg').machine, 'virt');
  assert.deepEqual(run('-accel', 'kvm:tcg').accel.names, ['kvm', 'tcg']);
  rejects(['-accel', 'hvf'], "-accel hvf: invalid accelerator 'hvf' (use -accel help to list them)");
  rejects(['-accel', 'tcg,thread=many'], "-accel tcg,thread=many: invalid 'thread' setting 'many' (single or multi)");
  rejects(['-accel', 'thread=multi'], '-accel thread=multi: no accelerator named (use -accel tcg or -accel kvm)');
  rejects(['-accel', 'tcg,tb-size=64'], "-accel tcg,tb-size=64: accelerator property 'tb-size' is not supported");
});

test('-serial: stdio, mon:stdio, file:PATH, null, none; one serial port only', () => {
  assert.deepEqual(run('-serial', 'stdio').serial, { kind: 'stdio' });
  assert.deepEqual(run('-serial', 'mon:stdio').serial, { kind: 'stdio' });
  assert.deepEqual(run('-serial', 'file:/tmp/a,b.log').serial, { kind: 'file', path: '/tmp/a,b.log' });
  assert.deepEqual(run('-serial', 'null').serial, { kind: 'null' });
  assert.deepEqual(run('-serial', 'none').serial, { kind: 'null' });
  assert.deepEqual(run('-nographic', '-serial', 'file:x').serial, { kind: 'file', path: 'x' });
  rejects(['-serial', 'pty'], '-serial pty: unsupported character device (use stdio, mon:stdio, file:PATH, null, none, chardev:ID, tcp:, unix: or pipe:)');
  rejects(['-serial', 'file:'], '-serial file:: empty file name');
  rejects(['-serial', 'stdio', '-serial', 'null'], '-serial null: the virt machine has only one serial port');
});

test('-chardev: stdio, file, null, pipe and socket, with QEMU\'s spellings', () => {
  assert.deepEqual(run('-chardev', 'stdio,id=c0,signal=off,mux=on', '-serial', 'chardev:c0').chardevs,
    [{ id: 'c0', kind: 'stdio', signal: false, mux: true }]);
  assert.deepEqual(run('-chardev', 'file,id=f,path=a,,b.log,append=on').chardevs, [{ id: 'f', kind: 'file', path: 'a,b.log', append: true }]);
  assert.deepEqual(run('-chardev', 'null,id=n', '-chardev', 'pipe,id=p,path=/tmp/fifo').chardevs,
    [{ id: 'n', kind: 'null' }, { id: 'p', kind: 'pipe', path: '/tmp/fifo' }]);
  assert.deepEqual(run('-chardev', 'socket,id=s,path=/tmp/s.sock,server=on,wait=off').chardevs,
    [{ id: 's', kind: 'socket', addr: { type: 'unix', path: '/tmp/s.sock' }, server: true, wait: false }]);
  assert.deepEqual(run('-chardev', 'socket,id=s,host=0.0.0.0,port=4444,server=on').chardevs,
    [{ id: 's', kind: 'socket', addr: { type: 'inet', host: '0.0.0.0', port: 4444 }, server: true, wait: true }], 'wait=on by default');
  assert.deepEqual(run('-chardev', 'backend=socket,id=s,port=4444,nodelay=on').chardevs,
    [{ id: 's', kind: 'socket', addr: { type: 'inet', host: '127.0.0.1', port: 4444 }, server: false, wait: false }], 'a client');
  assert.deepEqual(run('-chardev', 'socket,id=s,path=x,server,nowait').chardevs,
    [{ id: 's', kind: 'socket', addr: { type: 'unix', path: 'x' }, server: true, wait: false }], 'the old short booleans');
  const help = parseCommandLine(['-chardev', 'help']);
  assert.equal(help.kind, 'help');
  assert.match((help as { text: string }).text, /socket/);
});

test('-chardev: bad options, unknown and duplicate ids, one frontend per chardev, one stdio', () => {
  rejects(['-chardev', 'socket,path=x'], '-chardev socket,path=x: needs id=');
  rejects(['-chardev', 'pty,id=p'], "-chardev pty,id=p: 'pty' is not a supported chardev backend (stdio, file, null, pipe, socket)");
  rejects(['-chardev', 'file,id=f'], '-chardev file,id=f: needs path=');
  rejects(['-chardev', 'socket,id=s'], '-chardev socket,id=s: needs path= (a Unix socket) or port= (TCP)');
  rejects(['-chardev', 'socket,id=s,path=x,port=3'], '-chardev socket,id=s,path=x,port=3: give either path= or host= and port=, not both');
  rejects(['-chardev', 'socket,id=s,port=0'], "-chardev socket,id=s,port=0: '0' is not a port number (1 to 65535)");
  rejects(['-chardev', 'socket,id=s,path=x,wait=off'], "-chardev socket,id=s,path=x,wait=off: 'wait' only applies with server=on");
  rejects(['-chardev', 'socket,id=s,path=x,server=maybe'], "-chardev socket,id=s,path=x,server=maybe: 'server' expects on or off, not 'maybe'");
  rejects(['-chardev', 'socket,id=s,path=x,telnet=on'], '-chardev socket,id=s,path=x,telnet=on: telnet=on is not supported');
  rejects(['-chardev', 'socket,id=s,path=x,reconnect=2'], "-chardev socket,id=s,path=x,reconnect=2: 'reconnect' is not supported for the socket backend");
  rejects(['-chardev', 'null,id=n,path=x'], "-chardev null,id=n,path=x: 'path' is not supported for the null backend");
  rejects(['-chardev', 'null,id=n,mux=on'], '-chardev null,id=n,mux=on: mux=on is only supported for stdio');
  rejects(['-chardev', 'null,id=1x'], "-chardev null,id=1x: '1x' is not a valid id (a letter, then letters, digits, '-', '.', '_')");
  rejects(['-chardev', 'null,id=a', '-chardev', 'file,id=a,path=x'], "-chardev: duplicate id 'a'");
  rejects(['-serial', 'chardev:nope'], "-serial chardev:nope: chardev 'nope' not found");
  rejects(['-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=nope'], "-device virtconsole: chardev 'nope' not found");
  rejects(['-chardev', 'null,id=c', '-serial', 'chardev:c', '-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=c'],
    "-device virtconsole: chardev 'c' is already in use by -serial chardev:c");
  rejects(['-chardev', 'stdio,id=a', '-chardev', 'stdio,id=b'], '-chardev stdio,id=b: cannot use stdio by multiple character devices');
  rejects(['-nographic', '-chardev', 'stdio,id=a'],
    '-chardev stdio,id=a: cannot use stdio by multiple character devices (the serial port is on stdio: add -serial none, or -serial chardev:a)');
  // Without -serial or -nographic the serial port gives stdio to the chardev, as QEMU's default serial is not on stdio.
  assert.deepEqual(run('-chardev', 'stdio,id=a').serial, { kind: 'null' });
  assert.deepEqual(run('-nographic', '-serial', 'none', '-chardev', 'stdio,id=a').serial, { kind: 'null' });
});

test('-serial chardev:ID, tcp:, unix: and pipe: (a chardev named serial0)', () => {
  assert.deepEqual(run('-chardev', 'null,id=x', '-serial', 'chardev:x').serial, { kind: 'chardev', id: 'x' });
  let o = run('-serial', 'tcp::4444,server=on,wait=off');
  assert.deepEqual(o.serial, { kind: 'chardev', id: 'serial0' });
  assert.deepEqual(o.chardevs, [{ id: 'serial0', kind: 'socket', addr: { type: 'inet', host: '127.0.0.1', port: 4444 }, server: true, wait: false }]);
  o = run('-serial', 'tcp:[::1]:23');
  assert.deepEqual(o.chardevs, [{ id: 'serial0', kind: 'socket', addr: { type: 'inet', host: '::1', port: 23 }, server: false, wait: false }]);
  o = run('-serial', 'unix:/tmp/a,,b,server,nowait');
  assert.deepEqual(o.chardevs, [{ id: 'serial0', kind: 'socket', addr: { type: 'unix', path: '/tmp/a,b' }, server: true, wait: false }]);
  assert.deepEqual(run('-serial', 'pipe:/tmp/p').chardevs, [{ id: 'serial0', kind: 'pipe', path: '/tmp/p' }]);
  rejects(['-serial', 'tcp:4444'], "-serial tcp:4444: '4444' is not [HOST]:PORT");
  rejects(['-serial', 'chardev:'], '-serial chardev:: needs a chardev id');
  rejects(['-serial', 'unix:'], '-serial unix:: needs a path');
});

test('-device virtio-serial, virtconsole and virtserialport: buses and port numbers as QEMU assigns them', () => {
  const o = run('-chardev', 'null,id=a', '-chardev', 'null,id=b', '-chardev', 'null,id=c',
    '-device', 'virtio-serial', '-device', 'virtio-serial-device,id=vs,max_ports=4',
    '-device', 'virtserialport,chardev=a,name=org.test.a', '-device', 'virtconsole,chardev=b,bus=vs.0', '-device', 'virtconsole,nr=3,bus=vs.0',
    '-device', 'virtconsole,chardev=c');
  assert.deepEqual(o.devices, [
    { driver: 'virtio-serial-pci' },
    { driver: 'virtio-serial-device', id: 'vs', maxPorts: 4 },
    { driver: 'virtserialport', chardev: 'a', name: 'org.test.a', nr: 1, serialBus: 0 },
    { driver: 'virtconsole', chardev: 'b', bus: 'vs.0', nr: 0, serialBus: 1 },
    { driver: 'virtconsole', nr: 3, bus: 'vs.0', serialBus: 1 },
    { driver: 'virtconsole', chardev: 'c', nr: 0, serialBus: 0 },
  ]);
  rejects(['-device', 'virtconsole'], '-device virtconsole: no virtio-serial bus (add -device virtio-serial-device or -device virtio-serial-pci)');
  rejects(['-device', 'virtio-serial-device', '-device', 'virtconsole,bus=x.0'], "-device virtconsole: bus 'x.0' not found (a virtio-serial device with id=ID has bus ID.0)");
  rejects(['-device', 'virtio-serial-device', '-device', 'virtserialport,nr=0'], '-device virtserialport: port 0 is reserved for a virtconsole');
  rejects(['-device', 'virtio-serial-device,max_ports=2', '-device', 'virtserialport', '-device', 'virtserialport'],
    '-device virtserialport: the virtio-serial bus has no free port (max_ports=2)');
  rejects(['-device', 'virtio-serial-device,max_ports=2', '-device', 'virtconsole,nr=2'], '-device virtconsole: nr=2 is out of range (max_ports=2)');
  rejects(['-device', 'virtio-serial-device', '-device', 'virtserialport,nr=1', '-device', 'virtconsole,nr=1'], '-device virtconsole: port 1 is already in use');
  rejects(['-device', 'virtio-serial-device', '-device', 'virtserialport,name=x', '-device', 'virtserialport,name=x'],
    "-device virtserialport: a port named 'x' already exists");
  rejects(['-device', 'virtio-serial-device,max_ports=32'], '-device virtio-serial-device,max_ports=32: max_ports must be 1 to 31');
  rejects(['-device', 'virtio-serial-device,chardev=x'], "-device virtio-serial-device,chardev=x: property 'chardev' not found for virtio-serial-device");
  rejects(['-device', 'virtconsole,nr=x'], '-device virtconsole,nr=x: nr must be a port number, 0 to 30');
});

test('-bios none/default/FILE, and file options must not be empty', () => {
  assert.deepEqual(run('-bios', 'none').bios, { kind: 'none' });
  assert.deepEqual(run('-bios', 'default').bios, { kind: 'default' });
  rejects(['-kernel', ''], '-kernel: empty file name');
  rejects(['-bios', ''], '-bios: empty file name');
  rejects(['-snapshot-file', ''], '-snapshot-file: empty file name');
});

test('-append and -initrd need -kernel, as in QEMU', () => {
  rejects(['-append', 'x'], '-append only allowed with -kernel option');
  rejects(['-initrd', 'x'], '-initrd only allowed with -kernel option');
});

test('unknown options, GNU-style values, -display and bare arguments are rejected', () => {
  rejects(['-cpu', 'rv64'], '-cpu: invalid option');
  rejects(['-m=512'], '-m=512: invalid option');
  rejects(['---m', '512'], '---m: invalid option');
  rejects(['-'], '-: invalid option');
  rejects(['-display', 'gtk'], "-display gtk: only 'none' is supported (Vireo has no display window)");
  rejects(['disk.img'], 'disk.img: disk images are not supported; boot with -kernel (and -initrd)');
});

test('-help and -version answer at once, ignoring what follows', () => {
  for (const h of ['-h', '-help', '--help']) {
    const r = parseCommandLine([h, '-bogus']);
    assert.equal(r.kind, 'help');
    const text = (r as { text: string }).text;
    assert.match(text, /^usage: vireo \[options\]$/m);
    for (const opt of ['-machine', '-m ', '-smp', '-bios', '-kernel', '-initrd', '-append', '-dtb', '-nographic', '-serial', '-no-reboot', '-accel', '-display', '-version']) {
      assert.ok(text.includes(`\n${opt}`) || text.includes(` ${opt}`), `help mentions ${opt}`);
    }
  }
  const v = parseCommandLine(['--version']);
  assert.deepEqual(parseCommandLine(['-version', '-bogus']), v);
  assert.equal(v.kind, 'version');
  assert.match((v as { text: string }).text, /^Vireo emulator version \d+\.\d+\.\d+ \(QEMU-compatible command line\)$/);
  rejects(['-bogus', '-h'], '-bogus: invalid option');
});

/** A main() environment that records output and what the machine was given. */
function fakeEnv(runMachine: MainEnv['runMachine']): MainEnv & { out: string; err: string } {
  const env = {
    out: '',
    err: '',
    runMachine,
    stdout: (t: string) => void (env.out += t),
    stderr: (t: string) => void (env.err += t),
  };
  return env;
}

test('main: runs the machine with the parsed options and returns its status', async () => {
  let got: VmOptions | undefined;
  const env = fakeEnv(async (o) => {
    got = o;
    return 7;
  });
  assert.equal(await main(['-m', '64', '-nographic'], env), 7);
  assert.equal(got?.memBytes, 64 * MiB);
  assert.equal(env.err, '');
});

test('main: help and version go to stdout with status 0, without running a machine', async () => {
  const env = fakeEnv(async () => assert.fail('no machine should run'));
  assert.equal(await main(['--version'], env), 0);
  assert.match(env.out, /^Vireo emulator version .*\n$/);
});

test('main: user errors and file-system errors are one line with status 1', async () => {
  let env = fakeEnv(async () => 0);
  assert.equal(await main(['-m', '8G'], env), 1);
  assert.equal(env.err, 'vireo: -m 8G: at most 3584M of guest RAM is supported\n');

  const { readFile } = await import('node:fs/promises');
  for (const [path, text] of [['/nonexistent/Image', 'No such file or directory'], ['/', 'Is a directory']] as const) {
    env = fakeEnv(async (o) => (await readFile(o.kernel!)).length);
    assert.equal(await main(['-kernel', path], env), 1);
    // readFile on a directory reports no path; either way the message is one line.
    assert.match(env.err, new RegExp(`^vireo: (${path}|read): ${text}\\n$`));
  }
});

test('main: internal errors print a stack trace with status 2', async () => {
  const env = fakeEnv(async () => {
    throw new TypeError('oops');
  });
  assert.equal(await main([], env), 2);
  assert.match(env.err, /^vireo: internal error \(a bug in Vireo\):\nTypeError: oops\n {4}at /);
});

test('userMessage falls back to Node\'s wording for codes it has no text for', () => {
  const e = Object.assign(new Error("ECONNREFUSED: connection refused, connect"), { code: 'ECONNREFUSED', syscall: 'connect' });
  assert.equal(userMessage(e), 'connect: Connection refused');
  assert.equal(userMessage(new RangeError('x')), undefined);
});

test('-fsdev, -virtfs and -device virtio-9p-*, and the checks between them', () => {
  const o = run('-fsdev', 'local,id=fs0,path=/srv/a,,b,security_model=mapped-xattr,readonly=on',
    '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=share', '-virtfs', 'local,path=/tmp,mount_tag=tmp,security_model=none',
    '-virtfs', 'local,path=/x,mount_tag=t2,security_model=passthrough,id=other');
  assert.deepEqual(o.fsdevs, [
    { id: 'fs0', path: '/srv/a,b', securityModel: 'mapped-xattr', readOnly: true },
    { id: 'tmp', path: '/tmp', securityModel: 'none', readOnly: false },
    { id: 'other', path: '/x', securityModel: 'passthrough', readOnly: false },
  ]);
  assert.deepEqual(o.devices, [
    { driver: 'virtio-9p-pci', fsdev: 'fs0', mountTag: 'share' },
    { driver: 'virtio-9p-device', fsdev: 'tmp', mountTag: 'tmp' },
    { driver: 'virtio-9p-device', fsdev: 'other', mountTag: 't2' },
  ]);
  assert.equal(run().fsdevs, undefined, 'no shares by default');
  const fs = 'local,id=f,path=/d,security_model=none';
  rejects(['-fsdev', 'local,id=f,security_model=none'], '-fsdev local,id=f,security_model=none: needs path=');
  rejects(['-fsdev', 'local,path=/d,security_model=none'], '-fsdev local,path=/d,security_model=none: needs id=');
  rejects(['-fsdev', 'local,id=f,path=/d'], '-fsdev local,id=f,path=/d: needs security_model= (passthrough, mapped-xattr, mapped-file or none)');
  rejects(['-fsdev', 'local,id=f,path=/d,security_model=open'],
    "-fsdev local,id=f,path=/d,security_model=open: unknown security_model 'open' (passthrough, mapped-xattr, mapped-file or none)");
  rejects(['-fsdev', 'proxy,id=f,path=/d,security_model=none'], "-fsdev proxy,id=f,path=/d,security_model=none: fsdev driver 'proxy' is not supported (local)");
  rejects(['-fsdev', `${fs},fmode=0600`], `-fsdev ${fs},fmode=0600: fsdev property 'fmode' is not supported`);
  rejects(['-fsdev', `${fs},readonly=maybe`], `-fsdev ${fs},readonly=maybe: 'maybe' is not on or off`);
  rejects(['-fsdev', fs, '-fsdev', fs], "-fsdev: duplicate id 'f'");
  rejects(['-virtfs', 'local,path=/d,security_model=none'], '-virtfs local,path=/d,security_model=none: needs mount_tag=');
  rejects(['-virtfs', `local,path=/d,security_model=none,mount_tag=${'t'.repeat(32)}`],
    `-virtfs local,path=/d,security_model=none,mount_tag=${'t'.repeat(32)}: mount_tag '${'t'.repeat(32)}' is longer than 31 bytes`);
  rejects(['-fsdev', fs, '-device', 'virtio-9p-pci,fsdev=f'], '-device virtio-9p-pci,fsdev=f: needs mount_tag=');
  rejects(['-fsdev', fs, '-device', 'virtio-9p-device,mount_tag=t'], '-device virtio-9p-device,mount_tag=t: needs fsdev=');
  rejects(['-device', 'virtio-9p-pci,fsdev=nope,mount_tag=t'], "-device virtio-9p-pci: fsdev 'nope' not found");
  rejects(['-fsdev', fs, '-device', 'virtio-9p-pci,fsdev=f,mount_tag=a', '-device', 'virtio-9p-device,fsdev=f,mount_tag=b'],
    "-device virtio-9p-device: fsdev 'f' is already in use by another device");
  rejects(['-device', 'virtio-blk-pci,drive=d,mount_tag=t'], "-device virtio-blk-pci,drive=d,mount_tag=t: property 'mount_tag' not found for virtio-blk-pci");
});

test('-qmp, -monitor, -mon, -S, -name: monitors on chardevs named compat_monitorN, as QEMU', () => {
  const o = run('-nographic', '-qmp', 'unix:/tmp/q.sock,server=on,wait=off', '-qmp', 'tcp:127.0.0.1:4444,server,nowait',
    '-monitor', 'unix:/tmp/h.sock,server=on,wait=off', '-S', '-name', 'guest=vm1,debug-threads=on');
  assert.deepEqual(o.chardevs, [
    { id: 'compat_monitor0', kind: 'socket', addr: { type: 'unix', path: '/tmp/q.sock' }, server: true, wait: false },
    { id: 'compat_monitor1', kind: 'socket', addr: { type: 'inet', host: '127.0.0.1', port: 4444 }, server: true, wait: false },
    { id: 'compat_monitor2', kind: 'socket', addr: { type: 'unix', path: '/tmp/h.sock' }, server: true, wait: false },
  ]);
  // An explicit monitor takes the place of the one -nographic puts behind C-a c.
  assert.deepEqual(o.monitors, [
    { mode: 'control', chardev: 'compat_monitor0' },
    { mode: 'control', chardev: 'compat_monitor1' },
    { mode: 'readline', chardev: 'compat_monitor2' },
  ]);
  assert.equal(o.startPaused, true);
  assert.equal(o.name, 'vm1');
  assert.deepEqual(run('-nographic').monitors, [{ mode: 'readline', chardev: null }]);
  assert.deepEqual(run('-serial', 'mon:stdio', '-qmp', 'unix:/tmp/q,server=on,wait=off').monitors,
    [{ mode: 'control', chardev: 'compat_monitor0' }, { mode: 'readline', chardev: null }]);
  assert.equal(run().monitors, undefined);
  assert.deepEqual(run('-nographic', '-monitor', 'none').monitors, []);
  const stdio = run('-monitor', 'stdio');
  assert.deepEqual(stdio.chardevs, [{ id: 'compat_monitor0', kind: 'stdio', signal: true, mux: false }]);
  assert.deepEqual(stdio.serial, { kind: 'null' });
  const mon = run('-chardev', 'socket,id=m,path=/tmp/m,server=on,wait=off', '-mon', 'chardev=m,mode=control');
  assert.deepEqual(mon.monitors, [{ mode: 'control', chardev: 'm' }]);
  const mux = run('-chardev', 'stdio,id=c,mux=on', '-serial', 'chardev:c', '-mon', 'chardev=c');
  assert.deepEqual(mux.monitors, [{ mode: 'readline', chardev: 'c' }]);
});

test('-qmp, -monitor and -mon: bad spellings are one line', () => {
  rejects(['-qmp', 'foo'], '-qmp foo: unsupported monitor device (use unix:PATH,server=on,wait=off, tcp:[HOST]:PORT,server=on,wait=off, stdio, chardev:ID or none)');
  rejects(['-qmp', 'unix:/tmp/q,server=maybe'], "-qmp unix:/tmp/q,server=maybe: 'server' expects on or off, not 'maybe'");
  rejects(['-qmp', 'tcp:localhost:99999,server=on'], "-qmp tcp:localhost:99999,server=on: '99999' is not a port number (1 to 65535)");
  rejects(['-qmp', 'unix:/tmp/q'], '-qmp unix:/tmp/q: a monitor needs server=on (Vireo does not connect out)');
  rejects(['-monitor', 'vc'], '-monitor vc: unsupported monitor device (use unix:PATH,server=on,wait=off, tcp:[HOST]:PORT,server=on,wait=off, stdio, chardev:ID or none)');
  rejects(['-nographic', '-monitor', 'stdio'], '-chardev stdio,id=compat_monitor0: cannot use stdio by multiple character devices '
    + '(the serial port is on stdio: add -serial none, or -serial chardev:compat_monitor0)');
  rejects(['-mon', 'chardev=nope'], "-mon chardev=nope: chardev 'nope' not found");
  rejects(['-mon', 'mode=control'], '-mon mode=control: needs chardev=ID');
  rejects(['-chardev', 'null,id=n', '-mon', 'n,mode=fast'], "-mon n,mode=fast: mode must be control or readline, not 'fast'");
  rejects(['-chardev', 'socket,id=s,path=/tmp/s,server=on,wait=off', '-serial', 'chardev:s', '-mon', 's'],
    "-mon chardev=s: chardev 's' is already in use by -serial chardev:s");
  rejects(['-name', 'x,process=y'], "-name x,process=y: 'process' is not supported");
  rejects(['-qmp'], '-qmp: requires an argument');
});

test('-gdb tcp:[HOST]:PORT, -gdb none and -s (tcp::1234); an empty host is the loopback address', () => {
  assert.deepEqual(run('-s').gdb, { addr: { type: 'inet', host: '127.0.0.1', port: 1234 }, what: '-gdb tcp::1234' });
  assert.deepEqual(run('-gdb', 'tcp::3333').gdb, { addr: { type: 'inet', host: '127.0.0.1', port: 3333 }, what: '-gdb tcp::3333' });
  assert.deepEqual(run('-gdb', 'tcp:0.0.0.0:3333,server,nowait').gdb?.addr, { type: 'inet', host: '0.0.0.0', port: 3333 });
  assert.deepEqual(run('-gdb', 'tcp:[::1]:3333,server=on,wait=off,nodelay').gdb?.addr, { type: 'inet', host: '::1', port: 3333 });
  assert.equal(run('-s', '-gdb', 'none').gdb, undefined);
  assert.equal(run().gdb, undefined);
  assert.equal(run('-S', '-s').startPaused, true);
  // Several harts stay on one thread under -gdb, unless thread=multi is asked for (and then refused when run).
  assert.equal(run('-smp', '2', '-s').accel.thread, 'single');
  assert.equal(run('-smp', '2', '-s', '-accel', 'tcg,thread=multi').accel.thread, 'multi');
});

test('-gdb: other devices, bad ports and unknown flags are one line', () => {
  rejects(['-gdb', 'unix:/tmp/g'], '-gdb unix:/tmp/g: unsupported gdb device (use tcp:[HOST]:PORT or none)');
  rejects(['-gdb', '1234'], '-gdb 1234: unsupported gdb device (use tcp:[HOST]:PORT or none)');
  rejects(['-gdb', 'tcp::'], "-gdb tcp::: '' is not a port number (1 to 65535)");
  rejects(['-gdb', 'tcp::0'], "-gdb tcp::0: '0' is not a port number (1 to 65535)");
  rejects(['-gdb', 'tcp::70000'], "-gdb tcp::70000: '70000' is not a port number (1 to 65535)");
  rejects(['-gdb', 'tcp::ab'], "-gdb tcp::ab: 'ab' is not a port number (1 to 65535)");
  rejects(['-gdb', 'tcp::1234,reconnect=1'], "-gdb tcp::1234,reconnect=1: 'reconnect=1' is not supported");
  rejects(['-gdb'], '-gdb: requires an argument');
});

test('-device simple-framebuffer[,width=W,height=H] (one at most) and virtio-keyboard/-mouse/-tablet[,serial=S]', () => {
  assert.deepEqual(run('-device', 'simple-framebuffer').devices, [{ driver: 'simple-framebuffer' }]);
  assert.deepEqual(run('-device', 'simple-framebuffer,width=1024,height=768').devices, [{ driver: 'simple-framebuffer', width: 1024, height: 768 }]);
  assert.deepEqual(run('-device', 'virtio-keyboard-device,serial=k0', '-device', 'virtio-tablet-pci', '-device', 'virtio-mouse-device').devices,
    [{ driver: 'virtio-keyboard-device', serial: 'k0' }, { driver: 'virtio-tablet-pci' }, { driver: 'virtio-mouse-device' }]);
  rejects(['-device', 'simple-framebuffer,width=0'], '-device simple-framebuffer,width=0: width must be 1 to 4096 pixels');
  rejects(['-device', 'simple-framebuffer,height=9999'], '-device simple-framebuffer,height=9999: height must be 1 to 4096 pixels');
  rejects(['-device', 'simple-framebuffer,width=wide'], '-device simple-framebuffer,width=wide: width must be 1 to 4096 pixels');
  rejects(['-device', 'simple-framebuffer,depth=16'], "-device simple-framebuffer,depth=16: property 'depth' not found for simple-framebuffer");
  rejects(['-device', 'virtio-keyboard-pci,width=3'], "-device virtio-keyboard-pci,width=3: property 'width' not found for virtio-keyboard-pci");
  rejects(['-device', 'simple-framebuffer', '-device', 'simple-framebuffer'], '-device simple-framebuffer: the machine has room for one');
});
