/**
 * Command-line behaviours seen from outside: -machine dumpdtb writes a device tree and
 * exits, -serial file:PATH sends the console to a file, the least guest RAM (-m 16M)
 * runs, --version answers.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, VIREO } from './guest-console.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const vireo = (args: string[]) => spawnSync(process.execPath, [VIREO, ...args], { cwd: ROOT, encoding: 'latin1', timeout: 120_000, input: '' });

test('-machine dumpdtb=FILE writes the device tree and exits 0', () => {
  const file = join(dir, 'virt.dtb');
  const r = vireo(['-M', `virt,dumpdtb=${file}`, '-m', '256M']);
  assert.equal(r.status, 0, r.stderr);
  const blob = readFileSync(file);
  assert.equal(blob.readUInt32BE(0), 0xd00dfeed, 'DTB magic');
  assert.equal(blob.readUInt32BE(4), blob.length, 'totalsize');
  assert.ok(blob.includes(Buffer.from('riscv,plic0')));
  // The bundled boot's command line and initrd are described, as QEMU does for its -append/-initrd.
  assert.ok(blob.includes(Buffer.from('console=ttyS0')));
  assert.ok(blob.includes(Buffer.from('linux,initrd-start')));
});

test('-accel kvm:tcg falls back to the software CPU for the riscv64 virt board', () => {
  const file = join(dir, 'fallback.dtb');
  const r = vireo(['-M', `virt,dumpdtb=${file}`, '-accel', 'kvm:tcg']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(file).readUInt32BE(0), 0xd00dfeed);
});

test('-serial file:PATH receives the guest console', () => {
  const file = join(dir, 'console.txt');
  const r = vireo(['-M', 'virt', '-bios', 'none', '-kernel', join(ROOT, 'bench', 'guest', 'cpu.elf'), '-serial', `file:${file}`, '-display', 'none']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '', 'nothing on stdout');
  assert.match(readFileSync(file, 'latin1'), /^checksum [0-9a-f]{16}\n$/);
});

test('-m 16M, the least guest RAM, runs a guest', () => {
  // M-mode code with no firmware: 'v' and 'm' to the UART at 0x10000000, then power off (the test finisher at 0x100000).
  const program = [0x100002b7, 0x07600313, 0x00628023, 0x06d00313, 0x00628023, 0x001002b7, 0x00005337, 0x55530313, 0x0062a023, 0x0000006f];
  const kernel = join(dir, 'uart.bin');
  writeFileSync(kernel, new Uint8Array(new Uint32Array(program).buffer));
  const r = vireo(['-M', 'virt', '-m', '16M', '-bios', 'none', '-kernel', kernel, '-nographic']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'vm');
});

test('--version names Vireo and its version', () => {
  const r = vireo(['--version']);
  assert.equal(r.status, 0);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.match(r.stdout, new RegExp(`Vireo emulator version ${pkg.version.replace(/\./g, '\\.')}`));
});
