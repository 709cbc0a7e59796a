/**
 * The null character device (QEMU's `-serial null` and, in Vireo, `-serial none`):
 * output is discarded and no input ever arrives.
 */
import { Chardev } from './chardev.js';

/** A character device connected to nothing. */
export class NullChardev extends Chardev {
  override write(_data: Uint8Array): void {}
}
