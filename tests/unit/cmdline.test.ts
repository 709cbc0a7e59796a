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
  rejects(['-netdev', 'tap,id=t'], "-netdev tap,id=t: netdev type 'tap' is not supported (user or socket)");
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
  rejects(['-serial', 'pty'], '-serial pty: unsupported character device (use stdio, mon:stdio, file:PATH, null or none)');
  rejects(['-serial', 'file:'], '-serial file:: empty file name');
  rejects(['-serial', 'stdio', '-serial', 'null'], '-serial null: the virt machine has only one serial port');
});

test('-bios none/default/FILE, and file options must not be empty', () => {
  assert.deepEqual(run('-bios', 'none').bios, { kind: 'none' });
  assert.deepEqual(run('-bios', 'default').bios, { kind: 'default' });
  rejects(['-kernel', ''], '-kernel: empty file name');
  rejects(['-bios', ''], '-bios: empty file name');
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
  rejects(['-display', 'gtk'], "-display gtk: only 'none' is supported (Vireo has no graphical display)");
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
