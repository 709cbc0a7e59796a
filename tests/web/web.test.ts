/**
 * The page of `npm run web` in headless Chromium: it boots the bundled guest to its shell
 * in an xterm.js terminal, a command typed there runs, and a screenshot is taken.
 * Skips, saying why, without Debian's chromium.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
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
