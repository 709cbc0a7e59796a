/**
 * The QEMU-compatible command line: turns `vireo -M virt -m 1G -nographic -kernel Image`
 * into {@link VmOptions}, or into help/version text.
 *
 * Spellings and value syntax follow qemu-system-riscv64: options start with `-` or `--`,
 * an option's value is the next argument (never `-opt=value`), and option lists such as
 * `-machine virt,dumpdtb=FILE` use QEMU's `key=value,...` form where the first element
 * may omit its key and `,,` stands for a literal comma. A repeated option overrides the
 * earlier one, as in QEMU. Anything Vireo does not implement is rejected with a one-line
 * {@link UserError} naming the option and value; files are not opened here.
 */
import { readFileSync } from 'node:fs';
import { UserError, type AccelName, type VmOptions } from './options.js';
import { keyval } from './keyval.js';
import { parseFsdev, parseVirtfs } from '../fsdev/cmdline.js';
import { checkDevices, parseBlockdev, parseDevice, parseDrive, parseNetdev } from './cmdline-devices.js';
import { checkChardevs, parseChardev, parseSerialChardev } from '../chardev/parse.js';
import { addDefaultMonitor, parseMon, parseMonitorDevice, parseName } from '../monitor/cmdline.js';
import { parseGdb, parseGdbDefault } from '../gdbstub/cmdline.js';
import { parseMigrationUri } from '../migration/migration-stream.js';

/** What the command line asks for. */
export type CommandLine =
  | { kind: 'run'; options: VmOptions }
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string };

const MiB = 1024 * 1024;
/** Vireo's default guest RAM (QEMU's virt defaults to 128 MiB, too little for a modern kernel). */
const DEFAULT_MEM = 512 * MiB;
const MIN_MEM = 16 * MiB;
/** Guest RAM lives in one 4 GiB WebAssembly memory next to the emulator's own data. */
const MAX_MEM = 3584 * MiB;
const MAX_CPUS = 8;

/** State accumulated while walking the arguments. */
interface Parsed {
  options: VmOptions;
  /** Set once a -serial has been seen: the virt board has a single UART. */
  serialGiven: boolean;
  /** Set once -M/-machine named a machine type. */
  machineGiven?: boolean;
  /** Set once -accel gave thread=single or thread=multi. */
  threadGiven?: boolean;
  /** `-machine help` / `-accel help`: answered after the remaining arguments are checked. */
  help?: string;
  /** `-serial mon:stdio`: the monitor shares the serial terminal. */
  monStdio?: boolean;
}

interface OptionSpec {
  names: string[];
  /** Placeholder shown in the help; present when the option takes a value. */
  arg?: string;
  help: string;
  apply(p: Parsed, value: string, opt: string): CommandLine | void;
}

const OPTIONS: OptionSpec[] = [
  { names: ['h', 'help'], help: 'display this help and exit', apply: () => ({ kind: 'help', text: helpText() }) },
  { names: ['version'], help: 'display version information and exit', apply: () => ({ kind: 'version', text: versionText() }) },
  {
    names: ['M', 'machine'],
    arg: '[type=]virt|microvm[,dumpdtb=FILE]',
    help: "select the machine ('help' lists them); dumpdtb=FILE: save its device tree and exit",
    apply: parseMachine,
  },
  {
    names: ['accel'],
    arg: '[accel=]tcg|kvm[:fallback][,thread=single|multi][,jit=on|off]',
    help: "select the accelerator ('help' lists them; default tcg,jit=off, thread=multi with -smp above 1 (but not with -gdb), else single; jit=on translates hot guest code to WebAssembly; kvm selects the x86_64 microvm)",
    apply: parseAccel,
  },
  {
    names: ['smp'],
    arg: '[cpus=]N',
    help: `number of CPUs (harts), 1 to ${MAX_CPUS} (default 1)`,
    apply: (p, v, opt) => {
      p.options.smp = parseCpus(v, opt);
    },
  },
  {
    names: ['m'],
    arg: '[size=]SIZE',
    help: `guest RAM in MiB, or with a K/M/G/T suffix (default ${DEFAULT_MEM / MiB}M, at most ${MAX_MEM / MiB}M)`,
    apply: (p, v, opt) => {
      p.options.memBytes = parseMemory(v, opt);
    },
  },
  {
    names: ['display'],
    arg: 'none',
    help: 'accepted; Vireo has no display window (a framebuffer is seen with screendump, or on the web page)',
    apply: (_p, v, opt) => {
      if (v !== 'none') throw new UserError(`${opt} ${v}: only 'none' is supported (Vireo has no display window)`);
    },
  },
  {
    names: ['nographic'],
    help: 'serial port on the console, with C-a escape keys (C-a h lists them)',
    apply: (p) => {
      p.options.nographic = true;
    },
  },
  {
    names: ['serial'],
    arg: 'DEV',
    help: 'serial port on stdio, mon:stdio, file:PATH, null, none, chardev:ID, tcp:[HOST]:PORT[,server=on], unix:PATH[,server=on] or pipe:PATH (default stdio)',
    apply: parseSerial,
  },
  {
    names: ['bios'],
    arg: 'FILE|none|default',
    help: "firmware image; 'default' is the bundled OpenSBI, 'none' runs the kernel directly",
    apply: (p, v, opt) => {
      p.options.bios = v === 'none' ? { kind: 'none' } : v === 'default' ? { kind: 'default' } : { kind: 'file', path: fileName(v, opt) };
    },
  },
  {
    names: ['kernel'],
    arg: 'FILE',
    help: 'use FILE as the kernel image',
    apply: (p, v, opt) => {
      p.options.kernel = fileName(v, opt);
    },
  },
  {
    names: ['append'],
    arg: 'CMDLINE',
    help: 'use CMDLINE as the kernel command line',
    apply: (p, v) => {
      p.options.append = v;
    },
  },
  {
    names: ['initrd'],
    arg: 'FILE',
    help: 'use FILE as the initial RAM disk',
    apply: (p, v, opt) => {
      p.options.initrd = fileName(v, opt);
    },
  },
  {
    names: ['dtb'],
    arg: 'FILE',
    help: 'pass the device tree blob FILE instead of the generated one',
    apply: (p, v, opt) => {
      p.options.dtb = fileName(v, opt);
    },
  },
  {
    names: ['drive'],
    arg: 'file=FILE[,format=raw|qcow2][,if=virtio|none][,id=ID][,readonly=on][,cache=writeback|none|unsafe]',
    help: 'a disk image; if=virtio (the default) attaches it as a virtio-blk disk',
    apply: (p, v, opt) => parseDrive(p.options, v, opt),
  },
  {
    names: ['blockdev'],
    arg: 'driver=raw|qcow2,node-name=ID,file=FILE[,read-only=on][,cache.direct=on]',
    help: 'a disk image for -device virtio-blk-...,drive=ID',
    apply: (p, v, opt) => parseBlockdev(p.options, v, opt),
  },
  {
    names: ['netdev'],
    arg: 'user,id=ID[,hostfwd=tcp::HOSTPORT-:GUESTPORT]|socket,id=ID,listen=[HOST]:PORT|connect=HOST:PORT|stream,id=ID,...|dgram,id=ID,...',
    help: 'a network back end: user-mode networking (NAT, DHCP, DNS), or a socket to another VM: socket, '
      + 'stream (server=on|off,addr.type=inet,addr.host=H,addr.port=P or addr.type=unix,addr.path=P), '
      + 'dgram (local.type=inet,local.host=H,local.port=P,remote.type=inet,remote.host=H,remote.port=P)',
    apply: (p, v, opt) => parseNetdev(p.options, v, opt),
  },
  {
    names: ['chardev'],
    arg: 'stdio|file|null|pipe|socket,id=ID[,path=P][,host=H,port=N][,server=on][,wait=off]',
    help: "a character device for -serial chardev:ID or a virtio-serial port ('help' lists the backends)",
    apply: (p, v, opt) => {
      const help = parseChardev(p.options, v, opt);
      if (help !== undefined) p.help = help;
    },
  },
  {
    names: ['fsdev'],
    arg: 'local,id=ID,path=DIR,security_model=passthrough|mapped-xattr|mapped-file|none[,readonly=on]',
    help: 'a host directory to share with the guest, for -device virtio-9p-...,fsdev=ID,mount_tag=TAG',
    apply: (p, v, opt) => parseFsdev(p.options, v, opt),
  },
  {
    names: ['virtfs'],
    arg: 'local,path=DIR,mount_tag=TAG,security_model=...[,readonly=on][,id=ID]',
    help: 'share a host directory over 9P (-fsdev and a virtio-9p-device); in the guest: mount -t 9p -o trans=virtio TAG DIR',
    apply: (p, v, opt) => parseVirtfs(p.options, v, opt),
  },
  {
    names: ['device'],
    arg: 'DRIVER[,drive=ID][,netdev=ID][,mac=MAC][,chardev=ID][,name=N][,id=ID]',
    help: "add a device ('help' lists them): virtio-blk-, virtio-net-, virtio-rng-, virtio-serial-, virtio-9p- -device or -pci; virtconsole, virtserialport",
    apply: (p, v, opt) => {
      const help = parseDevice(p.options, v, opt);
      if (help !== undefined) p.help = help;
    },
  },
  {
    names: ['qmp'],
    arg: 'unix:PATH,server=on,wait=off|tcp:[HOST]:PORT,server=on,wait=off|stdio',
    help: 'a QMP (JSON) monitor on a socket or stdio; may be repeated',
    apply: (p, v, opt) => parseMonitorDevice(p.options, v, opt, 'control'),
  },
  {
    names: ['monitor'],
    arg: 'stdio|unix:PATH,server=on,wait=off|tcp:[HOST]:PORT,server=on,wait=off|none',
    help: 'a human monitor (HMP, the (qemu) prompt); by default -nographic has one behind C-a c',
    apply: (p, v, opt) => parseMonitorDevice(p.options, v, opt, 'readline'),
  },
  {
    names: ['mon'],
    arg: '[chardev=]ID[,mode=readline|control]',
    help: 'a monitor on -chardev ID (a stdio chardev with mux=on shares it with -serial chardev:ID)',
    apply: (p, v, opt) => parseMon(p.options, v, opt),
  },
  {
    names: ['S'],
    help: "do not start the CPUs at start-up (use cont in the monitor, or gdb's continue)",
    apply: (p) => {
      p.options.startPaused = true;
    },
  },
  {
    names: ['gdb'],
    arg: 'tcp:[HOST]:PORT|none',
    help: 'wait for gdb on a TCP port (HOST defaults to 127.0.0.1); needs -accel tcg,thread=single,jit=off',
    apply: (p, v, opt) => parseGdb(p.options, v, opt),
  },
  {
    names: ['s'],
    help: 'shorthand for -gdb tcp::1234',
    apply: (p) => parseGdbDefault(p.options),
  },
  {
    names: ['name'],
    arg: '[guest=]NAME',
    help: 'the name of the guest (query-name, info name)',
    apply: (p, v, opt) => parseName(p.options, v, opt),
  },
  {
    names: ['snapshot-file'],
    arg: 'PATH',
    help: 'the file savevm, loadvm and -loadvm keep snapshots in (created on the first savevm)',
    apply: (p, v, opt) => {
      p.options.snapshotFile = fileName(v, opt);
    },
  },
  {
    names: ['loadvm'],
    arg: 'NAME',
    help: 'start from snapshot NAME of the -snapshot-file instead of booting',
    apply: (p, v) => {
      p.options.loadvm = v;
    },
  },
  {
    names: ['incoming'],
    arg: 'tcp:[HOST]:PORT|unix:PATH|defer',
    help: 'wait for a live migration on the address (defer: the address comes later, from migrate-incoming)',
    apply: (p, v, opt) => {
      if (v !== 'defer') {
        try {
          parseMigrationUri(v);
        } catch (e) {
          throw new UserError(`${opt} ${v}: ${(e as Error).message}`);
        }
      }
      p.options.incoming = v;
    },
  },
  {
    names: ['no-reboot'],
    help: 'exit instead of rebooting',
    apply: (p) => {
      p.options.noReboot = true;
    },
  },
];

const BY_NAME = new Map<string, OptionSpec>(OPTIONS.flatMap((o) => o.names.map((n) => [n, o] as const)));

/** Parses the arguments after the program name; throws {@link UserError} on bad input. */
export function parseCommandLine(argv: string[]): CommandLine {
  const p: Parsed = {
    options: {
      machine: 'virt',
      memBytes: DEFAULT_MEM,
      smp: 1,
      bios: { kind: 'default' },
      serial: { kind: 'stdio' },
      nographic: false,
      noReboot: false,
      accel: { names: ['tcg'], thread: 'single' },
      drives: [],
      netdevs: [],
      devices: [],
    },
    serialGiven: false,
    machineGiven: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) {
      // QEMU would take a bare argument as a disk image for the first drive.
      throw new UserError(`${arg}: disk images are not supported; boot with -kernel (and -initrd)`);
    }
    const spec = BY_NAME.get(arg.replace(/^--?/, ''));
    if (spec === undefined || arg === '-' || arg.startsWith('---')) throw new UserError(`${arg}: invalid option`);
    let value = '';
    if (spec.arg !== undefined) {
      if (i + 1 >= argv.length) throw new UserError(`${arg}: requires an argument`);
      value = argv[++i]!;
    }
    const result = spec.apply(p, value, arg);
    if (result !== undefined) return result; // -h and -version answer at once, as in QEMU
  }
  if (p.help !== undefined) return { kind: 'help', text: p.help };
  const o = p.options;
  // One program serves both boards: asking for KVM first, without -M, means the x86_64 microvm.
  if (!p.machineGiven && o.accel.names[0] === 'kvm') o.machine = 'microvm';
  // As in QEMU, several vCPUs get a host thread each unless told otherwise (the gdbstub runs on one thread only).
  if (!p.threadGiven && o.smp > 1 && o.gdb === undefined) o.accel.thread = 'multi';
  checkDevices(o);
  checkChardevs(o, p.serialGiven);
  if (o.loadvm !== undefined && o.snapshotFile === undefined) throw new UserError('-loadvm needs -snapshot-file PATH (the file the snapshot is in)');
  if (o.loadvm !== undefined && o.incoming !== undefined) throw new UserError('-loadvm and -incoming cannot be used together');
  addDefaultMonitor(o, p.monStdio === true);
  if (o.kernel === undefined) {
    if (o.append !== undefined) throw new UserError('-append only allowed with -kernel option');
    if (o.initrd !== undefined) throw new UserError('-initrd only allowed with -kernel option');
  }
  return { kind: 'run', options: o };
}

/** `-machine [type=]virt[,dumpdtb=FILE][,accel=tcg]` */
function parseMachine(p: Parsed, value: string, opt: string): void {
  for (const [key, v] of keyval(value, 'type', opt)) {
    if (key === 'type') {
      if (v === 'help' || v === '?') {
        p.help = 'Supported machines are:\nvirt                 RISC-V VirtIO board (default, software CPU)\nmicrovm              x86_64 microvm (needs -accel kvm)';
      } else if (v === 'virt' || v === 'microvm') {
        p.options.machine = v;
        p.machineGiven = true;
      } else {
        throw new UserError(`${opt} ${value}: unsupported machine type '${v}' (use -machine help to list supported machines)`);
      }
    } else if (key === 'dumpdtb') {
      p.options.dumpdtb = fileName(v, `${opt} ${value}`);
    } else if (key === 'accel') {
      // The legacy spelling -machine accel=tcg; QEMU allows a ':'-separated fallback list.
      p.options.accel = { ...p.options.accel, names: v.split(':').map((n) => accelName(n, opt, value)) };
    } else {
      throw new UserError(`${opt} ${value}: machine property '${key}' is not supported`);
    }
  }
}

/** `-accel [accel=]kvm|tcg[:fallback...][,thread=single|multi][,jit=on|off]` */
function parseAccel(p: Parsed, value: string, opt: string): void {
  let names: AccelName[] | undefined;
  let thread: 'single' | 'multi' = 'single';
  let jit: boolean | undefined;
  for (const [key, v] of keyval(value, 'accel', opt)) {
    if (key === 'accel') {
      if (v === 'help' || v === '?') {
        p.help = 'Accelerators supported in Vireo:\ntcg\nkvm';
        return;
      }
      names = v.split(':').map((n) => accelName(n, opt, value));
    } else if (key === 'thread') {
      if (v !== 'single' && v !== 'multi') throw new UserError(`${opt} ${value}: invalid 'thread' setting '${v}' (single or multi)`);
      thread = v;
      p.threadGiven = true;
    } else if (key === 'jit') {
      if (v !== 'on' && v !== 'off') throw new UserError(`${opt} ${value}: invalid 'jit' setting '${v}' (on or off)`);
      jit = v === 'on';
    } else {
      throw new UserError(`${opt} ${value}: accelerator property '${key}' is not supported`);
    }
  }
  if (names === undefined) throw new UserError(`${opt} ${value}: no accelerator named (use -accel tcg or -accel kvm)`);
  p.options.accel = jit === undefined ? { names, thread } : { names, thread, jit };
}

function accelName(name: string, opt: string, value: string): AccelName {
  if (name === 'tcg' || name === 'kvm') return name;
  throw new UserError(`${opt} ${value}: invalid accelerator '${name}' (use -accel help to list them)`);
}

/** `-smp [cpus=]N`; topology keys (sockets, cores, threads, ...) are rejected. */
function parseCpus(value: string, opt: string): number {
  let cpus: number | undefined;
  for (const [key, v] of keyval(value, 'cpus', opt)) {
    if (key !== 'cpus') throw new UserError(`${opt} ${value}: '${key}' is not supported; give only the number of CPUs (-smp N)`);
    if (!/^\d+$/.test(v)) throw new UserError(`${opt} ${value}: expects a number of CPUs`);
    cpus = Number(v);
  }
  if (cpus === undefined) throw new UserError(`${opt} ${value}: expects a number of CPUs`);
  if (cpus < 1) throw new UserError(`${opt} ${value}: at least 1 CPU is needed`);
  if (cpus > MAX_CPUS) throw new UserError(`${opt} ${value}: at most ${MAX_CPUS} CPUs are supported`);
  return cpus;
}

const SIZE_SUFFIX: Record<string, number> = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/**
 * `-m [size=]SIZE`, in bytes. As in QEMU: a plain integer is MiB; a suffix B, K, M, G, T,
 * P or E (either case) gives the unit and then a decimal fraction is allowed (`1.5G`);
 * the size is rounded up to 8 KiB.
 */
function parseMemory(value: string, opt: string): number {
  let size: string | undefined;
  for (const [key, v] of keyval(value, 'size', opt)) {
    if (key !== 'size') throw new UserError(`${opt} ${value}: '${key}' is not supported (no memory hotplug)`);
    size = v;
  }
  const m = /^(\d+)(\.\d*)?([bkmgtpe])?$/i.exec(size ?? '');
  if (m === null || (m[2] !== undefined && m[3] === undefined)) {
    throw new UserError(`${opt} ${value}: expects a size in MiB, or with a K, M, G or T suffix (e.g. 512 or 1G)`);
  }
  const unit = SIZE_SUFFIX[(m[3] ?? 'm').toLowerCase()]!;
  const bytes = Math.ceil(Math.floor(Number(m[1]! + (m[2] ?? '')) * unit) / 8192) * 8192;
  if (bytes < MIN_MEM) throw new UserError(`${opt} ${value}: at least ${MIN_MEM / MiB}M of guest RAM is needed`);
  if (bytes > MAX_MEM) throw new UserError(`${opt} ${value}: at most ${MAX_MEM / MiB}M of guest RAM is supported`);
  return bytes;
}

/** `-serial stdio|mon:stdio|file:PATH|null|none` (a second -serial is an error: one UART). */
function parseSerial(p: Parsed, value: string, opt: string): void {
  if (p.serialGiven) throw new UserError(`${opt} ${value}: the virt machine has only one serial port`);
  p.serialGiven = true;
  // mon:stdio: stdio shared with the human monitor (C-a c switches).
  if (value === 'stdio' || value === 'mon:stdio') {
    p.options.serial = { kind: 'stdio' };
    p.monStdio = value === 'mon:stdio';
  } else if (value === 'null' || value === 'none') p.options.serial = { kind: 'null' };
  else if (value.startsWith('file:')) p.options.serial = { kind: 'file', path: fileName(value.slice(5), `${opt} ${value}`) };
  else {
    const chardev = parseSerialChardev(p.options, value, opt);
    if (chardev === undefined) throw new UserError(`${opt} ${value}: unsupported character device (use stdio, mon:stdio, file:PATH, null, none, chardev:ID, tcp:, unix: or pipe:)`);
    p.options.serial = chardev;
  }
}

function fileName(value: string, what: string): string {
  if (value === '') throw new UserError(`${what}: empty file name`);
  return value;
}

/** The version from package.json, found from the compiled file in `dist/src/system`. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

function versionText(): string {
  return `Vireo emulator version ${version()} (QEMU-compatible command line)`;
}

function helpText(): string {
  const lines = OPTIONS.map((o) => {
    const syntax = o.names.map((n) => `-${n}`).join(' or ') + (o.arg !== undefined ? ` ${o.arg}` : '');
    return `${syntax.padEnd(42)} ${o.help}`;
  });
  return [
    versionText(),
    'usage: vireo [options]',
    '',
    'Options (QEMU spellings: -opt and --opt are the same; a value is the next argument):',
    ...lines,
    '',
    'Example: vireo -M virt -m 1G -smp 2 -nographic -kernel Image -initrd rootfs.cpio -append "console=ttyS0"',
  ].join('\n');
}
