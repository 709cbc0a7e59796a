/**
 * Opens the host character device that `-serial` (or `-nographic`) names.
 */
import type { Chardev } from './chardev.js';
import { StdioChardev } from './stdio.js';
import { FileChardev } from './file.js';
import { NullChardev } from './null.js';
import type { VmOptions } from '../system/options.js';

/** The serial port's backend; `onQuit` is called for the C-a x escape. */
export function openSerial(opts: VmOptions, onQuit: () => void): Chardev {
  switch (opts.serial.kind) {
    case 'stdio': return new StdioChardev({ onQuit });
    case 'file': return new FileChardev(opts.serial.path);
    case 'null': return new NullChardev();
  }
}
