/**
 * The page of `npm run web` in headless Chromium: it boots the bundled guest to its shell
 * in an xterm.js terminal, a command typed there runs, and a screenshot is taken; a disk
 * image picked on the page is the guest's /dev/vda and downloads with what the guest
 * wrote. Skips, saying why, without Debian's chromium.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, browserMissing, startWebServer } from './browser.js';

const skip = browserMissing() ?? false;

/** The page's terminal and its text as shown (exposed on window by src/web/page.ts). */
declare const vireo: {
  terminalText(): string;
  term: { cols: number; rows: number; paste(s: string): void; textarea: HTMLTextAreaElement | undefined };
  fit: { proposeDimensions(): { cols: number; rows: number } | undefined };
};

/** Opens the page of `npm run web` in a fresh Chromium, runs `body` on it, and checks the page raised no error. */
async function withPage(body: (page: Page) => Promise<void>): Promise<void> {
  const { url, server } = await startWebServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await body(page);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.kill();
  }
}

test('the page boots Linux to a shell; keystrokes reach it; a screenshot is taken', { skip, timeout: 240_000 }, () => withPage(async (page) => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-web-'));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}));

/** Waits for the shell prompt at the end of the terminal. */
async function shellReady(page: Page): Promise<void> {
  await page.waitForFunction(() => /^~ #\s*$/m.test(vireo.terminalText()), null, { timeout: 180_000, polling: 200 });
}

/** Types `cmd` and a newline; resolves to the terminal's text after the command once `expect` matches it. */
async function run(page: Page, cmd: string, expect: RegExp, timeout = 60_000): Promise<string> {
  await page.keyboard.type(`${cmd}\n`);
  await page.waitForFunction(([c, re]) => new RegExp(re, 'm').test(vireo.terminalText().split(c).pop() ?? ''),
    [cmd, expect.source] as const, { timeout, polling: 100 }).catch(async (e: Error) => {
    // The machine's state and speed tell a guest waiting for something (~0 instructions/s) from a busy one.
    const machine = `state ${await page.textContent('#status')}, speed ${await page.textContent('#ips')}`;
    throw new Error(`${cmd}: no ${expect} in ${JSON.stringify((await page.evaluate(() => vireo.terminalText())).trimEnd().slice(-600))} (${machine}; ${e.message})`);
  });
  return (await page.evaluate(() => vireo.terminalText())).split(cmd).pop()!;
}

test('a disk picked on the page is /dev/vda; bad images get a message; Download disk has what the guest wrote', { skip, timeout: 240_000 }, () => withPage(async (page) => {
  const file = (name: string, buffer: Buffer) => ({ name, mimeType: 'application/octet-stream', buffer });
  await page.setInputFiles('#disk', file('empty.img', Buffer.alloc(0)));
  await page.waitForFunction(() => document.getElementById('message')!.textContent !== '');
  assert.equal(await page.textContent('#message'), 'empty.img: the disk image is empty');
  await page.setInputFiles('#disk', file('odd.img', Buffer.alloc(1000)));
  await page.waitForFunction(() => /odd\.img: .*512-byte sectors/.test(document.getElementById('message')!.textContent!));
  // A file dropped on the page goes the same way as a picked one.
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(4).fill(0x51)], 'dropped.img'));
    document.getElementById('terminal')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(() => /^dropped\.img: .*512-byte sectors/.test(document.getElementById('message')!.textContent!));
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
  // mkfs's UUIDs come from getrandom(), which waits until the kernel has entropy: the page's virtio-rng gives it.
  await run(page, 'cat /sys/class/misc/hw_random/rng_current; head -c 8 /dev/random | wc -c', /^virtio_rng\.\d+\s+8$/);
  await run(page, 'mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && echo vireo-file-content > /mnt/f && umount /mnt && ' +
    'echo vireo-disk-test | dd of=/dev/vda bs=512 seek=10 conv=fsync 2>/dev/null && echo ok-$((6*7))', /^ok-42$/, 120_000);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(download.suggestedFilename(), 'guest.img');
  const saved = readFileSync((await download.path())!);
  assert.equal(saved.length, image.length);
  assert.equal(saved.indexOf('vireo-disk-test\n'), 5120, 'the dd at sector 10');
  assert.ok(saved.includes('vireo-file-content\n'), 'the file written through ext2');
}));

test('Stop then Start continues the guest; paste reaches it; the terminal fits the window; Reset reboots', { skip, timeout: 240_000 }, () => withPage(async (page) => {
  await page.click('#start');
  await shellReady(page);
  await page.click('#terminal');
  await run(page, 'X=kept-$((40+2)); echo set', /^set$/);

  // A counter printing every 0.2 s: paused by Stop, it goes on from the same value after Start.
  await page.keyboard.type('i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo c$i; sleep 0.2; done; echo loop-$((1+1))\n');
  await page.waitForFunction(() => /^c4$/m.test(vireo.terminalText()), null, { timeout: 60_000, polling: 50 });
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status')!.textContent === 'stopped');
  const paused = await page.evaluate(() => vireo.terminalText());
  await page.waitForTimeout(1500);
  assert.equal(await page.evaluate(() => vireo.terminalText()), paused, 'nothing runs while stopped');
  await page.click('#start');
  await page.waitForFunction(() => /^loop-2$/m.test(vireo.terminalText()), null, { timeout: 60_000, polling: 100 });
  const counts = [...(await page.evaluate(() => vireo.terminalText())).matchAll(/^c(\d+)$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(counts, Array.from({ length: 20 }, (_, k) => k + 1), 'the counter went on from where it was, once each');
  await page.click('#terminal'); // the buttons took the focus
  assert.match(await run(page, 'echo [$X]', /^\[kept-42\]$/), /\[kept-42\]/);

  // A paste, as the browser delivers it (a paste event on xterm's textarea): a long line, checked by its md5 in the guest.
  const line = `echo ${Array.from({ length: 60 }, (_, k) => `w${k}-paste`).join(' ')}`;
  await page.evaluate((text) => {
    const dt = new DataTransfer();
    dt.setData('text/plain', text);
    vireo.term.textarea!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, `${line} | md5sum\n`);
  const echoed = `${line.slice(5)}\n`;
  const md5 = createHash('md5').update(echoed).digest('hex');
  await page.waitForFunction((h) => vireo.terminalText().includes(h), md5, { timeout: 60_000, polling: 100 });
  assert.ok(line.length > 500);

  // The terminal follows the window (FitAddon); the guest's UART console carries no size.
  const before = await page.evaluate(() => ({ cols: vireo.term.cols, rows: vireo.term.rows }));
  await page.setViewportSize({ width: 640, height: 420 });
  await page.waitForFunction((b) => vireo.term.cols < b.cols && vireo.term.rows < b.rows, before, { timeout: 10_000 });
  const after = await page.evaluate(() => ({ cols: vireo.term.cols, rows: vireo.term.rows, fit: vireo.fit.proposeDimensions() }));
  assert.deepEqual({ cols: after.cols, rows: after.rows }, after.fit, 'xterm has the size FitAddon computes for its box');

  // Reset boots again: the boot log appears, and the shell variable is gone.
  await page.click('#reset');
  await page.waitForFunction(() => /Linux version/.test(vireo.terminalText()), null, { timeout: 60_000, polling: 100 });
  await shellReady(page);
  assert.equal(await page.textContent('#progress'), 'shell ready');
  await page.click('#terminal');
  assert.match(await run(page, 'echo [$X]', /^\[\]$/), /^\[\]$/m);
}));

test('harts > 1 in a cross-origin isolated page: one Web Worker per hart; Linux sees them all; Stop/Start and Reset', { skip, timeout: 240_000 }, () => withPage(async (page) => {
  await page.fill('#smp', '2');
  await page.click('#reset'); // the settings shown apply at a reset; before the first start, it waits for it
  await page.click('#start');
  // The hart workers' live instruction counts (the boot keeps them busy).
  await page.waitForFunction(() => parseFloat(document.getElementById('ips')!.textContent ?? '') > 0, null, { timeout: 60_000 });
  await shellReady(page);
  assert.equal(await page.textContent('#status'), 'running: one Web Worker per hart (2)');
  await page.click('#terminal');
  assert.match(await run(page, 'grep -c ^processor /proc/cpuinfo', /^2$/), /^2$/m);
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status')!.textContent === 'stopped');
  await page.click('#start');
  await page.click('#terminal');
  assert.match(await run(page, 'echo again-$((2+3))', /^again-5$/), /again-5/);
  await page.click('#reset');
  await page.waitForFunction(() => /Linux version/.test(vireo.terminalText()), null, { timeout: 60_000, polling: 100 });
  await shellReady(page);
}));

/** Types `text` on the focused canvas as a US keyboard would: shifted characters with Shift held (keyboard.type would not press it). */
async function typeKeys(page: Page, text: string): Promise<void> {
  const shifted: Record<string, string> = { '$': 'Digit4', '(': 'Digit9', ')': 'Digit0', '*': 'Digit8', '>': 'Period' };
  for (const c of text) {
    if (/[A-Z]/.test(c)) await page.keyboard.press(`Shift+Key${c}`);
    else if (shifted[c] !== undefined) await page.keyboard.press(`Shift+${shifted[c]}`);
    else await page.keyboard.type(c);
  }
}

test('the framebuffer: the guest console draws on the canvas (not blank); keys typed on the canvas reach its shell', { skip, timeout: 240_000 }, () => withPage(async (page) => {
  assert.equal(await page.isHidden('#screen'), true, 'no canvas without the framebuffer');
  await page.check('#framebuffer');
  assert.equal(await page.inputValue('#append'), 'console=ttyS0 console=tty0', 'the shell goes to the framebuffer console');
  await page.click('#reset'); // the settings shown apply at a reset; before the first start, it waits for it
  await page.click('#start');
  await page.waitForFunction(() => /Run \/init/.test(vireo.terminalText()), null, { timeout: 180_000, polling: 200 });
  assert.equal(await page.isVisible('#canvas'), true);
  // fbcon's text: pixels that are not black.
  await page.waitForFunction(() => {
    const c = document.getElementById('canvas') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i]! | d[i + 1]! | d[i + 2]!) lit++;
    return c.width === 800 && lit > 2000;
  }, null, { timeout: 60_000, polling: 500 });
  // The shell on tty0 answers on the serial terminal; typed until it is there to read.
  await page.click('#canvas');
  for (let i = 0; ; i++) {
    await typeKeys(page, 'echo fb-$((6*7)) >/dev/ttyS0\n');
    const ok = await page.waitForFunction(() => /^fb-42$/m.test(vireo.terminalText()), null, { timeout: 20_000, polling: 200 }).then(() => true, () => false);
    if (ok) break;
    assert.ok(i < 5, `no answer from the shell on the framebuffer console: ${(await page.evaluate(() => vireo.terminalText())).slice(-400)}`);
  }
  // Off again: the next Reset builds a machine without it.
  await page.uncheck('#framebuffer');
  assert.equal(await page.inputValue('#append'), 'console=ttyS0');
  await page.click('#reset');
  await page.waitForFunction(() => document.getElementById('screen')!.hidden, null, { timeout: 30_000 });
}));

test('the embedding API: a machine given its kernel as bytes talks through onSerial and powers off; a missing image is an error naming it', { skip, timeout: 120_000 }, () => withPage(async (page) => {
  const result = await page.evaluate(async () => {
    type Vm = { onSerial: ((d: Uint8Array) => void) | null; onState: ((s: string, d: string) => void) | null; start(): void; terminate(): void };
    const { VirtualMachine } = await import(new URL('vireo.js', location.href).href) as { VirtualMachine: new (o: object) => Vm };
    // M-mode code with no firmware: 'v' and 'm' to the UART at 0x10000000, then power off (the test finisher at 0x100000).
    const words = [0x100002b7, 0x07600313, 0x00628023, 0x06d00313, 0x00628023, 0x001002b7, 0x00005337, 0x55530313, 0x0062a023, 0x0000006f];
    const kernel = new Uint8Array(new Uint32Array(words).buffer);
    const serial = await new Promise<string>((resolve, reject) => {
      const vm = new VirtualMachine({ memoryMiB: 16, bios: null, kernel, initrd: null });
      let out = '';
      vm.onSerial = (d) => { out += new TextDecoder().decode(d); };
      vm.onState = (s, d) => {
        if (s === 'error') reject(new Error(d));
        if (s !== 'poweroff') return;
        vm.terminate();
        resolve(`${out} (${d})`);
      };
      vm.start();
    });
    const error = await new Promise<string>((resolve) => {
      const vm = new VirtualMachine({ kernel: 'no-such-kernel' });
      vm.onState = (s, d) => {
        if (s !== 'error') return;
        vm.terminate();
        resolve(d);
      };
      vm.start();
    });
    return { serial, error };
  });
  assert.equal(result.serial, 'vm (exit status 0)');
  assert.match(result.error, /no-such-kernel: 404/);
}));

test('images are kept after a visit: the next revalidates them (304) and boots from the copies; a bad copy or a changed ETag downloads again; 16 at most are kept', { skip, timeout: 300_000 }, async () => {
  const { url, server } = await startWebServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    // One context: the pages of one profile share its storage.
    const context = await browser.newContext();
    const IMAGES = ['Image.gz', 'fw_dynamic.bin.gz', 'initramfs.cpio.gz'];
    type Index = Record<string, { etag: string; size: number }>;
    /**
     * Opens the page, boots to the shell; the images' HTTP statuses (page and worker, from the
     * browser's network events), those the page's fetch() calls saw, each sorted by name, and
     * the index of kept images afterwards.
     */
    const visit = async (before?: (page: Page) => Promise<void>, kept = IMAGES.length): Promise<{ statuses: string[]; fetched: string[]; index: Index }> => {
      const page = await context.newPage();
      const statuses: string[] = [];
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('response', (res) => { if (res.url().includes('/images/')) statuses.push(`${res.url().split('/').pop()} ${res.status()}`); });
      if (before) {
        // A document of the origin without a machine (whose worker would be reading the copies).
        await page.goto(`${url}xterm.css`);
        await before(page);
      }
      await page.goto(`${url}?autostart`);
      await shellReady(page).catch(async (e: Error) => {
        throw new Error(`no shell (state ${await page.textContent('#status')}, boot ${await page.textContent('#progress')}, images ${statuses.join(', ')}): ${e.message}`);
      });
      // The copies are written once the machine runs (or forgotten when unreadable).
      await page.waitForFunction((n) => Object.entries(JSON.parse(localStorage.getItem('vireo.images') ?? '{}') as Index)
        .filter(([u, e]) => u.includes('/images/') && e.etag !== '"old"').length === n, kept, { timeout: 30_000 });
      const index = await page.evaluate(() => JSON.parse(localStorage.getItem('vireo.images')!) as Index);
      const fetched = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/images/'))
        .map((e) => `${e.name.split('/').pop()} ${(e as PerformanceResourceTiming & { responseStatus: number }).responseStatus}`));
      await page.close();
      assert.deepEqual(errors, []);
      return { statuses: statuses.sort(), fetched: fetched.sort(), index };
    };
    const first = await visit();
    assert.deepEqual(first.statuses, IMAGES.map((n) => `${n} 200`));
    assert.deepEqual(first.fetched, IMAGES.map((n) => `${n} 200`));
    assert.deepEqual(Object.keys(first.index).map((u) => u.split('/').pop()).sort(), IMAGES);
    for (const { etag, size } of Object.values(first.index)) {
      assert.match(etag, /^".+"$/);
      assert.ok(size > 100_000, `a kept image has its size (${size})`);
    }

    const second = await visit();
    assert.deepEqual(second.statuses, IMAGES.map((n) => `${n} 304`), 'no image body is downloaded again');
    assert.deepEqual(second.fetched, IMAGES.map((n) => `${n} 304`), 'the page sees the 304s (not the HTTP cache\'s bodies)');
    assert.deepEqual(second.index, first.index);

    // Copies cut short (a storage fault): the worker downloads the images and the page forgets the copies.
    const cut = await visit(async (page) => page.evaluate(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('vireo-images');
      for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
        const out = await (await dir.getFileHandle(name)).createWritable();
        await out.write('short');
        await out.close();
      }
    }), 0);
    assert.deepEqual(cut.statuses, IMAGES.flatMap((n) => [`${n} 200`, `${n} 304`]));
    assert.deepEqual(cut.index, {});

    const again = await visit();
    assert.deepEqual(again.statuses, IMAGES.map((n) => `${n} 200`));
    // An ETag the server no longer has: downloaded and kept again under the current one. With
    // 15 other images kept before, the least recently kept go: 16 at most stay.
    const changed = await visit(async (page) => page.evaluate(() => {
      const index: Index = {};
      for (let i = 0; i < 15; i++) index[`https://example.invalid/other-${i}`] = { etag: '"x"', size: 1 };
      for (const [u, entry] of Object.entries(JSON.parse(localStorage.getItem('vireo.images')!) as Index)) index[u] = { ...entry, etag: '"old"' };
      localStorage.setItem('vireo.images', JSON.stringify(index));
    }));
    assert.deepEqual(changed.statuses, IMAGES.map((n) => `${n} 200`));
    assert.equal(Object.keys(changed.index).length, 16);
    assert.deepEqual(Object.keys(changed.index).slice(0, 13), [...Array(13).keys()].map((i) => `https://example.invalid/other-${i + 2}`));
    assert.deepEqual(Object.fromEntries(Object.entries(changed.index).slice(13).sort()), Object.fromEntries(Object.entries(first.index).sort()));
  } finally {
    await browser.close();
    server.kill();
  }
});
