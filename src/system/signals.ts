/**
 * SIGTERM, SIGINT and SIGHUP while a machine runs, as QEMU handles them: "terminating on
 * signal N", then the same clean shutdown as `quit`, so that the disks are closed (a qcow2
 * image writes the table updates it keeps for the guest's next flush) and the exit status is
 * 0. A second signal, or a shutdown not done within 5 s, ends the process as the signal's
 * default action would.
 */
import { constants } from 'node:os';

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
/** How long the clean shutdown may take. */
const GRACE_MS = 5000;

/** Calls `quit` on the first of those signals; returns the function that stops listening. */
export function quitOnSignals(quit: () => void): () => void {
  let received = false;
  let grace: NodeJS.Timeout | undefined;
  const stop = (): void => {
    clearTimeout(grace);
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (received) {
      stop();
      // Raised again without this listener: the default action, or the terminal's listener
      // (src/chardev/stdio.ts), which restores the terminal and then does the same.
      process.kill(process.pid, signal);
      return;
    }
    received = true;
    process.stderr.write(`vireo: terminating on signal ${constants.signals[signal]}\n`);
    quit();
    // A machine not yet running its loop (waiting for an incoming migration, say) may not
    // get to the shutdown: the signal's default action then follows after all.
    grace = setTimeout(() => onSignal(signal), GRACE_MS).unref();
  }
  for (const s of SIGNALS) process.on(s, onSignal);
  return stop;
}
