/**
 * Bad user input gets one line on stderr naming the problem and a non-zero exit,
 * never a stack trace; a guest executing garbage keeps the host alive and responsive.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GuestConsole, ROOT, VIREO } from './guest-console.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-bad-input-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function vireo(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [VIREO, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, input: '' });
  return { status: r.status, stderr: r.stderr };
}

function assertOneLineError(args: string[], pattern: RegExp): void {
  const r = vireo(args);
  assert.equal(r.status, 1, `exit status for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vireo: /);
  assert.match(lines[0]!, pattern);
}

test('missing kernel, initrd, bios and dtb files are named', () => {
  assertOneLineError(['-nographic', '-kernel', join(dir, 'nope')], /nope: No such file or directory/);
  assertOneLineError(['-nographic', '-bios', join(dir, 'nofw')], /nofw: No such file or directory/);
  const tiny = join(dir, 'tiny.bin');
  writeFileSync(tiny, Buffer.from([0x6f, 0, 0, 0]));
  assertOneLineError(['-nographic', '-kernel', tiny, '-initrd', join(dir, 'noinitrd')], /noinitrd: No such file or directory/);
  assertOneLineError(['-nographic', '-kernel', tiny, '-dtb', join(dir, 'nodtb')], /nodtb: No such file or directory/);
  assertOneLineError(['-nographic', '-kernel', dir], /Is a directory/);
});

test('an ELF for another architecture is refused', () => {
  // The host's own executable is an ELF for this machine's architecture, not RISC-V.
  assertOneLineError(['-nographic', '-bios', 'none', '-kernel', process.execPath], /ELF for .*expected RISC-V/);
});

test('memory sizes out of range, and images that do not fit, are refused', () => {
  assertOneLineError(['-nographic', '-m', '1M'], /-m/);
  assertOneLineError(['-nographic', '-m', '64G'], /-m/);
  const big = join(dir, 'big.bin');
  writeFileSync(big, Buffer.alloc(40 * 1024 * 1024));
  assertOneLineError(['-nographic', '-m', '32M', '-kernel', big], /does not fit/);
});

test('accelerator and machine mismatches are explained', () => {
  assertOneLineError(['-M', 'virt', '-accel', 'kvm'], /KVM cannot run the riscv64 virt machine.*-accel tcg/);
  assertOneLineError(['-M', 'microvm', '-accel', 'tcg'], /microvm: needs -accel kvm/);
});

test('unknown options and bad values are refused', () => {
  assertOneLineError(['-frobnicate'], /frobnicate/);
  assertOneLineError(['-smp', 'lots'], /smp/);
  assertOneLineError(['-M', 'pc'], /pc/);
});

test('monitors: unknown -qmp and -monitor spellings, and sockets that cannot listen, are one line', () => {
  assertOneLineError(['-nographic', '-qmp', 'unix'], /^vireo: -qmp unix: unsupported monitor device/);
  assertOneLineError(['-nographic', '-qmp', 'telnet:1234'], /^vireo: -qmp telnet:1234: unsupported monitor device/);
  assertOneLineError(['-nographic', '-qmp', `unix:${join(dir, 'q.sock')},server=on,wait=sometimes`], /'wait' expects on or off, not 'sometimes'/);
  assertOneLineError(['-nographic', '-monitor', 'vc'], /^vireo: -monitor vc: unsupported monitor device/);
  assertOneLineError(['-nographic', '-monitor', 'stdio'], /cannot use stdio by multiple character devices/);
  assertOneLineError(['-mon', 'chardev=nope'], /chardev 'nope' not found/);
  assertOneLineError(['-nographic', '-qmp', `unix:${join(dir, 'no', 'such', 'dir', 'q.sock')},server=on,wait=off`],
    /-chardev socket,id=compat_monitor0: cannot listen on unix:.*q\.sock: /);
});

test('character devices and socket netdevs: bad options and unreachable peers are one line', () => {
  const sock = join(dir, 'nobody.sock');
  assertOneLineError(['-nographic', '-chardev', `socket,id=c0,path=${sock}`, '-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=c0'],
    /-chardev socket,id=c0: cannot connect to unix:.*nobody\.sock: No such file or directory/);
  assertOneLineError(['-chardev', 'bogus,id=x'], /'bogus' is not a supported chardev backend/);
  assertOneLineError(['-device', 'virtio-serial-device', '-device', 'virtconsole,chardev=nope'], /chardev 'nope' not found/);
  assertOneLineError(['-chardev', 'null,id=a', '-chardev', 'null,id=a'], /duplicate id 'a'/);
  assertOneLineError(['-nographic', '-netdev', `stream,id=n0,addr.type=unix,addr.path=${sock}`, '-device', 'virtio-net-device,netdev=n0'],
    /-netdev stream,id=n0: cannot connect to unix:.*nobody\.sock: No such file or directory/);
  assertOneLineError(['-netdev', 'dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=5000'], /needs remote\.type=inet/);
});

test('shared folders: bad -fsdev, -virtfs and virtio-9p input is named', () => {
  const file = join(dir, 'plain-file');
  writeFileSync(file, '');
  assertOneLineError(['-nographic', '-virtfs', `local,path=${join(dir, 'no-such-dir')},mount_tag=t,security_model=none`],
    /-fsdev t: path '.*no-such-dir': No such file or directory/);
  assertOneLineError(['-nographic', '-virtfs', `local,path=${file},mount_tag=t,security_model=none`], /-fsdev t: path '.*plain-file' is not a directory/);
  assertOneLineError(['-nographic', '-fsdev', `local,id=f,security_model=none`], /needs path=/);
  assertOneLineError(['-nographic', '-fsdev', `local,id=f,path=${dir},security_model=squash`], /unknown security_model 'squash'/);
  assertOneLineError(['-nographic', '-virtfs', `local,path=${dir},security_model=none`], /needs mount_tag=/);
  assertOneLineError(['-nographic', '-device', 'virtio-9p-pci,fsdev=nope,mount_tag=t'], /fsdev 'nope' not found/);
  assertOneLineError(['-nographic', '-fsdev', `local,id=f,path=${dir},security_model=none`, '-fsdev', `local,id=f,path=${dir},security_model=none`],
    /-fsdev: duplicate id 'f'/);
});

test('display and input devices: bad sizes and the microvm machine are named', () => {
  assertOneLineError(['-nographic', '-device', 'simple-framebuffer,width=5000'], /-device simple-framebuffer,width=5000: width must be 1 to 4096 pixels/);
  assertOneLineError(['-nographic', '-device', 'virtio-tablet-device,size=3'], /property 'size' not found for virtio-tablet-device/);
  assertOneLineError(['-nographic', '-M', 'microvm', '-accel', 'kvm', '-device', 'simple-framebuffer'], /-device simple-framebuffer: not available on the microvm machine/);
});

test('a guest executing random bytes traps forever but the host stays responsive', async () => {
  const junk = join(dir, 'junk.bin');
  writeFileSync(junk, randomBytes(64 * 1024));
  const g = new GuestConsole(['-nographic', '-bios', 'none', '-kernel', junk]);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(g.child.exitCode, null, `vireo died: ${g.tail()}`);
    g.send('\x01x'); // Ctrl-A x quits, as in QEMU
    assert.equal(await g.exit(10_000), 0, g.tail());
    assert.doesNotMatch(g.stderr, /internal error|Error:/);
  } finally {
    g.kill();
  }
});

test('the JIT with multi-threaded TCG is accepted (the only error is the missing kernel)', () => {
  assertOneLineError(['-nographic', '-smp', '2', '-accel', 'tcg,thread=multi,jit=on', '-kernel', join(dir, 'nope')], /^vireo: .*nope: No such file or directory$/);
});

test('-gdb: bad values, execution modes the gdbstub cannot follow, and a port in use are one line', async () => {
  assertOneLineError(['-nographic', '-gdb', 'stdio'], /^vireo: -gdb stdio: unsupported gdb device \(use tcp:\[HOST\]:PORT or none\)$/);
  assertOneLineError(['-nographic', '-gdb', 'tcp::99999'], /^vireo: -gdb tcp::99999: '99999' is not a port number/);
  assertOneLineError(['-nographic', '-s', '-accel', 'tcg,thread=multi'], /^vireo: -gdb tcp::1234: the gdbstub needs -accel tcg,thread=single,jit=off$/);
  assertOneLineError(['-nographic', '-s', '-accel', 'tcg,jit=on'], /^vireo: -gdb tcp::1234: the gdbstub needs -accel tcg,thread=single,jit=off$/);
  assertOneLineError(['-M', 'microvm', '-accel', 'kvm', '-s'], /^vireo: -gdb tcp::1234: the gdbstub is only available on the virt machine$/);
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  try {
    assertOneLineError(['-nographic', '-gdb', `tcp::${port}`], new RegExp(`^vireo: -gdb tcp::${port}: cannot listen on tcp:127\\.0\\.0\\.1:${port}: Address already in use$`));
  } finally {
    busy.close();
  }
});
