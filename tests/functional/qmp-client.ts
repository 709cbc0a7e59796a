/**
 * Test helper: the stdlib-only Python QMP client (qmp_client.py) as a child process, one
 * JSON request a line in, one server message a line out.
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './guest-console.js';

export type Msg = Record<string, any>;

/** The Python client as a child process: one JSON request a line in, one message a line out. */
export class QmpClient {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly queue: Msg[] = [];
  private waiter: (() => void) | null = null;
  stderr = '';

  constructor(sock: string) {
    this.child = spawn('python3', [join(ROOT, 'tests', 'functional', 'qmp_client.py'), sock], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.queue.push(JSON.parse(line) as Msg);
      this.waiter?.();
    });
    this.child.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  /** The next message the client printed. */
  async next(timeoutMs = 30_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (Date.now() > deadline) throw new Error(`no message from the QMP client; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
    }
    return this.queue.shift()!;
  }

  /** Sends `req`; resolves to the events that came before the answer, and the answer. */
  async request(req: Msg): Promise<{ events: Msg[]; answer: Msg }> {
    this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const events: Msg[] = [];
    for (;;) {
      const m = await this.next();
      if (m.eof) throw new Error(`connection closed before the answer to ${JSON.stringify(req)}`);
      if ('return' in m || 'error' in m) return { events, answer: m };
      events.push(m);
    }
  }

  async execute(command: string, args?: Msg): Promise<any> {
    const { answer } = await this.request({ execute: command, ...(args ? { arguments: args } : {}), id: command });
    assert.equal(answer.id, command);
    assert.ok('return' in answer, `${command}: ${JSON.stringify(answer)}`);
    return answer.return;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
