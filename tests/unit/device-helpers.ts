/**
 * Shared pieces of the device unit tests: a clock whose time is set by hand, an IRQ line
 * that records what the device drives onto it, and dtc-based decoding of device-tree
 * nodes. Not a test file itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { Clock } from '../../src/hw/core/clock.js';
import { FdtBuilder } from '../../src/hw/core/fdt.js';
import type { IrqLine } from '../../src/hw/core/irq.js';

/** A Clock whose now() is `t`, moved by the test; its timers fire on runExpired(). */
export class FakeClock extends Clock {
  t = 0;
  override now(): number {
    return this.t;
  }
}

/** An IrqLine remembering its level and how many times set() was called. */
export class RecordingLine implements IrqLine {
  level = false;
  sets = 0;
  set(l: boolean): void {
    this.level = l;
    this.sets++;
  }
}

/**
 * Decodes the DTB returned by `blob` with `dtc -I dtb -O dts` and returns the source
 * text; when dtc is not installed, marks the test skipped (saying why) and returns
 * undefined without calling `blob`.
 */
export function dtsOf(t: TestContext, blob: () => Uint8Array): string | undefined {
  if (spawnSync('dtc', ['--version']).error) {
    t.skip('dtc not installed (apt-get install device-tree-compiler)');
    return undefined;
  }
  return execFileSync('dtc', ['-I', 'dtb', '-O', 'dts', '-q', '-'], { input: blob() }).toString();
}

/** dtsOf() for a tree whose root node holds just what `write` emits. */
export function dtsOfNode(t: TestContext, write: (f: FdtBuilder) => void): string | undefined {
  return dtsOf(t, () => {
    const f = new FdtBuilder();
    f.beginNode('');
    write(f);
    f.endNode();
    return f.finish();
  });
}
