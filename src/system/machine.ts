/**
 * Picks the board for the parsed options and runs it: the RISC-V `virt` board on the
 * software CPU, or the x86_64 `microvm` board under KVM. Each board is loaded only
 * when chosen, so that the RISC-V path never loads the KVM binding.
 */
import type { VmOptions } from './options.js';

/** Builds and runs the machine; resolves to the process exit status. */
export async function runMachine(opts: VmOptions): Promise<number> {
  if (opts.machine === 'microvm') return (await import('../hw/i386/microvm.js')).runMicrovm(opts);
  return (await import('../hw/riscv/virt.js')).runMachine(opts);
}
