/**
 * The program entry (QEMU's vl.c): parse the command line, answer -help/-version, or
 * build and run the machine. Errors the user can fix (a bad option, a missing file)
 * become one line on stderr and exit status 1; anything else is a Vireo bug and gets a
 * stack trace and status 2.
 */
import { parseCommandLine } from './cmdline.js';
import { UserError, type VmOptions } from './options.js';

/** What {@link main} runs and where it writes; tests substitute their own. */
export interface MainEnv {
  runMachine(opts: VmOptions): Promise<number>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const processEnv: MainEnv = {
  // Loaded only when a machine is to run, so -help and bad options answer quickly.
  runMachine: async (opts) => (await import('./machine.js')).runMachine(opts),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** Runs Vireo with the arguments after the program name; resolves to the exit status. */
export async function main(argv: string[], env: MainEnv = processEnv): Promise<number> {
  try {
    const cmd = parseCommandLine(argv);
    if (cmd.kind !== 'run') {
      env.stdout(`${cmd.text}\n`);
      return 0;
    }
    return await env.runMachine(cmd.options);
  } catch (err) {
    const message = userMessage(err);
    if (message !== undefined) {
      env.stderr(`vireo: ${message}\n`);
      return 1;
    }
    env.stderr(`vireo: internal error (a bug in Vireo):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 2;
  }
}

/** The C library's wording for the errors a user meets when naming files. */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  EEXIST: 'File exists',
  EMFILE: 'Too many open files',
  EBUSY: 'Device or resource busy',
  ENXIO: 'No such device or address',
};

interface SystemError extends Error {
  code: string;
  syscall: string;
  path?: string;
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as Partial<SystemError>).code === 'string' && typeof (err as Partial<SystemError>).syscall === 'string';
}

/**
 * The one-line message (without the `vireo: ` prefix) for an error caused by the user's
 * input or host environment, or undefined if the error is an internal one.
 */
export function userMessage(err: unknown): string | undefined {
  if (err instanceof UserError) return err.message;
  if (!isSystemError(err)) return undefined;
  // Node's own text is "ENOENT: no such file or directory, open 'x'"; keep the middle.
  const fromNode = new RegExp(`^${err.code}: (.*?), ${err.syscall}\\b`).exec(err.message)?.[1];
  const text = STRERROR[err.code] ?? (fromNode !== undefined ? fromNode[0]!.toUpperCase() + fromNode.slice(1) : err.code);
  return `${err.path ?? err.syscall}: ${text}`;
}
