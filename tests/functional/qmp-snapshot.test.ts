/**
 * QMP's snapshot jobs (snapshot-save, snapshot-load, snapshot-delete, query-jobs,
 * job-dismiss) on the bundled RISC-V Linux with -snapshot-file, through the stdlib Python
 * client: the jobs go created → running → waiting → pending → concluded (JOB_STATUS_CHANGE),
 * stay listed until dismissed, report failures in `error`, and snapshot-load takes a
 * counting shell loop back to the saved count. And the disk-only internal snapshots of a
 * qcow2 drive (blockdev-snapshot-internal-sync, blockdev-snapshot-delete-internal-sync),
 * as `qemu-img snapshot -l` sees them.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestConsole } from './guest-console.js';
import { QmpClient, type Msg } from './qmp-client.js';

const PROMPT = /~ # $/;
const dir = mkdtempSync(join(tmpdir(), 'vireo-qmpsnap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a job command and returns the job's status events up to `concluded` (and any events before). */
async function runJob(q: QmpClient, execute: string, args: Msg): Promise<string[]> {
  await q.execute(execute, args);
  q.child.stdin.write(`${JSON.stringify({ wait_event: 'JOB_STATUS_CHANGE' })}\n`);
  const statuses: string[] = [];
  for (;;) {
    const m = await q.next(60_000);
    if (m.eof) throw new Error('QMP connection closed');
    if (m.event !== 'JOB_STATUS_CHANGE' || m.data.id !== args['job-id']) continue;
    statuses.push(m.data.status);
    if (m.data.status === 'concluded') return statuses;
    q.child.stdin.write(`${JSON.stringify({ wait_event: 'JOB_STATUS_CHANGE' })}\n`);
  }
}

function ticks(g: GuestConsole, from = 0): number[] {
  return [...g.output.slice(from).matchAll(/tick(\d+)\r?\n/g)].map((m) => Number(m[1]));
}

test('QMP snapshot-save / snapshot-load / snapshot-delete jobs', async () => {
  const sock = join(dir, 'qmp.sock');
  const g = new GuestConsole(['-nographic', '-snapshot-file', join(dir, 'vm.vsnap'), '-qmp', `unix:${sock},server=on,wait=off`]);
  let q: QmpClient | null = null;
  try {
    await g.waitFor(PROMPT, 120_000);
    g.send('i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done\n');
    await g.waitFor(/tick5\r?\n/, 60_000);
    q = new QmpClient(sock);
    await q.next();
    await q.next();
    const lifecycle = ['created', 'running', 'waiting', 'pending', 'concluded'];
    assert.deepEqual(await runJob(q, 'snapshot-save', { 'job-id': 'save0', tag: 'snap0', vmstate: 'none', devices: [] }), lifecycle);
    const saved = Math.max(...ticks(g));
    assert.deepEqual(await q.execute('query-jobs'), [{ id: 'save0', type: 'snapshot-save', status: 'concluded', 'current-progress': 1, 'total-progress': 1 }]);
    const dup = await q.request({ execute: 'snapshot-save', arguments: { 'job-id': 'save0', tag: 'x', vmstate: 'none', devices: [] }, id: 1 });
    assert.match(dup.answer.error.desc, /Job ID 'save0' already in use/);
    await q.execute('job-dismiss', { id: 'save0' });
    assert.deepEqual(await q.execute('query-jobs'), []);
    const unknown = await q.request({ execute: 'snapshot-save', arguments: { 'job-id': 'j', tag: 'x', vmstate: 'hd9', devices: ['hd9'] }, id: 2 });
    assert.match(unknown.answer.error.desc, /Cannot find device='hd9'/);

    await g.waitFor(new RegExp(`tick${saved + 10}\\r?\\n`), 60_000);
    const from = g.output.length;
    assert.deepEqual(await runJob(q, 'snapshot-load', { 'job-id': 'load0', tag: 'snap0', vmstate: 'none', devices: [] }), lifecycle);
    assert.equal((await q.execute('query-jobs'))[0].error, undefined);
    await g.waitFor(new RegExp(`tick(${saved + 3}|${saved + 4})\\r?\\n`), 60_000, from);
    const after = ticks(g, from);
    assert.ok(after.some((t, k) => k > 0 && t < after[k - 1]!) || after[0]! <= saved + 2, `went back to about tick${saved}: ${after.join(',')}`);

    // A failing job concludes with its error.
    assert.deepEqual(await runJob(q, 'snapshot-load', { 'job-id': 'load1', tag: 'nope', vmstate: 'none', devices: [] }), lifecycle);
    const failed = (await q.execute('query-jobs')).find((j: Msg) => j.id === 'load1');
    assert.match(failed.error, /snapshot 'nope' not found/);
    assert.deepEqual(await runJob(q, 'snapshot-delete', { 'job-id': 'del0', tag: 'snap0', devices: [] }), lifecycle);
    assert.match(await q.execute('human-monitor-command', { 'command-line': 'info snapshots' }), /There is no snapshot available/);
    assert.equal((await q.execute('query-status')).status, 'running');
  } finally {
    q?.kill();
    g.kill();
  }
});

test('QMP blockdev-snapshot-internal-sync / blockdev-snapshot-delete-internal-sync on a qcow2 drive', async (t) => {
  if (spawnSync('qemu-img', ['--version']).status !== 0) return t.skip('qemu-img not installed (apt-get install qemu-utils)');
  const img = join(dir, 'd.qcow2');
  const raw = join(dir, 'r.raw');
  assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']).status, 0);
  assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '1M']).status, 0);
  const sock = join(dir, 'blk.sock');
  const g = new GuestConsole(['-nographic', '-S', '-qmp', `unix:${sock},server=on,wait=off`,
    '-drive', `file=${img},format=qcow2,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0',
    '-drive', `file=${raw},format=raw,if=none,id=r0`, '-device', 'virtio-blk-device,drive=r0']);
  const q = new QmpClient(sock);
  try {
    await q.next();
    await q.next();
    await q.execute('blockdev-snapshot-internal-sync', { device: 'd0', name: 'snap-a' });
    const again = await q.request({ execute: 'blockdev-snapshot-internal-sync', arguments: { device: 'd0', name: 'snap-a' } });
    assert.match(again.answer.error.desc, /Snapshot with name 'snap-a' already exists/);
    const onRaw = await q.request({ execute: 'blockdev-snapshot-internal-sync', arguments: { device: 'r0', name: 'x' } });
    assert.match(onRaw.answer.error.desc, /Block format 'raw' used by device 'r0' does not support internal snapshots/);
    await q.execute('blockdev-snapshot-internal-sync', { device: 'd0', name: 'snap-b' });
    const listed = spawnSync('qemu-img', ['snapshot', '-l', img], { encoding: 'utf8' }).stdout;
    assert.match(listed, /\bsnap-a\b[^]*\bsnap-b\b/, listed);
    const gone = await q.execute('blockdev-snapshot-delete-internal-sync', { device: 'd0', name: 'snap-a' });
    assert.equal(gone.name, 'snap-a');
    assert.equal(gone['vm-state-size'], 0);
    assert.ok(Number.isInteger(gone['date-sec']) && gone['date-sec'] > 1.7e9, JSON.stringify(gone));
    const missing = await q.request({ execute: 'blockdev-snapshot-delete-internal-sync', arguments: { device: 'd0', name: 'snap-a' } });
    assert.match(missing.answer.error.desc, /does not exist on device 'd0'/);
  } finally {
    q.kill();
    g.kill();
    await g.exit(10_000);
  }
  const after = spawnSync('qemu-img', ['snapshot', '-l', img], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(after, /\bsnap-a\b/);
  assert.match(after, /\bsnap-b\b/);
  assert.equal(spawnSync('qemu-img', ['check', img]).status, 0);
});
