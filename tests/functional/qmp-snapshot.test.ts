/**
 * QMP's snapshot jobs (snapshot-save, snapshot-load, snapshot-delete, query-jobs,
 * job-dismiss) on the bundled RISC-V Linux with -snapshot-file, through the stdlib Python
 * client: the jobs go created → running → waiting → pending → concluded (JOB_STATUS_CHANGE),
 * stay listed until dismissed, report failures in `error`, and snapshot-load takes a
 * counting shell loop back to the saved count.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
