/**
 * Test helper: one HMP command on a monitor's Unix socket (`-monitor unix:PATH,server=on,wait=off`),
 * as a user types it. Not a test file itself.
 */
import { connect } from 'node:net';

/** Runs `cmd` and returns its output (without the echo and the prompt). */
export async function hmp(sock: string, cmd: string): Promise<string> {
  const s = connect(sock);
  let buf = '';
  s.on('data', (d: Buffer) => { buf += d.toString(); });
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  const prompt = async (from: number): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!buf.slice(from).includes('(qemu) ')) {
      if (Date.now() > deadline) throw new Error(`${cmd}: no monitor prompt: ${buf}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await prompt(0);
  const start = buf.length;
  s.write(`${cmd}\n`);
  await prompt(start);
  s.destroy();
  return buf.slice(start).replace(`${cmd}\r\n`, '').replace(/\(qemu\) $/, '');
}
