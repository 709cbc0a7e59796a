/**
 * The stdio character device (QEMU's `-serial stdio`, `-serial mon:stdio`, `-nographic`):
 * guest output goes to the host's stdout, the host's stdin becomes guest input.
 *
 * A terminal on stdin is put in raw mode, so keys reach the guest untranslated (Enter
 * arrives as `\r`, as on a real serial line, and Ctrl-C goes to the guest), and is
 * restored on close, on exit and on a terminating signal. With escapes on (QEMU's
 * `-nographic` / `mon:stdio` behaviour) Ctrl-A is a prefix key: `C-a x` quits, `C-a h`
 * lists the keys, `C-a c` switches to the human monitor and back, `C-a C-a` sends one
 * Ctrl-A. Escapes are recognised in piped input too,
 * as QEMU does. Without escapes, Ctrl-C typed at a terminal still quits, the way QEMU's
 * plain `-serial stdio` leaves terminal signals on (`-chardev stdio,signal=off` sends it to
 * the guest instead; `-chardev stdio,mux=on` turns the escapes on).
 *
 * End of input (a pipe running dry) only stops input; the guest keeps running.
 */
import { Chardev } from './chardev.js';

/** The input side used by {@link StdioChardev}: `process.stdin`, or a fake in tests. */
export interface StdioInput {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** The output side used by {@link StdioChardev}: `process.stdout`, or a fake in tests. */
export interface StdioOutput {
  write(data: Uint8Array | string): unknown;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

/** Construction options for {@link StdioChardev}. */
export interface StdioChardevOptions {
  /** Called for `C-a x` (or Ctrl-C at a terminal when escapes are off): stop the emulator. */
  onQuit: () => void;
  /** Recognise the Ctrl-A escape keys (default true). */
  escapes?: boolean;
  /**
   * Ctrl-C typed at a terminal quits (QEMU's `signal=on`); default: only when escapes are
   * off. With it off, Ctrl-C goes to the guest.
   */
  signal?: boolean;
  /** Defaults to `process.stdin`. */
  input?: StdioInput;
  /** Defaults to `process.stdout`. */
  output?: StdioOutput;
}

const CTRL_A = 0x01;
const CTRL_C = 0x03;

// Lines end in \r\n: the terminal is raw, and the guest's output shares the screen.
const ESCAPE_HELP = [
  'C-a h    print this help',
  'C-a x    exit the emulator',
  'C-a s    save disk data (not supported)',
  'C-a t    toggle console timestamps (not supported)',
  'C-a b    send a break (not supported)',
  'C-a c    switch between console and monitor',
  'C-a C-a  send C-a to the guest',
].join('\r\n');

const TERMINATING_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** Host stdin/stdout as a character device. */
export class StdioChardev extends Chardev {
  private readonly input: StdioInput;
  private readonly output: StdioOutput;
  private readonly escapes: boolean;
  private readonly signal: boolean;
  /** Called for `C-a x` (or Ctrl-C with signal on); replaceable by the board that runs the guest. */
  onQuit: () => void;
  /**
   * A human monitor sharing this terminal (QEMU's mux): `C-a c` switches the input between
   * the guest and it. Both write to the terminal; guest output keeps flowing meanwhile.
   */
  monitor: { input(data: Uint8Array): void; focus(on: boolean): void } | null = null;
  private monitorFocus = false;
  /** True while this device holds the terminal in raw mode. */
  private raw = false;
  private wasRaw = false;
  private gotEscape = false;
  private quitting = false;
  private closed = false;
  private pendingOutput: Buffer[] = [];
  private flushScheduled = false;

  private readonly onData = (chunk: Buffer): void => this.feed(chunk);
  // A read error (EIO once the terminal hangs up) ends input like EOF does.
  private readonly onError = (): void => {};
  /** Output failed (EPIPE: the reader went away, as with `vireo ... | head`): quit, as QEMU dies of SIGPIPE, without a stack trace. */
  private outputGone = false;
  private readonly onOutputError = (): void => {
    if (this.outputGone) return;
    this.outputGone = true;
    this.pendingOutput = [];
    if (!this.quitting) this.quit();
  };
  private readonly onExit = (): void => this.restoreTerminal();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.restoreTerminal();
    // If nobody else handles the signal, die of it as if this handler were not here.
    if (process.listenerCount(signal) === 1) {
      this.removeProcessHandlers();
      process.kill(process.pid, signal);
    }
  };

  constructor(opts: StdioChardevOptions) {
    super();
    this.input = opts.input ?? process.stdin;
    this.output = opts.output ?? process.stdout;
    this.escapes = opts.escapes ?? true;
    this.signal = opts.signal ?? !this.escapes;
    this.onQuit = opts.onQuit;
    if (this.input.isTTY === true && this.input.setRawMode !== undefined) {
      this.wasRaw = this.input.isRaw === true;
      this.input.setRawMode(true);
      this.raw = true;
      process.on('exit', this.onExit);
      for (const s of TERMINATING_SIGNALS) process.on(s, this.onSignal);
    }
    this.input.on('data', this.onData);
    this.input.on('error', this.onError);
    this.output.on?.('error', this.onOutputError);
    this.input.resume();
  }

  /**
   * Guest output: copied (the caller may reuse its buffer) and written in batches, once per
   * turn of the event loop, because a UART hands over one byte at a time.
   */
  override write(data: Uint8Array): void {
    this.pendingOutput.push(Buffer.from(data));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes out the batched guest output now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pendingOutput.length === 0 || this.outputGone) return;
    const data = Buffer.concat(this.pendingOutput);
    this.pendingOutput = [];
    this.output.write(data);
  }

  /** Stops reading stdin and gives the terminal back in its original mode. */
  override close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.forgetPausedSource();
    this.input.off('data', this.onData);
    this.input.off('error', this.onError);
    this.output.off?.('error', this.onOutputError);
    this.input.pause();
    this.restoreTerminal();
    this.removeProcessHandlers();
  }

  /** Splits host input into guest bytes and escape commands. */
  private feed(chunk: Buffer): void {
    if (this.quitting) return;
    let start = 0; // first byte of the run not yet passed to the guest
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.gotEscape) {
        this.gotEscape = false;
        if (b === CTRL_A) {
          start = i; // the second C-a goes to the guest with the run that follows
          continue;
        }
        start = i + 1;
        this.command(b);
        if (this.quitting) return;
      } else if (this.escapes && b === CTRL_A) {
        this.deliver(chunk, start, i);
        this.gotEscape = true;
        start = i + 1;
      } else if (this.signal && this.raw && b === CTRL_C) {
        this.deliver(chunk, start, i);
        this.quit();
        return;
      }
    }
    this.deliver(chunk, start, chunk.length);
  }

  private deliver(chunk: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (this.monitorFocus && this.monitor !== null) {
      this.monitor.input(chunk.subarray(start, end));
      return;
    }
    this.receiveFrom(this.input, chunk.subarray(start, end));
  }

  /** Acts on the key typed after C-a; unknown keys are dropped, as in QEMU. */
  private command(key: number): void {
    switch (String.fromCharCode(key)) {
      case 'h':
      case '?':
        this.note(ESCAPE_HELP);
        break;
      case 'x':
        this.note('vireo: terminated');
        this.quit();
        break;
      case 'c':
        if (this.monitor === null) {
          this.note('vireo: C-a c: there is no monitor (-qmp or -monitor took it)');
          break;
        }
        this.monitorFocus = !this.monitorFocus;
        this.flush();
        this.output.write('\r\n');
        this.monitor.focus(this.monitorFocus);
        break;
      case 's':
      case 't':
      case 'b':
        this.note(`vireo: C-a ${String.fromCharCode(key)}: not supported`);
        break;
    }
  }

  private note(text: string): void {
    this.flush();
    if (!this.outputGone) this.output.write(`\r\n${text}\r\n`);
  }

  private quit(): void {
    this.quitting = true;
    this.onQuit();
  }

  private restoreTerminal(): void {
    if (!this.raw) return;
    this.raw = false;
    try {
      this.input.setRawMode?.(this.wasRaw);
    } catch {
      // The terminal is gone (hangup): there is nothing left to restore.
    }
  }

  private removeProcessHandlers(): void {
    process.off('exit', this.onExit);
    for (const s of TERMINATING_SIGNALS) process.off(s, this.onSignal);
  }
}
