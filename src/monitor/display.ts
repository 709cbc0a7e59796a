/**
 * The display and input commands of both monitors: screendump (QMP and HMP), QMP's
 * input-send-event and HMP's sendkey, translated into evdev events with QEMU's key and
 * button names (src/ui/input-keys.ts).
 */
import { writeFile } from 'node:fs/promises';
import { encodePng, encodePpm } from '../ui/screendump.js';
import { ABS, EV, QCODE_TO_LINUX, QEMU_BUTTONS, REL, type InputEvent } from '../ui/input-keys.js';
import type { MachineControl } from './machine-control.js';

/** Errors here become QMP GenericErrors and HMP messages. */
export class DisplayError extends Error {}

/** Writes what the display shows to `filename` as PPM (QEMU's default) or PNG. */
export async function screendump(m: MachineControl, filename: string, format = 'ppm'): Promise<void> {
  if (format !== 'ppm' && format !== 'png') throw new DisplayError(`Parameter 'format' does not accept value '${format}'`);
  const p = m.screen?.() ?? null;
  if (p === null) throw new DisplayError('There is no QemuConsole I can screendump from.');
  try {
    await writeFile(filename, format === 'png' ? encodePng(p) : encodePpm(p));
  } catch (e) {
    throw new DisplayError(`failed to write '${filename}': ${(e as Error).message}`);
  }
}

function sendEvents(m: MachineControl, events: InputEvent[]): void {
  if (!(m.sendInput?.(events) ?? false)) throw new DisplayError('No input device is available (add -device virtio-keyboard-device or virtio-tablet-device)');
}

function keyCode(name: string): number {
  const code = QCODE_TO_LINUX.get(name);
  if (code === undefined) throw new DisplayError(`Parameter 'key' does not accept value '${name}'`);
  return code;
}

const obj = (v: unknown, what: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DisplayError(`Invalid parameter type for '${what}', expected: object`);
  return v as Record<string, unknown>;
};

/** One of QEMU's InputEvent unions ({type: key|btn|rel|abs, data}) as evdev events. */
function inputEvent(v: unknown): InputEvent[] {
  const e = obj(v, 'events');
  const data = obj(e.data, 'data');
  const down = data.down === true ? 1 : 0;
  const axis = (): number => {
    if (data.axis !== 'x' && data.axis !== 'y') throw new DisplayError(`Parameter 'axis' does not accept value '${String(data.axis)}'`);
    if (typeof data.value !== 'number' || !Number.isInteger(data.value)) throw new DisplayError("Invalid parameter type for 'value', expected: integer");
    return data.axis === 'x' ? 0 : 1;
  };
  switch (e.type) {
    case 'key': {
      const key = obj(data.key, 'key');
      if (key.type !== 'qcode' || typeof key.data !== 'string') throw new DisplayError('only keys given as {"type": "qcode", "data": NAME} are supported');
      return [{ type: EV.KEY, code: keyCode(key.data), value: down }];
    }
    case 'btn': {
      const b = String(data.button);
      // QEMU's virtio-input turns wheel buttons into wheel steps, on the press.
      if (b === 'wheel-up' || b === 'wheel-down') return down ? [{ type: EV.REL, code: REL.WHEEL, value: b === 'wheel-up' ? 1 : -1 }] : [];
      const code = QEMU_BUTTONS.get(b);
      if (code === undefined) throw new DisplayError(`Parameter 'button' does not accept value '${b}'`);
      return [{ type: EV.KEY, code, value: down }];
    }
    case 'rel': return [{ type: EV.REL, code: axis() === 0 ? REL.X : REL.Y, value: data.value as number }];
    case 'abs': return [{ type: EV.ABS, code: axis() === 0 ? ABS.X : ABS.Y, value: data.value as number }];
    default: throw new DisplayError(`Parameter 'type' does not accept value '${String(e.type)}'`);
  }
}

/** QMP input-send-event: all `events` (checked first), then one SYN_REPORT. */
export function inputSendEvent(m: MachineControl, events: unknown[]): void {
  sendEvents(m, events.flatMap(inputEvent));
}

/** HMP `sendkey ctrl-alt-f1`: presses the keys in order, then releases them in reverse. */
export function sendKey(m: MachineControl, keys: string): void {
  const codes = keys.split('-').map(keyCode);
  sendEvents(m, codes.map((code) => ({ type: EV.KEY, code, value: 1 })));
  sendEvents(m, codes.reverse().map((code) => ({ type: EV.KEY, code, value: 0 })));
}
