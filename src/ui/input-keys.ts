/**
 * Key and button names as the host ends spell them (QEMU's QKeyCode of QMP's
 * input-send-event, the DOM's KeyboardEvent.code) and the Linux input event codes
 * (include/uapi/linux/input-event-codes.h) that virtio-input sends the guest. A PC
 * keyboard's keys only.
 */

/** One evdev event. */
export interface InputEvent {
  type: number;
  code: number;
  value: number;
}

/** Event types and the codes Vireo uses. */
export const EV = { SYN: 0, KEY: 1, REL: 2, ABS: 3, MSC: 4, LED: 0x11, REP: 0x14 } as const;
export const SYN_REPORT = 0;
export const REL = { X: 0, Y: 1, WHEEL: 8 } as const;
export const ABS = { X: 0, Y: 1 } as const;
/** The absolute axes run from 0 to this (QEMU's INPUT_EVENT_ABS_MAX), whatever the screen size. */
export const ABS_MAX = 0x7fff;
export const BTN = { LEFT: 0x110, RIGHT: 0x111, MIDDLE: 0x112, SIDE: 0x113, EXTRA: 0x114 } as const;

/** [Linux code, QEMU qcode, DOM code] of the keys that are not letters, digits or F1-F12. */
const OTHER_KEYS: ReadonlyArray<readonly [number, string, string]> = [
  [1, 'esc', 'Escape'], [12, 'minus', 'Minus'], [13, 'equal', 'Equal'], [14, 'backspace', 'Backspace'],
  [15, 'tab', 'Tab'], [26, 'bracket_left', 'BracketLeft'], [27, 'bracket_right', 'BracketRight'],
  [28, 'ret', 'Enter'], [29, 'ctrl', 'ControlLeft'], [39, 'semicolon', 'Semicolon'], [40, 'apostrophe', 'Quote'],
  [41, 'grave_accent', 'Backquote'], [42, 'shift', 'ShiftLeft'], [43, 'backslash', 'Backslash'],
  [51, 'comma', 'Comma'], [52, 'dot', 'Period'], [53, 'slash', 'Slash'], [54, 'shift_r', 'ShiftRight'],
  [55, 'kp_multiply', 'NumpadMultiply'], [56, 'alt', 'AltLeft'], [57, 'spc', 'Space'], [58, 'caps_lock', 'CapsLock'],
  [69, 'num_lock', 'NumLock'], [70, 'scroll_lock', 'ScrollLock'], [71, 'kp_7', 'Numpad7'], [72, 'kp_8', 'Numpad8'],
  [73, 'kp_9', 'Numpad9'], [74, 'kp_subtract', 'NumpadSubtract'], [75, 'kp_4', 'Numpad4'], [76, 'kp_5', 'Numpad5'],
  [77, 'kp_6', 'Numpad6'], [78, 'kp_add', 'NumpadAdd'], [79, 'kp_1', 'Numpad1'], [80, 'kp_2', 'Numpad2'],
  [81, 'kp_3', 'Numpad3'], [82, 'kp_0', 'Numpad0'], [83, 'kp_decimal', 'NumpadDecimal'], [86, 'less', 'IntlBackslash'],
  [96, 'kp_enter', 'NumpadEnter'], [97, 'ctrl_r', 'ControlRight'], [98, 'kp_divide', 'NumpadDivide'],
  [99, 'sysrq', 'PrintScreen'], [100, 'alt_r', 'AltRight'], [102, 'home', 'Home'], [103, 'up', 'ArrowUp'],
  [104, 'pgup', 'PageUp'], [105, 'left', 'ArrowLeft'], [106, 'right', 'ArrowRight'], [107, 'end', 'End'],
  [108, 'down', 'ArrowDown'], [109, 'pgdn', 'PageDown'], [110, 'insert', 'Insert'], [111, 'delete', 'Delete'],
  [119, 'pause', 'Pause'], [125, 'meta_l', 'MetaLeft'], [126, 'meta_r', 'MetaRight'], [127, 'menu', 'ContextMenu'],
];

function allKeys(): Array<readonly [number, string, string]> {
  const keys = [...OTHER_KEYS];
  // Letters by keyboard row, as the Linux codes run.
  for (const [first, row] of [[16, 'qwertyuiop'], [30, 'asdfghjkl'], [44, 'zxcvbnm']] as const) {
    [...row].forEach((c, i) => keys.push([first + i, c, `Key${c.toUpperCase()}`]));
  }
  for (let d = 1; d <= 10; d++) keys.push([d + 1, String(d % 10), `Digit${d % 10}`]);
  for (let f = 1; f <= 12; f++) keys.push([f <= 10 ? 58 + f : 76 + f, `f${f}`, `F${f}`]);
  return keys;
}

const KEYS = allKeys();
/** Linux key code by QEMU qcode. */
export const QCODE_TO_LINUX: ReadonlyMap<string, number> = new Map(KEYS.map(([code, q]) => [q, code]));
/** Linux key code by DOM KeyboardEvent.code. */
export const DOM_CODE_TO_LINUX: ReadonlyMap<string, number> = new Map(KEYS.map(([code, , dom]) => [dom, code]));
/** Every key code a keyboard reports. */
export const KEYBOARD_CODES: readonly number[] = KEYS.map(([code]) => code);

/** Linux button code by QEMU's InputButton name (wheel-up/down are REL_WHEEL, not buttons). */
export const QEMU_BUTTONS: ReadonlyMap<string, number> = new Map([
  ['left', BTN.LEFT], ['right', BTN.RIGHT], ['middle', BTN.MIDDLE], ['side', BTN.SIDE], ['extra', BTN.EXTRA],
]);
