/**
 * The character-device part of the command line, in QEMU's spellings:
 * `-chardev BACKEND,id=ID[,...]` for stdio, file, null, pipe and socket, the legacy
 * `-serial` forms that name one (`chardev:ID`, `tcp:`, `unix:`, `pipe:`), and the
 * cross-checks (no id twice, stdio used once, every chardev used by one frontend).
 */
import { keyval } from '../system/keyval.js';
import { UserError, type ChardevOptions, type SerialChoice, type SocketAddr, type VmOptions } from '../system/options.js';

/** The -chardev backends Vireo has. */
export const CHARDEV_BACKENDS = ['stdio', 'file', 'null', 'pipe', 'socket'] as const;

/** Keys that may be written QEMU's old short way (`server`, `nowait`). */
const SHORT_BOOLS = ['server', 'wait', 'nodelay', 'signal', 'mux', 'append', 'telnet'];

/** What QEMU names the chardev a legacy `-serial tcp:...` creates. */
export const SERIAL_CHARDEV_ID = 'serial0';

function onOff(v: string, what: string, key: string): boolean {
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  throw new UserError(`${what}: '${key}' expects on or off, not '${v}'`);
}

function port(v: string, what: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`${what}: '${v}' is not a port number (1 to 65535)`);
  return n;
}

/** QEMU's ids: a letter, then letters, digits, '-', '.', '_'. */
function checkId(id: string, what: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(id)) throw new UserError(`${what}: '${id}' is not a valid id (a letter, then letters, digits, '-', '.', '_')`);
  return id;
}

/** `-chardev BACKEND,id=ID,...`; returns the help text for `-chardev help`. */
export function parseChardev(o: VmOptions, value: string, opt: string): string | void {
  const what = `${opt} ${value}`;
  const pairs = keyval(value, 'backend', opt, SHORT_BOOLS);
  const backend = pairs.find(([k]) => k === 'backend')?.[1];
  if (backend === 'help' || backend === '?') return `Available chardev backend types:\n${CHARDEV_BACKENDS.join('\n')}`;
  const id = pairs.find(([k]) => k === 'id')?.[1];
  if (backend === undefined) throw new UserError(`${what}: needs a backend type (${CHARDEV_BACKENDS.join(', ')})`);
  if (id === undefined) throw new UserError(`${what}: needs id=`);
  (o.chardevs ??= []).push(chardevFromPairs(checkId(id, what), backend, pairs.filter(([k]) => k !== 'backend' && k !== 'id'), what));
}

function chardevFromPairs(id: string, backend: string, pairs: Array<[string, string]>, what: string): ChardevOptions {
  if (!(CHARDEV_BACKENDS as readonly string[]).includes(backend)) {
    throw new UserError(`${what}: '${backend}' is not a supported chardev backend (${CHARDEV_BACKENDS.join(', ')})`);
  }
  const get = new Map<string, string>();
  for (const [k, v] of pairs) {
    if (k === 'mux') {
      // On stdio: the C-a escapes, and a human monitor behind C-a c (-mon chardev=ID); no other mux.
      if (onOff(v, what, k) && backend !== 'stdio') throw new UserError(`${what}: mux=on is only supported for stdio`);
    }
    get.set(k, v);
  }
  const allowed: Record<(typeof CHARDEV_BACKENDS)[number], string[]> = {
    stdio: ['signal'],
    file: ['path', 'append'],
    null: [],
    pipe: ['path'],
    socket: ['path', 'host', 'port', 'server', 'wait', 'nodelay', 'telnet'],
  };
  const b = backend as (typeof CHARDEV_BACKENDS)[number];
  for (const k of get.keys()) {
    if (k !== 'mux' && !allowed[b].includes(k)) throw new UserError(`${what}: '${k}' is not supported for the ${b} backend`);
  }
  const path = () => {
    const p = get.get('path');
    if (p === undefined) throw new UserError(`${what}: needs path=`);
    return p;
  };
  switch (b) {
    case 'stdio': {
      const signal = get.has('signal') ? onOff(get.get('signal')!, what, 'signal') : true;
      return { id, kind: 'stdio', signal, mux: get.has('mux') && onOff(get.get('mux')!, what, 'mux') };
    }
    case 'file': return { id, kind: 'file', path: path(), append: get.has('append') && onOff(get.get('append')!, what, 'append') };
    case 'null': return { id, kind: 'null' };
    case 'pipe': return { id, kind: 'pipe', path: path() };
    case 'socket': {
      if (get.has('telnet') && onOff(get.get('telnet')!, what, 'telnet')) throw new UserError(`${what}: telnet=on is not supported`);
      if (get.has('nodelay')) onOff(get.get('nodelay')!, what, 'nodelay'); // TCP_NODELAY is always set
      let addr: SocketAddr;
      if (get.has('path')) {
        if (get.has('host') || get.has('port')) throw new UserError(`${what}: give either path= or host= and port=, not both`);
        addr = { type: 'unix', path: path() };
      } else {
        const p = get.get('port');
        if (p === undefined) throw new UserError(`${what}: needs path= (a Unix socket) or port= (TCP)`);
        addr = { type: 'inet', host: get.get('host') || '127.0.0.1', port: port(p, what) };
      }
      const server = get.has('server') && onOff(get.get('server')!, what, 'server');
      if (!server && get.has('wait')) throw new UserError(`${what}: 'wait' only applies with server=on`);
      const wait = server && (!get.has('wait') || onOff(get.get('wait')!, what, 'wait'));
      return { id, kind: 'socket', addr, server, wait };
    }
  }
}

/**
 * The `-serial` forms that are character devices of their own: `chardev:ID` names a
 * -chardev; `tcp:[HOST]:PORT[,server=on][,wait=off]`, `unix:PATH[,...]` and `pipe:PATH`
 * add one named serial0, as QEMU does. Returns undefined for anything else.
 */
export function parseSerialChardev(o: VmOptions, value: string, opt: string): SerialChoice | undefined {
  return parseLegacyChardev(o, value, opt, SERIAL_CHARDEV_ID);
}

/**
 * The legacy chardev spellings shared by -serial, -qmp and -monitor: `chardev:ID` names a
 * -chardev; `tcp:`, `unix:` and `pipe:` add one with the id `newId`. Undefined for anything else.
 */
export function parseLegacyChardev(o: VmOptions, value: string, opt: string, newId: string): SerialChoice | undefined {
  const what = `${opt} ${value}`;
  const colon = value.indexOf(':');
  if (colon < 0) return undefined;
  const kind = value.slice(0, colon);
  const rest = value.slice(colon + 1);
  if (kind === 'chardev') {
    if (rest === '') throw new UserError(`${what}: needs a chardev id`);
    return { kind: 'chardev', id: rest };
  }
  if (kind !== 'tcp' && kind !== 'unix' && kind !== 'pipe') return undefined;
  if (rest === '') throw new UserError(`${what}: needs ${kind === 'tcp' ? '[HOST]:PORT' : 'a path'}`);
  const pairs = keyval(rest, 'addr', opt, SHORT_BOOLS);
  const addr = pairs[0]![0] === 'addr' ? pairs[0]![1] : undefined;
  if (addr === undefined) throw new UserError(`${what}: needs ${kind === 'tcp' ? '[HOST]:PORT' : 'a path'}`);
  const others = pairs.slice(1);
  let c: ChardevOptions;
  if (kind === 'pipe') c = chardevFromPairs(newId, 'pipe', [['path', addr], ...others], what);
  else if (kind === 'unix') c = chardevFromPairs(newId, 'socket', [['path', addr], ...others], what);
  else {
    const i = addr.lastIndexOf(':');
    if (i < 0) throw new UserError(`${what}: '${addr}' is not [HOST]:PORT`);
    const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    c = chardevFromPairs(newId, 'socket', [...(host ? [['host', host] as [string, string]] : []), ['port', addr.slice(i + 1)], ...others], what);
  }
  (o.chardevs ??= []).push(c);
  return { kind: 'chardev', id: c.id };
}

/**
 * Cross-checks after the whole command line is read: ids are unique, every chardev
 * named by `-serial chardev:` or a device exists and has one frontend, and stdio has one
 * user. The serial port's default (stdio) gives way to a `-chardev stdio` when neither
 * `-serial` nor `-nographic` asked for it, as QEMU's default serial is not on stdio.
 */
export function checkChardevs(o: VmOptions, serialGiven: boolean): void {
  const chardevs = o.chardevs ?? [];
  const ids = new Set<string>();
  for (const c of chardevs) {
    if (ids.has(c.id)) throw new UserError(`-chardev: duplicate id '${c.id}'`);
    ids.add(c.id);
  }
  const stdio = chardevs.filter((c) => c.kind === 'stdio');
  if (stdio.length > 1) throw new UserError(`-chardev stdio,id=${stdio[1]!.id}: cannot use stdio by multiple character devices`);
  if (stdio.length === 1 && o.serial.kind === 'stdio') {
    if (!serialGiven && !o.nographic) o.serial = { kind: 'null' };
    else {
      throw new UserError(`-chardev stdio,id=${stdio[0]!.id}: cannot use stdio by multiple character devices `
        + `(the serial port is on stdio: add -serial none, or -serial chardev:${stdio[0]!.id})`);
    }
  }
  const users = new Map<string, string>();
  const use = (id: string, user: string) => {
    if (!ids.has(id)) throw new UserError(`${user}: chardev '${id}' not found`);
    const other = users.get(id);
    if (other !== undefined) throw new UserError(`${user}: chardev '${id}' is already in use by ${other}`);
    users.set(id, user);
  };
  if (o.serial.kind === 'chardev') use(o.serial.id, `-serial chardev:${o.serial.id}`);
  for (const m of o.monitors ?? []) {
    if (m.chardev === null) continue;
    const what = `-mon chardev=${m.chardev}`;
    const c = chardevs.find((x) => x.id === m.chardev);
    // A stdio chardev with mux=on is shared: the serial port, and the monitor behind C-a c.
    if (c?.kind === 'stdio' && c.mux) {
      if (m.mode !== 'readline') throw new UserError(`${what}: only an HMP (mode=readline) can share a mux=on terminal`);
      continue;
    }
    use(m.chardev, what);
  }
  for (const d of o.devices) if (d.chardev !== undefined) use(d.chardev, `-device ${d.driver}`);
}
