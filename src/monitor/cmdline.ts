/**
 * The monitor part of the command line, in QEMU's spellings: `-qmp DEV` (QMP),
 * `-monitor DEV` (HMP), `-mon [chardev=]ID[,mode=readline|control]`, `-name NAME`. DEV is
 * a legacy chardev (`unix:PATH,server=on,wait=off`, `tcp:HOST:PORT,server,nowait`,
 * `stdio`, `chardev:ID`, `none`), added as a -chardev named compat_monitorN as QEMU does.
 */
import { keyval } from '../system/keyval.js';
import { UserError, type VmOptions } from '../system/options.js';
import { parseLegacyChardev } from '../chardev/parse.js';

const DEVICES = 'unix:PATH,server=on,wait=off, tcp:[HOST]:PORT,server=on,wait=off, stdio, chardev:ID or none';

/** `-qmp DEV` (mode control) and `-monitor DEV` (mode readline). */
export function parseMonitorDevice(o: VmOptions, value: string, opt: string, mode: 'control' | 'readline'): void {
  o.monitors ??= [];
  if (value === 'none') return;
  const id = `compat_monitor${(o.chardevs ?? []).filter((c) => /^compat_monitor\d+$/.test(c.id)).length}`;
  if (value === 'stdio') {
    (o.chardevs ??= []).push({ id, kind: 'stdio', signal: true, mux: false });
    o.monitors.push({ mode, chardev: id });
    return;
  }
  const what = `${opt} ${value}`;
  const c = parseLegacyChardev(o, value, opt, id);
  if (c === undefined || c.kind !== 'chardev') throw new UserError(`${what}: unsupported monitor device (use ${DEVICES})`);
  const added = o.chardevs?.find((x) => x.id === c.id);
  if (added?.kind === 'socket' && !added.server) throw new UserError(`${what}: a monitor needs server=on (Vireo does not connect out)`);
  o.monitors.push({ mode, chardev: c.id });
}

/** `-mon [chardev=]ID[,mode=readline|control][,pretty=off]`. */
export function parseMon(o: VmOptions, value: string, opt: string): void {
  let chardev: string | undefined;
  let mode: 'control' | 'readline' = 'readline';
  for (const [key, v] of keyval(value, 'chardev', opt)) {
    if (key === 'chardev') chardev = v;
    else if (key === 'mode') {
      if (v !== 'control' && v !== 'readline') throw new UserError(`${opt} ${value}: mode must be control or readline, not '${v}'`);
      mode = v;
    } else if (key === 'pretty') {
      if (v !== 'off') throw new UserError(`${opt} ${value}: pretty=on is not supported`);
    } else throw new UserError(`${opt} ${value}: '${key}' is not supported (chardev=, mode=)`);
  }
  if (chardev === undefined) throw new UserError(`${opt} ${value}: needs chardev=ID`);
  (o.monitors ??= []).push({ mode, chardev });
}

/** `-name [guest=]NAME[,debug-threads=on|off]`. */
export function parseName(o: VmOptions, value: string, opt: string): void {
  for (const [key, v] of keyval(value, 'guest', opt)) {
    if (key === 'guest') o.name = v;
    else if (key !== 'debug-threads') throw new UserError(`${opt} ${value}: '${key}' is not supported`);
  }
}

/**
 * The default monitor: with -nographic (and no -qmp, -monitor or -mon) or with
 * `-serial mon:stdio`, an HMP shares the serial port's terminal behind C-a c.
 */
export function addDefaultMonitor(o: VmOptions, monStdio: boolean): void {
  if (o.serial.kind !== 'stdio') return;
  if (monStdio || (o.nographic && o.monitors === undefined)) (o.monitors ??= []).push({ mode: 'readline', chardev: null });
}
