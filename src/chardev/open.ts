/**
 * Opens the host character devices: every `-chardev` (before the machine is built, with
 * the other back ends), and the one the serial port uses (`-serial`, `-nographic`).
 */
import type { Chardev } from './chardev.js';
import { StdioChardev } from './stdio.js';
import { FileChardev } from './file.js';
import { NullChardev } from './null.js';
import { PipeChardev } from './pipe.js';
import { SocketChardev, describeAddr } from './socket.js';
import type { ChardevOptions, VmOptions } from '../system/options.js';

/** The -chardev devices opened for a command line, found again by {@link openSerial}. */
const opened = new WeakMap<VmOptions, ReadonlyMap<string, Chardev>>();

/** Until a board takes over (openSerial), a quit key at a raw terminal ends Vireo as Ctrl-C would. */
const quitBeforeBoard = (): void => void process.kill(process.pid, 'SIGINT');

/** Opens one -chardev; rejects with a UserError (or Node's file-system error) when it cannot. */
export async function openChardev(c: ChardevOptions, log: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): Promise<Chardev> {
  switch (c.kind) {
    case 'stdio': return new StdioChardev({ onQuit: quitBeforeBoard, escapes: c.mux, signal: c.signal });
    case 'file': return new FileChardev(c.path, { append: c.append });
    case 'null': return new NullChardev();
    case 'pipe': return new PipeChardev(c.path, `-chardev pipe,id=${c.id}`);
    case 'socket': return SocketChardev.open({
      addr: c.addr,
      server: c.server,
      wait: c.wait,
      what: `-chardev socket,id=${c.id}`,
      onWaiting: (a) => log(`vireo: -chardev socket,id=${c.id}: waiting for a connection on ${describeAddr(a)},server=on`),
    });
  }
}

/**
 * Opens every -chardev of `opts`, stdio last (so the terminal goes raw only once the
 * sockets that wait for a client have one); on failure closes what was opened.
 */
export async function openChardevs(opts: VmOptions): Promise<Map<string, Chardev>> {
  const map = new Map<string, Chardev>();
  const all = opts.chardevs ?? [];
  const order = [...all.filter((c) => c.kind !== 'stdio'), ...all.filter((c) => c.kind === 'stdio')];
  try {
    for (const c of order) map.set(c.id, await openChardev(c));
  } catch (err) {
    for (const c of map.values()) c.close();
    throw err;
  }
  opened.set(opts, map);
  return map;
}

/** Closes -chardev devices opened by {@link openChardevs}. */
export function closeChardevs(map: Map<string, Chardev>): void {
  for (const c of map.values()) c.close();
  map.clear();
}

/**
 * The serial port's backend; `onQuit` is called for the C-a x escape (and Ctrl-C with
 * signal=on), also when typed on a `-chardev stdio` that a virtio console uses.
 * `-serial chardev:ID` returns that chardev, opened beforehand by {@link openChardevs}.
 */
export function openSerial(opts: VmOptions, onQuit: () => void): Chardev {
  const chardevs = opened.get(opts);
  for (const c of chardevs?.values() ?? []) if (c instanceof StdioChardev) c.onQuit = onQuit;
  switch (opts.serial.kind) {
    case 'stdio': return new StdioChardev({ onQuit });
    case 'file': return new FileChardev(opts.serial.path);
    case 'null': return new NullChardev();
    case 'chardev': {
      const c = chardevs?.get(opts.serial.id);
      if (c === undefined) throw new Error(`-serial chardev:${opts.serial.id}: the chardev was not opened`);
      return c;
    }
  }
}
