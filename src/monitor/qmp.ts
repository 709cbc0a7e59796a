/**
 * The QEMU Machine Protocol (docs/interop/qmp-spec): one {@link QmpSession} per client
 * connection. The server greets, the client negotiates with `qmp_capabilities`, then
 * sends `{"execute": CMD, "arguments": {...}, "id": ...}` and gets `{"return": ...}` or
 * `{"error": {"class", "desc"}}` back, with the `id` echoed; asynchronous events
 * (`{"event", "data", "timestamp"}`) arrive in between. Lines end in CRLF, as in QEMU.
 */
import { JsonStream } from './json-stream.js';
import { checkCont } from './hmp.js';
import { inputSendEvent, screendump } from './display.js';
import type { Migration } from '../migration/migration.js';
import type { Jobs } from './jobs.js';
import type { Snapshots } from '../migration/savevm.js';
import type { BlockSnapshots, SnapshotInfo } from '../block/block.js';
import type { MachineControl, MachineEventName } from './machine-control.js';

/** What a QMP session knows besides the machine. */
export interface MonitorContext {
  machine: MachineControl;
  /** -name */
  name?: string;
  /** The QEMU version whose interface Vireo follows, and Vireo's own as the package. */
  version: { major: number; minor: number; micro: number; package: string };
  blocks(): BlockInfo[];
  chardevs(): ChardevInfo[];
  /** Runs one HMP command line, resolving to its output (lines ending in \n). */
  hmp(commandLine: string): Promise<string>;
  /** Background jobs (snapshot-save, snapshot-load, snapshot-delete). */
  jobs: Jobs;
}

export interface BlockInfo {
  device: string;
  file: string;
  format: string;
  readOnly: boolean;
  /** The image's internal snapshots (qcow2), if its format has them. */
  snapshots?: BlockSnapshots;
}

export interface ChardevInfo {
  label: string;
  filename: string;
  frontendOpen: boolean;
}

/** A QMP error: the class (GenericError, CommandNotFound, ...) and the description. */
export class QmpError extends Error {
  constructor(readonly errorClass: string, desc: string) {
    super(desc);
  }
}

type ArgType = 'str' | 'int' | 'bool' | 'array';
interface Command {
  /** Arguments: name -> type; a trailing `?` on the name marks it optional. */
  args?: Record<string, ArgType>;
  run(args: Record<string, unknown>, s: QmpSession): unknown;
}

const TYPE_NAMES: Record<ArgType, string> = { str: 'string', int: 'integer', bool: 'boolean', array: 'array' };

function isType(v: unknown, t: ArgType): boolean {
  switch (t) {
    case 'str': return typeof v === 'string';
    case 'int': return typeof v === 'number' && Number.isInteger(v);
    case 'bool': return typeof v === 'boolean';
    case 'array': return Array.isArray(v);
  }
}

const COMMANDS: Record<string, Command> = {
  qmp_capabilities: {
    args: { 'enable?': 'array' },
    run(args) {
      for (const cap of (args.enable as unknown[] | undefined) ?? []) {
        throw new QmpError('GenericError', `Capability '${String(cap)}' not available`);
      }
      return {};
    },
  },
  'query-version': {
    run(_a, s) {
      const v = s.ctx.version;
      return { qemu: { micro: v.micro, minor: v.minor, major: v.major }, package: v.package };
    },
  },
  'query-status': {
    run(_a, s) {
      const status = s.ctx.machine.status();
      return { status, singlestep: false, running: status === 'running' };
    },
  },
  'query-commands': { run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
  'query-name': { run: (_a, s) => (s.ctx.name !== undefined ? { name: s.ctx.name } : {}) },
  stop: {
    async run(_a, s) {
      await s.ctx.machine.pause();
      return {};
    },
  },
  cont: {
    run(_a, s) {
      checkCont(s.ctx.machine.status());
      s.ctx.machine.resume();
      return {};
    },
  },
  migrate: {
    args: { uri: 'str', 'detach?': 'bool', 'blk?': 'bool', 'inc?': 'bool' },
    run(args, s) {
      if (args.blk === true || args.inc === true) throw new QmpError('GenericError', 'block migration is not supported (use shared storage)');
      migration(s).start(args.uri as string);
      return {};
    },
  },
  migrate_cancel: {
    run(_a, s) {
      migration(s).cancel();
      return {};
    },
  },
  'query-migrate': { run: (_a, s) => migration(s).info() },
  'migrate-incoming': {
    args: { uri: 'str' },
    async run(args, s) {
      await migration(s).incoming(args.uri as string);
      return {};
    },
  },
  'migrate-set-capabilities': {
    args: { capabilities: 'array' },
    run(args, s) {
      const m = migration(s);
      const caps = args.capabilities as unknown[];
      for (const c of caps) {
        const cap = c as { capability?: unknown; state?: unknown };
        if (cap === null || typeof cap !== 'object' || typeof cap.state !== 'boolean') throw new QmpError('GenericError', 'Invalid parameter type for \'capabilities\', expected: MigrationCapabilityStatus');
        if (cap.capability !== 'events') throw new QmpError('GenericError', `Capability '${String(cap.capability)}' is not supported`);
      }
      for (const c of caps) m.capabilities.events = (c as { state: boolean }).state;
      return {};
    },
  },
  'query-migrate-capabilities': { run: (_a, s) => [{ capability: 'events', state: migration(s).capabilities.events }] },
  'migrate-set-parameters': {
    args: { 'downtime-limit?': 'int', 'max-bandwidth?': 'int' },
    run(args, s) {
      const d = args['downtime-limit'] as number | undefined;
      const b = args['max-bandwidth'] as number | undefined;
      if (d !== undefined && (d < 0 || d > 2000000)) throw new QmpError('GenericError', 'Parameter \'downtime_limit\' expects an integer in the range of 0 to 2000 seconds');
      if (b !== undefined && b < 0) throw new QmpError('GenericError', 'Parameter \'max_bandwidth\' expects a non-negative number of bytes per second');
      const p = migration(s).parameters;
      if (d !== undefined) p['downtime-limit'] = d;
      if (b !== undefined) p['max-bandwidth'] = b;
      return {};
    },
  },
  'query-migrate-parameters': { run: (_a, s) => ({ ...migration(s).parameters }) },
  'snapshot-save': snapshotJob('save'),
  'snapshot-load': snapshotJob('load'),
  'snapshot-delete': snapshotJob('delete'),
  'blockdev-snapshot-internal-sync': {
    args: { device: 'str', name: 'str' },
    async run(args, s) {
      const snaps = blockSnapshots(s, args.device as string);
      const name = args.name as string;
      if (snaps.list().some((i) => i.name === name)) throw new QmpError('GenericError', `Snapshot with name '${name}' already exists`);
      await snaps.create(name);
      return {};
    },
  },
  'blockdev-snapshot-delete-internal-sync': {
    args: { device: 'str', 'id?': 'str', 'name?': 'str' },
    async run(args, s) {
      const snaps = blockSnapshots(s, args.device as string);
      const { id, name } = args as { id?: string; name?: string };
      if (id === undefined && name === undefined) throw new QmpError('GenericError', 'Please specify id or name');
      const found = snaps.list().find((i) => (id === undefined || i.id === id) && (name === undefined || i.name === name));
      if (found === undefined) throw new QmpError('GenericError', `Snapshot with id '${id ?? ''}' and name '${name ?? ''}' does not exist on device '${String(args.device)}'`);
      await snaps.delete(found.id);
      return snapshotInfo(found);
    },
  },
  'query-jobs': { run: (_a, s) => s.ctx.jobs.list() },
  'job-dismiss': {
    args: { id: 'str' },
    run(args, s) {
      s.ctx.jobs.dismiss(args.id as string);
      return {};
    },
  },
  system_reset: {
    run(_a, s) {
      s.ctx.machine.reset();
      return {};
    },
  },
  system_powerdown: {
    run(_a, s) {
      s.ctx.machine.powerdown();
      return {};
    },
  },
  quit: {
    run(_a, s) {
      // The answer goes out first; the machine ends once this turn of the event loop is over.
      setImmediate(() => s.ctx.machine.quit());
      return {};
    },
  },
  'query-cpus-fast': {
    run(_a, s) {
      const m = s.ctx.machine;
      return m.cpus().map((c) => ({
        'cpu-index': c.index,
        'qom-path': c.qomPath,
        'thread-id': c.threadId,
        props: c.props,
        target: m.target,
      }));
    },
  },
  'query-block': {
    run: (_a, s) => s.ctx.blocks().map((b) => ({
      device: b.device,
      locked: false,
      removable: false,
      type: 'unknown',
      'io-status': 'ok',
      inserted: { file: b.file, drv: b.format, format: b.format, ro: b.readOnly, encrypted: false, 'backing_file_depth': 0,
        image: { filename: b.file, format: b.format } },
    })),
  },
  'query-chardev': {
    run: (_a, s) => s.ctx.chardevs().map((c) => ({ label: c.label, filename: c.filename, 'frontend-open': c.frontendOpen })),
  },
  screendump: {
    // device= and head= name a display; the machine has at most one.
    args: { filename: 'str', 'device?': 'str', 'head?': 'int', 'format?': 'str' },
    async run(args, s) {
      await screendump(s.ctx.machine, args.filename as string, args.format as string | undefined);
      return {};
    },
  },
  'input-send-event': {
    args: { 'device?': 'str', 'head?': 'int', events: 'array' },
    run(args, s) {
      inputSendEvent(s.ctx.machine, args.events as unknown[]);
      return {};
    },
  },
  'human-monitor-command': {
    args: { 'command-line': 'str', 'cpu-index?': 'int' },
    async run(args, s) {
      return (await s.ctx.hmp(args['command-line'] as string)).replace(/\r?\n/g, '\r\n');
    },
  },
};

/** snapshot-save, snapshot-load, snapshot-delete: a job running savevm, loadvm or delvm on the listed devices. */
function snapshotJob(op: 'save' | 'load' | 'delete'): Command {
  return {
    args: { 'job-id': 'str', tag: 'str', ...(op !== 'delete' ? { vmstate: 'str' as const } : {}), devices: 'array' },
    run(args, s) {
      const snaps = snapshotDevices(s, args);
      s.ctx.jobs.start(args['job-id'] as string, `snapshot-${op}`, () => snaps[op](args.tag as string, args.devices as string[]));
      return {};
    },
  };
}

/**
 * The snapshots of snapshot-save/load/delete, after checking their `devices` (drive ids)
 * and `vmstate`: QEMU writes the VM state into that image, which must be one of `devices`;
 * Vireo keeps it in the -snapshot-file (docs/snapshot.md), so with no devices (a machine
 * without disks) any name is taken.
 */
function snapshotDevices(s: QmpSession, args: Record<string, unknown>): Snapshots {
  const snaps = s.ctx.machine.snapshots;
  if (snaps === undefined) throw new QmpError('GenericError', 'snapshots are not supported on this machine');
  const devices = args.devices as unknown[];
  const known = new Set(s.ctx.blocks().map((b) => b.device));
  for (const d of devices) {
    if (typeof d !== 'string') throw new QmpError('GenericError', "Invalid parameter type for 'devices', expected: string");
    if (!known.has(d)) throw new QmpError('GenericError', `Cannot find device='${d}' nor node-name='${d}'`);
  }
  if (args.vmstate !== undefined && devices.length > 0 && !devices.includes(args.vmstate)) {
    throw new QmpError('GenericError', `vmstate block device '${String(args.vmstate)}' does not exist in the devices list`);
  }
  return snaps;
}

/** The internal snapshots of drive `device`. */
function blockSnapshots(s: QmpSession, device: string): BlockSnapshots {
  const b = s.ctx.blocks().find((i) => i.device === device);
  if (b === undefined) throw new QmpError('GenericError', `Cannot find device='${device}' nor node-name='${device}'`);
  if (b.snapshots === undefined) throw new QmpError('GenericError', `Block format '${b.format}' used by device '${device}' does not support internal snapshots`);
  if (b.readOnly) throw new QmpError('GenericError', `Device '${device}' is read only`);
  return b.snapshots;
}

/** QEMU's SnapshotInfo. */
function snapshotInfo(i: SnapshotInfo): Record<string, unknown> {
  const ms = i.date.getTime();
  return {
    id: i.id, name: i.name, 'vm-state-size': i.vmStateSize,
    'date-sec': Math.floor(ms / 1000), 'date-nsec': (ms % 1000) * 1e6,
    'vm-clock-sec': Math.floor(i.vmClockNs / 1e9), 'vm-clock-nsec': i.vmClockNs % 1e9,
  };
}

function migration(s: QmpSession): Migration {
  const m = s.ctx.machine.migration;
  if (m === undefined) throw new QmpError('GenericError', 'live migration is not supported on this machine');
  return m;
}

/** The names of the commands this server has. */
export const QMP_COMMANDS: readonly string[] = Object.keys(COMMANDS);

/** JSON with QEMU's spacing (`{"return": {}}`). */
export function toJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(toJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}: ${toJson(x)}`).join(', ')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The `timestamp` member of an event: wall-clock time, as QEMU's g_get_real_time(). */
function timestamp(): { seconds: number; microseconds: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** One client's QMP conversation. */
export class QmpSession {
  private negotiated = false;
  private readonly parser: JsonStream;
  /** Commands run one after another, in the order received (as QEMU's in-band commands). */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly ctx: MonitorContext, private readonly write: (text: string) => void,
    limits?: { maxBytes?: number; maxDepth?: number }) {
    this.parser = new JsonStream({
      value: (v) => this.enqueue(v),
      error: (message) => this.send({ error: { class: 'GenericError', desc: message } }),
    }, limits);
  }

  /** Sends the greeting; call once the client is there. */
  greet(): void {
    const v = this.ctx.version;
    this.send({ QMP: { version: { qemu: { micro: v.micro, minor: v.minor, major: v.major }, package: v.package }, capabilities: [] } });
  }

  /** Bytes from the client. */
  input(data: Uint8Array | string): void {
    if (!this.closed) this.parser.feed(data);
  }

  /** Sends an event, once the client has negotiated (as QEMU does). */
  event(name: MachineEventName | string, data?: Record<string, unknown>): void {
    if (!this.negotiated || this.closed) return;
    this.send({ timestamp: timestamp(), event: name, ...(data !== undefined ? { data } : {}) });
  }

  /** The client went away: nothing more is sent. */
  close(): void {
    this.closed = true;
  }

  /** Resolves once every command received so far has been answered. */
  idle(): Promise<void> {
    return this.queue;
  }

  private send(msg: unknown): void {
    if (!this.closed) this.write(`${toJson(msg)}\r\n`);
  }

  /** Commands received and not answered yet. */
  get backlog(): number {
    return this.inFlight;
  }

  /** Called when the backlog has gone down to nothing: the connection may be read again. */
  onDrained: (() => void) | null = null;
  private inFlight = 0;

  private enqueue(v: unknown): void {
    this.inFlight++;
    this.queue = this.queue.then(() => this.dispatch(v)).catch((err: unknown) => {
      this.send({ error: { class: 'GenericError', desc: err instanceof Error ? err.message : String(err) } });
    }).finally(() => {
      if (--this.inFlight === 0) this.onDrained?.();
    });
  }

  private async dispatch(v: unknown): Promise<void> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.send({ error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
      return;
    }
    const msg = v as Record<string, unknown>;
    const id = msg.id;
    const reply = (body: Record<string, unknown>) => this.send(id !== undefined ? { ...body, id } : body);
    const fail = (cls: string, desc: string) => reply({ error: { class: cls, desc } });
    for (const key of Object.keys(msg)) {
      if (key !== 'execute' && key !== 'arguments' && key !== 'id') return fail('GenericError', `QMP input member '${key}' is unexpected`);
    }
    if (!('execute' in msg)) return fail('GenericError', "QMP input lacks member 'execute'");
    if (typeof msg.execute !== 'string') return fail('GenericError', "QMP input member 'execute' must be a string");
    const args = msg.arguments ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return fail('GenericError', "QMP input member 'arguments' must be an object");
    const name = msg.execute;
    if (!this.negotiated && name !== 'qmp_capabilities') {
      return fail('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    }
    if (this.negotiated && name === 'qmp_capabilities') {
      return fail('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    }
    const cmd = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (cmd === undefined) return fail('CommandNotFound', `The command ${name} has not been found`);
    const given = args as Record<string, unknown>;
    const spec = cmd.args ?? {};
    const known = new Map(Object.entries(spec).map(([k, t]) => [k.replace(/\?$/, ''), { type: t, optional: k.endsWith('?') }]));
    for (const key of Object.keys(given)) {
      if (!known.has(key)) return fail('GenericError', `Parameter '${key}' is unexpected`);
    }
    for (const [key, { type, optional }] of known) {
      if (!(key in given)) {
        if (!optional) return fail('GenericError', `Parameter '${key}' is missing`);
      } else if (!isType(given[key], type)) {
        return fail('GenericError', `Invalid parameter type for '${key}', expected: ${TYPE_NAMES[type]}`);
      }
    }
    let result: unknown;
    try {
      result = await cmd.run(given, this);
    } catch (err) {
      if (err instanceof QmpError) return fail(err.errorClass, err.message);
      return fail('GenericError', err instanceof Error ? err.message : String(err));
    }
    if (name === 'qmp_capabilities') this.negotiated = true;
    reply({ return: result });
  }
}
