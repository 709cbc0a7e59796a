/**
 * The gdbstub's part of the command line, in QEMU's spellings: `-gdb tcp:[HOST]:PORT`
 * (`,server`, `,server=on`, `,wait=off`, `,nowait`, `,nodelay` are accepted and mean
 * nothing more: the stub always listens and never waits), `-gdb none`, and `-s` for
 * `-gdb tcp::1234`. An empty HOST means the loopback address 127.0.0.1, not every
 * address as in QEMU: the stub lets its client read and write all of guest memory.
 */
import { UserError, type VmOptions } from '../system/options.js';

/** QEMU's port for `-s`. */
export const DEFAULT_GDB_PORT = 1234;
const IGNORED = new Set(['server', 'server=on', 'wait=off', 'nowait', 'nodelay', 'nodelay=on']);

/** `-gdb DEV`. */
export function parseGdb(o: VmOptions, value: string, opt: string): void {
  const what = `${opt} ${value}`;
  if (value === 'none') {
    delete o.gdb;
    return;
  }
  const [dev, ...flags] = value.split(',');
  const m = /^tcp:(.*):([^:\]]*)$/.exec(dev!);
  if (m === null) throw new UserError(`${what}: unsupported gdb device (use tcp:[HOST]:PORT or none)`);
  for (const f of flags) if (!IGNORED.has(f)) throw new UserError(`${what}: '${f}' is not supported`);
  const port = /^\d{1,5}$/.test(m[2]!) ? Number(m[2]) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new UserError(`${what}: '${m[2]}' is not a port number (1 to 65535)`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  o.gdb = { addr: { type: 'inet', host, port }, what };
}

/** `-s`: shorthand for `-gdb tcp::1234`. */
export function parseGdbDefault(o: VmOptions): void {
  parseGdb(o, `tcp::${DEFAULT_GDB_PORT}`, '-gdb');
}
