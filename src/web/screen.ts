/**
 * The guest's framebuffer on a canvas, and the canvas's keyboard and mouse as the
 * virtio keyboard and tablet. The pixels are read straight from the guest's shared
 * memory, at most 30 times a second and only while the page is visible.
 */
import { ABS, ABS_MAX, BTN, DOM_CODE_TO_LINUX, EV, REL, type InputEvent } from '../ui/input-keys.js';
import type { FramebufferView, VirtualMachine } from './vm.js';

const FRAME_MS = 1000 / 30;
/** MouseEvent.button: left, middle, right. */
const BUTTONS = [BTN.LEFT, BTN.MIDDLE, BTN.RIGHT];

export class Screen {
  private view: FramebufferView | null = null;
  private image: ImageData | null = null;
  private readonly ctx: CanvasRenderingContext2D;
  private last = 0;
  /** Keys held down, released when the canvas loses the focus (so that none sticks). */
  private readonly held = new Set<number>();

  constructor(readonly canvas: HTMLCanvasElement, private readonly vm: VirtualMachine) {
    this.ctx = canvas.getContext('2d')!;
    canvas.tabIndex = 0;
    canvas.addEventListener('keydown', (e) => this.key(e, 1));
    canvas.addEventListener('keyup', (e) => this.key(e, 0));
    canvas.addEventListener('blur', () => {
      this.send([...this.held].map((code) => ({ type: EV.KEY, code, value: 0 })));
      this.held.clear();
    });
    canvas.addEventListener('mousemove', (e) => this.send(this.position(e)));
    canvas.addEventListener('mousedown', (e) => this.button(e, 1));
    canvas.addEventListener('mouseup', (e) => this.button(e, 0));
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      if (e.deltaY !== 0) this.send([{ type: EV.REL, code: REL.WHEEL, value: e.deltaY < 0 ? 1 : -1 }]);
    }, { passive: false });
    requestAnimationFrame((t) => this.frame(t));
  }

  /** Shows `view` (a new machine's framebuffer), or nothing. */
  show(view: FramebufferView | null): void {
    this.view = view;
    this.image = view && new ImageData(view.width, view.height);
    if (view) {
      this.canvas.width = view.width;
      this.canvas.height = view.height;
    }
  }

  private frame(t: number): void {
    requestAnimationFrame((n) => this.frame(n));
    const { view, image } = this;
    if (!view || !image || document.hidden || t - this.last < FRAME_MS) return;
    this.last = t;
    // XRGB8888 in, RGBA out (as little-endian words: 0xAABBGGRR), opaque.
    const src = new Uint32Array(view.memory, view.offset, (view.stride / 4) * view.height);
    const dst = new Uint32Array(image.data.buffer);
    const rowWords = view.stride / 4;
    for (let y = 0, o = 0; y < view.height; y++) {
      for (let x = 0, i = y * rowWords; x < view.width; x++, i++, o++) {
        const p = src[i]!;
        dst[o] = 0xff000000 | ((p & 0xff) << 16) | (p & 0xff00) | ((p >>> 16) & 0xff);
      }
    }
    this.ctx.putImageData(image, 0, 0);
  }

  private send(events: InputEvent[]): void {
    if (this.view && events.length > 0) this.vm.sendInputEvents(events);
  }

  private key(e: KeyboardEvent, value: number): void {
    const code = DOM_CODE_TO_LINUX.get(e.code);
    if (code === undefined) return;
    e.preventDefault();
    // The guest repeats held keys itself (the keyboard has EV_REP).
    if (e.repeat) return;
    if (value) this.held.add(code);
    else this.held.delete(code);
    this.send([{ type: EV.KEY, code, value }]);
  }

  /** The pointer's place on the canvas, scaled to the tablet's axes. */
  private position(e: MouseEvent): InputEvent[] {
    const r = this.canvas.getBoundingClientRect();
    const scale = (v: number, size: number) => Math.round(Math.min(Math.max(v / size, 0), 1) * ABS_MAX);
    return [{ type: EV.ABS, code: ABS.X, value: scale(e.clientX - r.left, r.width) }, { type: EV.ABS, code: ABS.Y, value: scale(e.clientY - r.top, r.height) }];
  }

  private button(e: MouseEvent, value: number): void {
    const code = BUTTONS[e.button];
    if (code === undefined) return;
    if (value) this.canvas.focus();
    this.send([...this.position(e), { type: EV.KEY, code, value }]);
  }
}
