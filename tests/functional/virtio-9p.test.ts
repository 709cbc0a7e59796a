/**
 * A host folder shared with the bundled RISC-V guest over virtio-9p, as a user does it:
 * `-virtfs` (virtio-mmio) for a writable share and `-fsdev` + `-device virtio-9p-pci`
 * for a read-only one. The guest mounts both with `mount -t 9p -o trans=virtio`, reads
 * what the host wrote, writes what the host then reads back identically, makes and
 * removes directories, renames, links, and is refused every change to the read-only
 * share. Skipped (saying so) when the bundled kernel has no 9p support.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';

const PROMPT = /~ # $/;
const BOOT = 120_000;

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');
/** The checksum md5sum printed (long command lines wrap on the console, so search the output). */
const printedSum = (out: string) => /\b[0-9a-f]{32}\b/.exec(out)?.[0] ?? `no checksum in ${JSON.stringify(out)}`;

test('virtio-9p: the guest mounts host folders, reads and writes them; a read-only share refuses writes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-9p-guest-'));
  const rw = join(dir, 'rw');
  const ro = join(dir, 'ro');
  mkdirSync(rw);
  mkdirSync(ro);
  writeFileSync(join(rw, 'from-host.txt'), 'written by the host\n');
  const blob = randomBytes(1 << 20);
  writeFileSync(join(rw, 'blob.bin'), blob);
  writeFileSync(join(ro, 'readme'), 'read-only content\n');
  const g = new GuestConsole(['-nographic',
    '-virtfs', `local,path=${rw},mount_tag=hostrw,security_model=none`,
    '-fsdev', `local,id=fsro,path=${ro},security_model=none,readonly=on`, '-device', 'virtio-9p-pci,fsdev=fsro,mount_tag=hostro']);
  // Without ls's colours.
  const run = async (cmd: string) => (await g.run(cmd, PROMPT, 60_000)).replace(/\x1b\[[0-9;]*m/g, '');
  try {
    await g.waitFor(PROMPT, BOOT);
    assert.match(await run('mkdir -p /mnt/rw /mnt/ro && mount -t 9p -o trans=virtio,version=9p2000.L hostrw /mnt/rw && echo mounted'), /mounted/);
    assert.match(await run('mount -t 9p -o trans=virtio,version=9p2000.L hostro /mnt/ro && echo mounted'), /mounted/);

    // The guest reads what the host wrote, byte for byte.
    assert.match(await run('cat /mnt/rw/from-host.txt'), /written by the host/);
    assert.equal(printedSum(await run('md5sum < /mnt/rw/blob.bin')), md5(blob));

    // The host reads what the guest wrote, with the checksum the guest computed.
    const sum = printedSum(await run('seq 1 40000 > /mnt/rw/from-guest.txt && sync && md5sum < /mnt/rw/from-guest.txt'));
    assert.match(sum, /^[0-9a-f]{32}$/);
    assert.equal(md5(readFileSync(join(rw, 'from-guest.txt'))), sum);
    assert.match(await run('cp /mnt/rw/blob.bin /mnt/rw/copy.bin && sync && echo copied'), /^copied/m);
    assert.ok(readFileSync(join(rw, 'copy.bin')).equals(blob), 'a copy made in the guest is identical on the host');

    // Directories, listings, renames, links, removal.
    await run('mkdir /mnt/rw/sub && echo inner > /mnt/rw/sub/inner.txt && mv /mnt/rw/sub/inner.txt /mnt/rw/sub/moved.txt');
    await run('ln -s moved.txt /mnt/rw/sub/link && chmod 600 /mnt/rw/sub/moved.txt');
    assert.deepEqual(readdirSync(join(rw, 'sub')).sort(), ['link', 'moved.txt']);
    assert.equal(readFileSync(join(rw, 'sub', 'link'), 'utf8'), 'inner\n');
    const ls = await run('ls -l /mnt/rw/sub');
    assert.match(ls, /-rw------- .* moved\.txt/);
    assert.match(ls, /link -> /);
    assert.match(await run('cat /mnt/rw/sub/link'), /inner/);
    mkdirSync(join(rw, 'made-by-host'));
    assert.match(await run('ls /mnt/rw'), /made-by-host/);
    await run('rm -r /mnt/rw/sub /mnt/rw/copy.bin && rmdir /mnt/rw/made-by-host');
    assert.deepEqual(readdirSync(rw).sort(), ['blob.bin', 'from-guest.txt', 'from-host.txt']);
    assert.match(await run('df /mnt/rw'), /hostrw/);

    // The read-only share: reads work, every change is refused.
    assert.match(await run('cat /mnt/ro/readme'), /read-only content/);
    const refused = await run('echo x > /mnt/ro/new; mkdir /mnt/ro/d; rm /mnt/ro/readme; echo y >> /mnt/ro/readme; echo end');
    assert.equal(refused.match(/Read-only file system/g)?.length, 4, refused);
    assert.deepEqual(readdirSync(ro), ['readme']);
    assert.equal(readFileSync(join(ro, 'readme'), 'utf8'), 'read-only content\n');

    await run('umount /mnt/rw && umount /mnt/ro && echo unmounted');
    g.send('poweroff\n');
    assert.equal(await g.exit(60_000), 0, g.tail());
    assert.doesNotMatch(g.stderr, /internal error|Error:/);
  } finally {
    g.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
