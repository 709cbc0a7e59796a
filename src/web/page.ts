/**
 * The page of `npm run web` (web/index.html): an xterm.js terminal on the guest's serial
 * console, the machine settings, Start / Stop / Reset, boot progress and the guest's
 * instructions per second. `?autostart` boots at once (used by the tests and bench/web).
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { VirtualMachine, type MachineChanges, type VmState } from './vm.js';

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

const term = new Terminal({ convertEol: false, scrollback: 5000, fontSize: 14 });
const fit = new FitAddon();
term.loadAddon(fit);
term.open($('terminal'));
fit.fit();
new ResizeObserver(() => fit.fit()).observe($('terminal'));

const settings = (): MachineChanges => ({ memoryMiB: Number(memory.value), smp: Number(smp.value), append: append.value });
const vm = new VirtualMachine(settings());

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
  term.write(data);
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

term.onData((s) => vm.sendInput(s));
startButton.onclick = () => vm.start();
stopButton.onclick = () => vm.stop();
resetButton.onclick = () => {
  next = 0;
  tail = '';
  progress.textContent = '';
  term.reset();
  try {
    vm.reset(settings());
  } catch (e) {
    status.textContent = `error: ${(e as Error).message}`;
  }
};

/** For tests: the terminal's text, one line per row (xterm's buffer, as shown). */
function terminalText(): string {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n');
}
Object.assign(window, { vireo: { vm, term, terminalText } });

if (new URLSearchParams(location.search).has('autostart')) vm.start();
term.focus();
