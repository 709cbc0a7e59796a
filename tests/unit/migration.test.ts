/**
 * Live migration between two in-process {@link Migration}s over a Unix socket, with fake
 * machines: RAM written between passes arrives (the dirty map is honoured), the state
 * comes last, run states and statistics are QEMU's; and a destination fed malformed
 * streams fails with a message instead of throwing or writing outside RAM.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { RunState } from '../../src/monitor/machine-control.js';
import { Migration, type MigrationMachine } from '../../src/migration/migration.js';
import { parseMigrationUri } from '../../src/migration/migration-stream.js';
import { SnapshotError } from '../../src/migration/vmstate.js';

const PAGES = 64;
const dir = mkdtempSync(join(tmpdir(), 'vireo-mig-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const uri = (): string => `unix:${join(dir, `m${n++}.sock`)}`;

class FakeMachine implements MigrationMachine {
  readonly ram = new Uint8Array(PAGES * 4096);
  readonly dirty = new Uint8Array(PAGES);
  loaded: Uint8Array | null = null;
  /** Called at each dirty-log sync, as a guest writing between passes. */
  onSync: (() => void) | null = null;
  syncs = 0;
  constructor(readonly size = 'small') {}
  async flushWriteTlbs(): Promise<void> {
    this.syncs++;
    this.onSync?.();
  }
  check(): void {}
  async drain(): Promise<void> {}
  async flushDisks(): Promise<void> {}
  async reopenDisks(): Promise<void> {}
  config(): Record<string, unknown> {
    return { machine: 'fake', size: this.size };
  }
  saveState(): Uint8Array {
    return new TextEncoder().encode('state');
  }
  loadState(data: Uint8Array): void {
    if (new TextDecoder().decode(data) !== 'state') throw new SnapshotError("snapshot 'migration' is corrupt");
    this.loaded = data;
  }
  write(page: number, byte: number): void {
    this.ram.fill(byte, page * 4096, (page + 1) * 4096);
    this.dirty[page] = 1;
  }
}

/** A run state whose (absent) vCPU loop stops at once when asked. */
function runState(paused: boolean): RunState {
  const r = new RunState(paused);
  r.onPauseRequest = () => r.stopped();
  return r;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('RAM written during the passes, zero pages and the state reach the destination', async () => {
  const a = new FakeMachine();
  randomFillSync(a.ram, 0, 40 * 4096); // pages 40.. stay zero
  const b = new FakeMachine();
  const srcState = runState(false);
  const dstState = runState(true);
  dstState.setMigrationState('inmigrate');
  const src = new Migration(srcState, () => a, true);
  const dst = new Migration(dstState, () => b, true);
  const where = uri();
  await dst.incoming(where);
  assert.equal(dst.status, 'setup');
  // The "guest" rewrites pages at every sync until the last one (the vCPUs are stopped then).
  a.onSync = () => {
    if (srcState.status !== 'running') return;
    a.write(3, a.syncs);
    a.write(45, 0x77); // a zero page that stops being zero
    a.write(7, 0); // and one that becomes zero
  };
  src.parameters['downtime-limit'] = 0;
  src.start(where);
  await until(() => src.status === 'completed' || src.status === 'failed');
  assert.equal(src.status, 'completed', JSON.stringify(src.info()));
  await until(() => dst.status === 'completed');
  assert.ok(Buffer.from(a.ram).equals(Buffer.from(b.ram)), 'the RAM arrived as the source had it at the end');
  assert.equal(new TextDecoder().decode(b.loaded!), 'state');
  assert.equal(srcState.status, 'postmigrate');
  assert.equal(dstState.status, 'running');
  const info = src.info() as { ram: Record<string, number>; downtime: number };
  assert.ok(info.ram['dirty-sync-count']! >= 2, JSON.stringify(info));
  assert.equal(info.ram['remaining'], 0);
  assert.ok(info.ram['duplicate']! >= PAGES - 40, 'zero pages counted, not sent');
});

test('a destination of another configuration fails, and the source runs on', async () => {
  const a = new FakeMachine('small');
  const b = new FakeMachine('big');
  const srcState = runState(false);
  const dstState = runState(true);
  dstState.setMigrationState('inmigrate');
  const src = new Migration(srcState, () => a, true);
  const dst = new Migration(dstState, () => b, true);
  let failure = '';
  dst.onIncomingFailed = (why) => { failure = why; };
  const where = uri();
  await dst.incoming(where);
  src.start(where);
  // The destination reports its failure once the source, told why, has hung up.
  await until(() => src.status === 'failed' && failure !== '');
  assert.match((src.info() as { 'error-desc': string })['error-desc'], /the destination failed: the source machine .* differs/);
  assert.match(failure, /differs from this one/);
  assert.equal(srcState.status, 'running');
  assert.equal(dstState.status, 'inmigrate');
});

test('malformed streams: the destination fails with a message, RAM beyond its end is never written', async () => {
  const hello = (config: unknown) => {
    const p = Buffer.from(JSON.stringify({ format: 'vireo-migration-1', config }));
    return rec(1, p);
  };
  const page = (index: number, kind: number, data = Buffer.alloc(kind === 1 ? 4096 : 0)) => {
    const b = Buffer.alloc(5);
    b.writeUInt32LE(index, 0);
    b[4] = kind;
    return Buffer.concat([b, data]);
  };
  const good = { machine: 'fake', size: 'small' };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['not a migration stream', Buffer.from('GET / HTTP/1.0\r\n\r\n'), /a record of \d+ bytes|not send a Vireo migration stream/],
    ['foreign format', rec(1, Buffer.from('{"format":"qemu"}')), /not send a Vireo migration stream/],
    ['page out of range', Buffer.concat([hello(good), rec(2, page(PAGES, 1))]), /malformed page record/],
    ['huge page index', Buffer.concat([hello(good), rec(2, page(0xffffffff, 0))]), /malformed page record/],
    ['unknown page kind', Buffer.concat([hello(good), rec(2, page(1, 9))]), /malformed page record/],
    ['truncated page', Buffer.concat([hello(good), rec(2, page(1, 1).subarray(0, 100))]), /malformed page record/],
    ['end without state', Buffer.concat([hello(good), rec(4, Buffer.alloc(0))]), /unexpected record type 4/],
    ['bad state', Buffer.concat([hello(good), rec(3, Buffer.from('junk')), rec(4, Buffer.alloc(0))]), /the migrated state is corrupt/],
    ['cut short', Buffer.concat([hello(good), rec(2, page(1, 1)).subarray(0, 2000)]), /closed|connection/],
  ];
  for (const [name, bytes, want] of cases) {
    const b = new FakeMachine();
    const state = runState(true);
    state.setMigrationState('inmigrate');
    const dst = new Migration(state, () => b, true);
    let failure: string | null = null;
    dst.onIncomingFailed = (why) => { failure = why; };
    const where = uri();
    await dst.incoming(where);
    const addr = parseMigrationUri(where) as { path: string };
    const s = connect(addr.path);
    let answer = '';
    s.on('data', (d: Buffer) => { answer += d.toString(); });
    s.on('error', () => {});
    s.end(bytes);
    await until(() => failure !== null);
    assert.match(failure!, want, name);
    assert.equal(dst.status, 'failed', name);
    assert.equal(state.status, 'inmigrate', name);
    await until(() => answer.includes('\n') || s.destroyed);
    if (answer !== '') assert.match(answer, /^error: .+\n$/, name);
  }
});

function rec(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32LE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

test('migration URIs', () => {
  assert.deepEqual(parseMigrationUri('tcp:127.0.0.1:4444'), { host: '127.0.0.1', port: 4444 });
  assert.deepEqual(parseMigrationUri('tcp::4444'), { host: '127.0.0.1', port: 4444 });
  assert.deepEqual(parseMigrationUri('tcp:[::1]:4444'), { host: '::1', port: 4444 });
  assert.deepEqual(parseMigrationUri('unix:/tmp/x.sock'), { path: '/tmp/x.sock' });
  for (const bad of ['tcp:127.0.0.1', 'tcp:h:0', 'tcp:h:70000', 'exec:cat', 'unix:', 'fd:3']) {
    assert.throws(() => parseMigrationUri(bad), /invalid migration URI/, bad);
  }
});
