/**
 * Test helper: runs `vireo` as a user would (bin/vireo.js in a child process) and
 * drives the guest's serial console: wait for text, type a line, collect the exit.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const VIREO = join(ROOT, 'bin', 'vireo.js');

/** A running Vireo with its console. */
export class GuestConsole {
  readonly child: ChildProcessWithoutNullStreams;
  output = '';
  stderr = '';
  private readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];

  constructor(args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [VIREO, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      this.output += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => {
      for (const w of this.waiters.splice(0)) w();
      resolve(code);
    }));
  }

  /** Resolves once the output after `from` matches `re`; rejects on timeout or exit. */
  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.output.slice(from));
      if (m) return m[0];
      if (this.child.exitCode !== null) throw new Error(`vireo exited (${this.child.exitCode}) before ${re}:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Types a command and returns the text it printed before the next prompt. */
  async run(cmd: string, prompt: RegExp, timeoutMs = 30_000): Promise<string> {
    const from = this.output.length;
    this.child.stdin.write(`${cmd}\n`);
    await this.waitFor(prompt, timeoutMs, from + cmd.length);
    const text = this.output.slice(from);
    // What follows the shell's echo of the command (a late kernel message or newline may
    // come before the echo; a long command's echo may be wrapped: then the first line).
    const echo = text.indexOf(cmd);
    return text.slice(text.indexOf('\n', echo >= 0 ? echo + cmd.length : 0) + 1).replace(prompt, '');
  }

  send(text: string): void {
    this.child.stdin.write(text);
  }

  /** Resolves to the exit status; kills the process after `timeoutMs`. */
  async exit(timeoutMs: number): Promise<number | null> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  tail(): string {
    return `--- output (last 3000 chars) ---\n${this.output.slice(-3000)}\n--- stderr ---\n${this.stderr}`;
  }
}
