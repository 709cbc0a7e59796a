/**
 * The page of `npm run web` in headless Chromium: it boots the bundled guest to its shell
 * in an xterm.js terminal, a command typed there runs, and a screenshot is taken; a disk
 * image picked on the page is the guest's /dev/vda and downloads with what the guest
 * wrote. Skips, saying why, without Debian's chromium.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, browserMissing, startWebServer } from './browser.js';

const skip = browserMissing() ?? false;

/** The terminal's text as the page shows it (exposed on window by src/web/page.ts). */
declare const vireo: { terminalText(): string };

test('the page boots Linux to a shell; keystrokes reach it; a screenshot is taken', { skip, timeout: 240_000 }, async () => {
  const { url, server } = await startWebServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const dir = mkdtempSync(join(tmpdir(), 'vireo-web-'));
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the server makes the page cross-origin isolated');
    await page.click('#start');
    await page.waitForFunction(() => /^~ #\s*$/m.test(vireo.terminalText()), null, { timeout: 180_000, polling: 200 });
    assert.equal(await page.textContent('#progress'), 'shell ready');
    assert.match(await page.textContent('#status') ?? '', /^running/);
    await page.click('#terminal');
    await page.keyboard.type('uname -a\n');
    await page.waitForFunction(() => /riscv64/.test(vireo.terminalText().split('uname -a')[1] ?? ''), null, { timeout: 30_000, polling: 100 });
    const after = (await page.evaluate(() => vireo.terminalText())).split('uname -a')[1]!;
    assert.match(after, /^Linux vireo .* riscv64/m);
    assert.match(await page.textContent('#ips') ?? '', /M instructions\/s/);
    const shot = join(dir, 'page.png');
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 1000, 'the screenshot is a non-empty PNG');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Waits for the shell prompt at the end of the terminal. */
async function shellReady(page: Page): Promise<void> {
  await page.waitForFunction(() => /^~ #\s*$/m.test(vireo.terminalText()), null, { timeout: 180_000, polling: 200 });
}

/** Types `cmd` and a newline; resolves to the terminal's text after the command once `expect` matches it. */
async function run(page: Page, cmd: string, expect: RegExp, timeout = 60_000): Promise<string> {
  await page.keyboard.type(`${cmd}\n`);
  await page.waitForFunction(([c, re]) => new RegExp(re, 'm').test(vireo.terminalText().split(c).pop() ?? ''),
    [cmd, expect.source] as const, { timeout, polling: 100 });
  return (await page.evaluate(() => vireo.terminalText())).split(cmd).pop()!;
}

test('a disk picked on the page is /dev/vda; bad images get a message; Download disk has what the guest wrote', { skip, timeout: 240_000 }, async () => {
  const { url, server } = await startWebServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const file = (name: string, buffer: Buffer) => ({ name, mimeType: 'application/octet-stream', buffer });
    await page.setInputFiles('#disk', file('empty.img', Buffer.alloc(0)));
    await page.waitForFunction(() => document.getElementById('message')!.textContent !== '');
    assert.equal(await page.textContent('#message'), 'empty.img: the disk image is empty');
    await page.setInputFiles('#disk', file('odd.img', Buffer.alloc(1000)));
    await page.waitForFunction(() => /odd\.img: .*512-byte sectors/.test(document.getElementById('message')!.textContent!));
    assert.equal(await page.textContent('#diskinfo'), 'none');
    assert.equal(await page.isDisabled('#download'), true);

    const image = Buffer.alloc(4 << 20);
    image.write('host-marker', 1024);
    await page.setInputFiles('#disk', file('guest.img', image));
    await page.waitForFunction(() => /^guest\.img \(4\.0 MiB\)/.test(document.getElementById('diskinfo')!.textContent!));
    assert.equal(await page.textContent('#message'), '');
    await page.click('#start');
    await shellReady(page);
    await page.click('#terminal');
    assert.match(await run(page, 'dd if=/dev/vda bs=1024 skip=1 count=1 2>/dev/null | head -c 11; echo', /^host-marker$/), /host-marker/);
    await run(page, 'mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && echo vireo-file-content > /mnt/f && umount /mnt && ' +
      'echo vireo-disk-test | dd of=/dev/vda bs=512 seek=10 conv=fsync 2>/dev/null && echo ok-$((6*7))', /^ok-42$/, 120_000);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.equal(download.suggestedFilename(), 'guest.img');
    const saved = readFileSync((await download.path())!);
    assert.equal(saved.length, image.length);
    assert.equal(saved.indexOf('vireo-disk-test\n'), 5120, 'the dd at sector 10');
    assert.ok(saved.includes('vireo-file-content\n'), 'the file written through ext2');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.kill();
  }
});
