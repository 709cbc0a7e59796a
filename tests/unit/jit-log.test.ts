/**
 * The JIT's invalidation log for hart threads (src/target/riscv/jit/jit-log.ts) and the
 * protocol Jit builds on it: entries reach every hart in order; a hart may translate a
 * page only once every other running hart has applied its MARK (a sleeping hart does not
 * hold it up); an invalidation by another thread makes it mark the page again; rewrites
 * are counted; a hart that fell more than the ring behind is told to drop everything.
 * Two Jits over one shared memory stand for two hart threads (no cores attached).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Jit } from '../../src/target/riscv/jit/jit.js';
import { JitLog, JIT_LOG_BYTES, LogEntry } from '../../src/target/riscv/jit/jit-log.js';

const CODE_MAP = 0;
const LOG = 1 << 20;
const PAGE = 0x400000;

function shared(): { memory: WebAssembly.Memory; code: Uint8Array } {
  const pages = Math.ceil((LOG + JIT_LOG_BYTES) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  return { memory, code: new Uint8Array(memory.buffer, CODE_MAP, 1 << 20) };
}

test('jit log: entries reach the other harts in order; seenByAll waits for running harts only', () => {
  const { memory } = shared();
  const [a, b, main] = [new JitLog(memory, LOG, 2, 0), new JitLog(memory, LOG, 2, 1), new JitLog(memory, LOG, 2, -1)];
  b.setActive(true);
  const g1 = a.append(() => PAGE | LogEntry.Mark);
  const g2 = main.append(() => (PAGE + 0x1000) | LogEntry.Invalidate);
  assert.equal(main.append(() => null), g2, 'no entry: the count stays');
  assert.equal(a.seenByAll(g1), false, 'hart 1 runs and has not applied the MARK');
  const seen: [LogEntry, number, number][] = [];
  assert.equal(b.catchUp((kind, page, gen) => seen.push([kind, page, gen])), true);
  assert.deepEqual(seen, [[LogEntry.Mark, PAGE, g1], [LogEntry.Invalidate, PAGE + 0x1000, g2]]);
  assert.equal(a.seenByAll(g2), true);
  assert.equal(b.upToDate(), true);
  assert.equal(a.upToDate(), false);
  // A sleeping hart holds nobody up.
  const g3 = a.append(() => (PAGE + 0x2000) | LogEntry.Mark);
  assert.equal(a.seenByAll(g3), false);
  b.setActive(false);
  assert.equal(a.seenByAll(g3), true);
});

test('jit log: a hart more than the ring behind is told to drop everything', () => {
  const { memory } = shared();
  const [a, b] = [new JitLog(memory, LOG, 2, 0), new JitLog(memory, LOG, 2, 1)];
  for (let i = 0; i < 4096; i++) a.append(() => PAGE | LogEntry.Invalidate);
  let n = 0;
  assert.equal(b.catchUp(() => n++), true, 'a full ring is still complete');
  assert.equal(n, 4096);
  for (let i = 0; i < 4097; i++) a.append(() => PAGE | LogEntry.Invalidate);
  assert.equal(b.catchUp(() => n++), false);
  assert.equal(b.upToDate(), true, 'the lost entries count as applied');
});

test('jit with a log: a page is translated only after the other running harts applied its MARK; invalidations are whole pages', () => {
  const { memory, code } = shared();
  const main = new Jit(memory, CODE_MAP, 2, new JitLog(memory, LOG, 2, -1));
  const h0 = new Jit(memory, CODE_MAP, 2, new JitLog(memory, LOG, 2, 0));
  const h1 = new Jit(memory, CODE_MAP, 2, new JitLog(memory, LOG, 2, 1));
  h0.log!.setActive(true);
  h1.log!.setActive(true);
  const i = PAGE >>> 12;
  assert.equal(h0.codeReady(PAGE), false, 'marks first');
  assert.equal(code[i]! & 1, 1, 'the page is code from the MARK on (stores to it take the slow path)');
  h0.sync();
  assert.equal(h0.codeReady(PAGE), false, 'hart 1 has not dropped the page from its write TLBs');
  h1.sync();
  assert.equal(h0.codeReady(PAGE), true);
  assert.equal(h1.codeReady(PAGE), true, 'hart 1 learnt of the MARK: its own translation needs no new one');
  // A device writes into the page: both harts must mark it again before translating it.
  main.invalidate(PAGE + 0x10, 4);
  assert.equal(code[i], 2, 'code bit cleared, one rewrite counted');
  h0.sync();
  h1.sync();
  assert.equal(h1.codeReady(PAGE), false);
  assert.equal(h0.codeReady(PAGE), false, 'hart 1 marked it: hart 0 has not applied that yet');
  h0.sync();
  assert.equal(h0.codeReady(PAGE), false, 'hart 1 has not applied its own MARK yet');
  h1.sync();
  h0.sync();
  assert.equal(h0.codeReady(PAGE), true);
  // A write anywhere in the page invalidates it (other harts' coverage is unknown), eight times at most.
  for (let n = 0; n < 7; n++) {
    h1.invalidate(PAGE + 0xff0, 1);
    h0.sync();
    h1.sync();
    assert.equal(h0.codeReady(PAGE), false);
    h0.sync();
    h1.sync();
  }
  assert.equal(h0.pageUsable(PAGE), false, 'overwritten eight times: no longer translated');
  assert.equal(h0.codeReady(PAGE), false);
  assert.equal(code[i]! & 1, 0, 'not marked again');
  assert.equal(h0.totals().invalidations + h1.totals().invalidations + main.totals().invalidations, 8);
});
