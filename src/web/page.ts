/**
 * The page of `npm run web` (web/index.html): an xterm.js terminal on the guest's serial
 * console, the machine settings, Start / Stop / Reset, boot progress and the guest's
 * instructions per second, and a disk from the user's computer (file picker or drag and
 * drop) that "Download disk" saves back, and a framebuffer on a canvas with the guest's
 * console (console=tty0) and the canvas's keyboard and mouse as virtio input.
 * `?autostart` boots at once (used by the tests and bench/web); `?framebuffer` turns the
 * framebuffer on.
 */
import type { Terminal } from '@xterm/xterm';
import type { FitAddon } from '@xterm/addon-fit';
import { VirtualMachine, type MachineChanges, type VmState } from './vm.js';
import { memoryDiskProblem } from '../block/memory.js';
import { Screen } from './screen.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const memory = $<HTMLInputElement>('memory');
const smp = $<HTMLInputElement>('smp');
const append = $<HTMLInputElement>('append');
const startButton = $<HTMLButtonElement>('start');
const stopButton = $<HTMLButtonElement>('stop');
const resetButton = $<HTMLButtonElement>('reset');
const status = $('status');
const progress = $('progress');
const ips = $('ips');
const diskInput = $<HTMLInputElement>('disk');
const downloadButton = $<HTMLButtonElement>('download');
const diskInfo = $('diskinfo');
const message = $('message');
const framebuffer = $<HTMLInputElement>('framebuffer');
const screenBox = $('screen');

/** The framebuffer checkbox adds console=tty0 (the last console= gets the shell) and takes it away again. */
const TTY0 = ' console=tty0';
function framebufferChanged(): void {
  const without = append.value.split(TTY0).join('');
  append.value = framebuffer.checked ? without + TTY0 : without;
}
framebuffer.onchange = framebufferChanged;
if (new URLSearchParams(location.search).has('framebuffer')) {
  framebuffer.checked = true;
  framebufferChanged();
}

const settings = (): MachineChanges => ({ memoryMiB: Number(memory.value), smp: Number(smp.value), append: append.value, framebuffer: framebuffer.checked });
// First, so that its worker fetches the images and the core while the page sets up the rest.
const vm = new VirtualMachine(settings());
/**
 * The terminal, once its code (most of the page's: a chunk of its own, loaded at the end)
 * is there; until then the guest's output waits in `early`. Everything else is set up
 * before, so that no click or file finds a control without its handler.
 */
let term: Terminal | null = null;
let fit: FitAddon | null = null;
let early: Uint8Array[] = [];

const screen = new Screen($<HTMLCanvasElement>('canvas'), vm);
vm.onFramebuffer = (view) => {
  screen.show(view);
  screenBox.hidden = view === null;
  fit?.fit();
  if (view !== null) screen.canvas.focus();
};

/** Boot milestones, recognised in the console output; the last seen is shown. */
const MILESTONES: [string, string][] = [
  ['OpenSBI', 'firmware (OpenSBI) running'],
  ['Linux version', 'Linux booting'],
  ['Run /init', 'starting init'],
  ['~ # ', 'shell ready'],
];
let next = 0;
let tail = '';
const decoder = new TextDecoder();
vm.onSerial = (data) => {
  if (term === null) early.push(data);
  else term.write(data);
  if (next === MILESTONES.length) return;
  // Search with the end of the previous output, so that a marker split across two chunks is still seen.
  const text = tail + decoder.decode(data, { stream: true });
  while (next < MILESTONES.length && text.includes(MILESTONES[next]![0])) progress.textContent = MILESTONES[next++]![1];
  tail = text.slice(-16);
};

vm.onState = (state: VmState, detail: string) => {
  status.textContent = detail === '' ? state : `${state}: ${detail}`;
  startButton.disabled = state === 'running' || state === 'loading';
  stopButton.disabled = state !== 'running';
  if (state !== 'running') ips.textContent = '-';
};
vm.onStats = (n) => {
  ips.textContent = `${(n / 1e6).toFixed(1)} M instructions/s`;
};

startButton.onclick = () => vm.start();
stopButton.onclick = () => vm.stop();
resetButton.onclick = () => {
  next = 0;
  tail = '';
  progress.textContent = '';
  term?.reset();
  early = [];
  try {
    vm.reset(settings());
  } catch (e) {
    status.textContent = `error: ${(e as Error).message}`;
  }
};

/** The attached disk's file name, which its download keeps. */
let diskName = '';

/** Attaches `file` as the disk of the next boot, or says in one line why it cannot be. */
async function attachDisk(file: File): Promise<void> {
  message.textContent = '';
  try {
    // Checked before the file is read, so that a huge one is never read whole.
    const problem = memoryDiskProblem(file.size, new Uint8Array(await file.slice(0, 4).arrayBuffer()));
    if (problem !== null) throw new Error(problem);
    vm.attachDisk(await file.arrayBuffer());
  } catch (e) {
    message.textContent = `${file.name}: ${(e as Error).message}`;
    return;
  }
  diskName = file.name;
  diskInfo.textContent = `${file.name} (${(file.size / 2 ** 20).toFixed(1)} MiB), /dev/vda from the next Start or Reset`;
  downloadButton.disabled = false;
}

diskInput.onchange = () => {
  const file = diskInput.files?.[0];
  diskInput.value = '';
  if (file) void attachDisk(file);
};
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const file = e.dataTransfer?.files[0];
  if (file) void attachDisk(file);
});

/** Saves the disk as the guest left it (the worker waits for its requests in flight). */
downloadButton.onclick = async () => {
  const bytes = await vm.diskBytes();
  if (bytes === null) {
    message.textContent = 'no disk to download';
    return;
  }
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = diskName;
  a.click();
  // Revoked once the browser has surely started reading it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
};

/** For tests: the terminal's text, one line per row (xterm's buffer, as shown); empty until the terminal is there. */
function terminalText(): string {
  const b = term?.buffer.active;
  if (b === undefined) return '';
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n');
}
Object.assign(window, { vireo: { vm, get term() { return term; }, get fit() { return fit; }, terminalText, screen } });

if (new URLSearchParams(location.search).has('autostart')) vm.start();

const [xterm, xtermFit] = await Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')]);
const terminal = new xterm.Terminal({ convertEol: false, scrollback: 5000, fontSize: 14 });
const fitAddon = new xtermFit.FitAddon();
terminal.loadAddon(fitAddon);
terminal.open($('terminal'));
fitAddon.fit();
new ResizeObserver(() => fitAddon.fit()).observe($('terminal'));
terminal.onData((s) => vm.sendInput(s));
for (const data of early) terminal.write(data);
early = [];
term = terminal;
fit = fitAddon;
terminal.focus();
