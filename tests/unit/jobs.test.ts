/** QMP background jobs: the status sequence, errors, and dismissal rules (src/monitor/jobs.ts). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Jobs, JobError } from '../../src/monitor/jobs.js';

test('jobs report created → concluded after the command, keep their error, and are dismissed by hand', async () => {
  const events: Array<[string, string]> = [];
  const jobs = new Jobs((_name, data) => events.push([data.id as string, data.status as string]));
  const of = (id: string): string[] => events.filter(([i]) => i === id).map(([, s]) => s);
  let release = (): void => {};
  jobs.start('a', 'snapshot-save', () => new Promise<void>((r) => { release = r; }));
  jobs.start('b', 'snapshot-load', async () => { throw new Error('snapshot \'x\' not found'); });
  assert.equal(events.length, 0, 'nothing before the answer');
  assert.throws(() => jobs.start('a', 'snapshot-save', async () => {}), /Job ID 'a' already in use/);
  assert.throws(() => jobs.start('1a', 'snapshot-save', async () => {}), JobError);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(of('a'), ['created', 'running']);
  assert.throws(() => jobs.dismiss('a'), /in state 'running' cannot accept command verb 'dismiss'/);
  assert.deepEqual(jobs.list().find((j) => j.id === 'b'), { id: 'b', type: 'snapshot-load', status: 'concluded', 'current-progress': 1, 'total-progress': 1, error: "snapshot 'x' not found" });
  release();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(of('a'), ['created', 'running', 'waiting', 'pending', 'concluded']);
  jobs.dismiss('a');
  assert.equal(of('a').at(-1), 'null');
  assert.deepEqual(jobs.list().map((j) => j.id), ['b']);
  assert.throws(() => jobs.dismiss('a'), /Job not found/);
});
