/**
 * The compiled RISC-V core in the browser, in place of src/target/riscv/core-module.ts
 * (the bundler swaps them): there is no file to read, so the worker compiles the core it
 * fetched and hands it over here before building a machine.
 */
let provided: WebAssembly.Module | null = null;

export function provideCoreModule(module: WebAssembly.Module): void {
  provided = module;
}

export function loadCoreModule(): WebAssembly.Module {
  if (provided === null) throw new Error('the RISC-V core has not been fetched yet');
  return provided;
}
