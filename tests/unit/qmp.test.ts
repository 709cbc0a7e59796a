/**
 * The QMP protocol (src/monitor/qmp.ts) over an in-process connection, with a fake machine:
 * greeting, negotiation, commands, ids, errors, events.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { QmpSession } from '../../src/monitor/qmp.js';
import { FakeMachine, context } from './qmp-fake.js';

/** A client connected to a session: sends text, reads parsed lines. */
function connect(machine = new FakeMachine()) {
  const lines: string[] = [];
  const session = new QmpSession(context(machine), (text) => lines.push(text));
  machine.runState.onEvent = (name, data) => session.event(name, data);
  session.greet();
  const messages = () => lines.map((l) => {
    assert.ok(l.endsWith('\r\n'), 'CRLF line ends');
    return JSON.parse(l) as Record<string, any>;
  });
  const send = async (msg: unknown) => {
    lines.length = 0;
    session.input(typeof msg === 'string' ? msg : JSON.stringify(msg));
    await session.idle();
    await new Promise((r) => setImmediate(r));
    return messages();
  };
  return { machine, session, lines, messages, send };
}

test('greeting, then only qmp_capabilities is accepted until negotiated', async () => {
  const c = connect();
  assert.deepEqual(c.messages(), [{ QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: 'vireo-test' }, capabilities: [] } }]);
  assert.deepEqual(await c.send({ execute: 'query-status', id: 7 }),
    [{ error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }, id: 7 }]);
  assert.deepEqual(await c.send({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] } }),
    [{ error: { class: 'GenericError', desc: "Capability 'oob' not available" } }]);
  assert.deepEqual(await c.send({ execute: 'qmp_capabilities', id: 'neg' }), [{ return: {}, id: 'neg' }]);
  assert.deepEqual(await c.send({ execute: 'qmp_capabilities' }),
    [{ error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' } }]);
});

test('queries: status, version, name, commands, cpus-fast, block, chardev', async () => {
  const c = connect();
  await c.send({ execute: 'qmp_capabilities' });
  assert.deepEqual((await c.send({ execute: 'query-status', id: { any: ['json'] } }))[0],
    { return: { status: 'running', singlestep: false, running: true }, id: { any: ['json'] } });
  assert.deepEqual((await c.send({ execute: 'query-version' }))[0].return, { qemu: { micro: 0, minor: 2, major: 7 }, package: 'vireo-test' });
  assert.deepEqual((await c.send({ execute: 'query-name' }))[0].return, { name: 'vm1' });
  const names = (await c.send({ execute: 'query-commands' }))[0].return.map((x: { name: string }) => x.name);
  for (const n of ['qmp_capabilities', 'query-status', 'stop', 'cont', 'quit', 'query-cpus-fast', 'human-monitor-command']) assert.ok(names.includes(n), n);
  assert.deepEqual((await c.send({ execute: 'query-cpus-fast' }))[0].return[1],
    { 'cpu-index': 1, 'qom-path': '/machine/soc0/harts[1]', 'thread-id': 4242, props: { 'core-id': 1 }, target: 'riscv64' });
  const block = (await c.send({ execute: 'query-block' }))[0].return[0];
  assert.equal(block.device, 'hd0');
  assert.deepEqual([block.inserted.file, block.inserted.drv, block.inserted.ro], ['/tmp/disk.img', 'raw', true]);
  assert.deepEqual((await c.send({ execute: 'query-chardev' }))[0].return, [{ label: 'serial0', filename: 'stdio', 'frontend-open': true }]);
});

test('stop and cont change the status and send STOP and RESUME events with timestamps', async () => {
  const c = connect();
  await c.send({ execute: 'qmp_capabilities' });
  const stop = await c.send({ execute: 'stop', id: 1 });
  assert.equal(stop.length, 2);
  assert.equal(stop[0]!.event, 'STOP');
  assert.ok(Number.isInteger(stop[0]!.timestamp.seconds) && Number.isInteger(stop[0]!.timestamp.microseconds));
  assert.ok(Math.abs(stop[0]!.timestamp.seconds - Date.now() / 1000) < 5);
  assert.deepEqual(stop[1], { return: {}, id: 1 });
  assert.deepEqual((await c.send({ execute: 'query-status' }))[0].return, { status: 'paused', singlestep: false, running: false });
  const cont = await c.send({ execute: 'cont' });
  assert.deepEqual(cont.map((m) => m.event ?? 'return'), ['RESUME', 'return']);
  assert.equal((await c.send({ execute: 'query-status' }))[0].return.status, 'running');
});

test('-S: prelaunch until cont', async () => {
  const c = connect(new FakeMachine(true));
  await c.send({ execute: 'qmp_capabilities' });
  assert.deepEqual((await c.send({ execute: 'query-status' }))[0].return, { status: 'prelaunch', singlestep: false, running: false });
  assert.deepEqual((await c.send({ execute: 'cont' })).map((m) => m.event ?? 'return'), ['RESUME', 'return']);
});

test('system_reset, system_powerdown and quit reach the machine; events follow', async () => {
  const c = connect();
  await c.send({ execute: 'qmp_capabilities' });
  const reset = await c.send({ execute: 'system_reset' });
  assert.equal(c.machine.resets, 1);
  assert.deepEqual(reset.find((m) => m.event)?.data, { guest: false, reason: 'host-qmp-system-reset' });
  assert.deepEqual((await c.send({ execute: 'system_powerdown' })).map((m) => m.event ?? 'return'), ['POWERDOWN', 'return']);
  const quit = await c.send({ execute: 'quit', id: 'q' });
  assert.deepEqual(quit[0], { return: {}, id: 'q' });
  assert.equal(c.machine.quits, 1);
  assert.deepEqual(quit[1]!.data, { guest: false, reason: 'host-qmp-quit' });
});

test('bad input: errors with the classes and wording of QEMU, and the session goes on', async () => {
  const c = connect();
  await c.send({ execute: 'qmp_capabilities' });
  const err = async (msg: unknown) => (await c.send(msg))[0]!.error;
  assert.deepEqual(await err({ execute: 'no-such', id: 3 }), { class: 'CommandNotFound', desc: 'The command no-such has not been found' });
  assert.deepEqual(await err({ execute: 'query-status', arguments: { x: 1 } }), { class: 'GenericError', desc: "Parameter 'x' is unexpected" });
  assert.deepEqual(await err({ execute: 'human-monitor-command', arguments: { 'command-line': 5 } }),
    { class: 'GenericError', desc: "Invalid parameter type for 'command-line', expected: string" });
  assert.deepEqual(await err({ execute: 'human-monitor-command' }), { class: 'GenericError', desc: "Parameter 'command-line' is missing" });
  assert.deepEqual(await err({ execute: 'query-status', arguments: [] }), { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" });
  assert.deepEqual(await err({ execute: 1 }), { class: 'GenericError', desc: "QMP input member 'execute' must be a string" });
  assert.deepEqual(await err({ id: 1 }), { class: 'GenericError', desc: "QMP input lacks member 'execute'" });
  assert.deepEqual(await err({ execute: 'stop', foo: 1 }), { class: 'GenericError', desc: "QMP input member 'foo' is unexpected" });
  assert.deepEqual(await err([1]), { class: 'GenericError', desc: 'QMP input must be a JSON object' });
  assert.deepEqual(await err('{"execute": oops}'), { class: 'GenericError', desc: 'JSON parse error' });
  assert.deepEqual(await err({ execute: 'constructor' }), { class: 'CommandNotFound', desc: 'The command constructor has not been found' });
  // Two commands in one write, split in the middle of a third: answered in order.
  c.lines.length = 0;
  c.session.input('{"execute":"query-name","id":1}{"execute":"query-status","id":2}{"execute":"query-');
  c.session.input('version","id":3}');
  await c.session.idle();
  assert.deepEqual(c.messages().map((m) => m.id), [1, 2, 3]);
});

test('human-monitor-command runs HMP and returns its output with CRLF', async () => {
  const c = connect();
  await c.send({ execute: 'qmp_capabilities' });
  const hmp = async (line: string) => (await c.send({ execute: 'human-monitor-command', arguments: { 'command-line': line } }))[0]!.return as string;
  assert.equal(await hmp('info status'), 'VM status: running\r\n');
  assert.equal(await hmp('info registers'), '\r\nCPU#0\r\n pc       0000000080000000\r\n\r\nCPU#1\r\n pc       0000000080000010\r\n');
  assert.equal(await hmp('xp /4xb 0x1000'), '0000000000001000: 0x00 0x01 0x02 0x03\r\n');
  assert.equal(await hmp('bogus'), "unknown command: 'bogus'\r\n");
});

test('RunState: a board loop leaves on pause, waits, resumes; a stop requested while paused ends the wait', async () => {
  const { RunState } = await import('../../src/monitor/machine-control.js');
  const rs = new RunState(false);
  const events: string[] = [];
  rs.onEvent = (name) => events.push(name);
  const PAUSE = { kind: 'pause' };
  let slices = 0;
  let stop: { kind: string } | null = null;
  const check = () => stop ?? (rs.pausing ? PAUSE : null);
  // The "vCPU loop": runs slices until check() says something.
  const loop = async () => {
    for (;;) {
      slices++;
      await new Promise((r) => setImmediate(r));
      const c = check();
      if (c) return c;
    }
  };
  const done = rs.run(loop, PAUSE, check);
  await new Promise((r) => setTimeout(r, 20));
  await rs.pause();
  assert.equal(rs.status, 'paused');
  const frozen = slices;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(slices, frozen, 'no slice runs while paused');
  rs.resume();
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(slices > frozen);
  await rs.pause();
  stop = { kind: 'quit' };
  rs.wake();
  assert.deepEqual(await done, { kind: 'quit' });
  assert.deepEqual(events, ['STOP', 'RESUME', 'STOP']);
});

test('a flood of commands is read a little at a time: held input stays in the chardev', async () => {
  const { Chardev } = await import('../../src/chardev/chardev.js');
  const { Monitors } = await import('../../src/monitor/monitor-server.js');
  class Pipe extends Chardev {
    out = '';
    write(d: Uint8Array) { this.out += Buffer.from(d).toString(); }
    push(s: string) { this.receive(Buffer.from(s)); }
  }
  const chr = new Pipe();
  const machine = new FakeMachine();
  const opts = { serial: { kind: 'null' }, drives: [], chardevs: [] } as any;
  const mons = new Monitors({ opts, machine, runState: machine.runState, drives: new Map(), chardevs: new Map(), serial: chr });
  mons.attach(chr, 'control');
  const one = '{"execute":"query-name"}';
  chr.push(`{"execute":"qmp_capabilities"}${one.repeat(20000)}`);
  assert.ok(chr.pending > 400_000, 'most of the flood is still held by the chardev');
  for (let i = 0; i < 2000 && chr.pending > 0; i++) await new Promise((r) => setImmediate(r));
  assert.equal(chr.pending, 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(chr.out.split('\r\n').filter((l) => l === '{"return": {}}').length, 20001, 'every command answered, in order');
  await mons.close();
});

test('RunState for the gdbstub: a debug pause ends in debug, a step makes a pause debug, hooks see stops and resumes', async () => {
  const { RunState } = await import('../../src/monitor/machine-control.js');
  const rs = new RunState(false);
  const seen: string[] = [];
  rs.onEvent = (name) => seen.push(name);
  rs.onStopped = () => seen.push(`stopped:${rs.status}`);
  rs.onResume = () => seen.push(`resume:${rs.status}`);
  const PAUSE = { kind: 'pause' };
  const check = () => (rs.pausing ? PAUSE : null);
  const loop = async () => {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (check()) return PAUSE;
    }
  };
  void rs.run(loop, PAUSE, check);
  await rs.pause('debug');
  assert.equal(rs.status, 'debug');
  for (let i = 0; i < 100; i++) rs.wake(); // the gdbstub wakes the loop after each step
  await new Promise((r) => setTimeout(r, 10));
  rs.resume();
  assert.equal(rs.status, 'running');
  await rs.pause();
  assert.equal(rs.status, 'paused');
  rs.debugged();
  assert.equal(rs.status, 'debug');
  rs.resume();
  await rs.pause();
  assert.deepEqual(seen, ['STOP', 'stopped:debug', 'resume:debug', 'RESUME', 'STOP', 'stopped:paused', 'resume:debug', 'RESUME', 'STOP', 'stopped:paused']);
  rs.shutdown();
});
