/**
 * A linear framebuffer as boot firmware leaves one behind: pixels in guest memory, no
 * registers, described to the guest by a device tree node compatible with
 * "simple-framebuffer" (Documentation/devicetree/bindings/display/simple-framebuffer.yaml),
 * which Linux's simplefb (or simpledrm) drives. The board places the pixels; the host
 * reads them as they are (screendump, the web page's canvas).
 */
import type { FdtBuilder } from '../core/fdt.js';

/** 32 bits per pixel, little-endian XRGB: bytes B, G, R, unused. */
export const SIMPLEFB_FORMAT = 'x8r8g8b8';
const BYTES_PER_PIXEL = 4;
export const SIMPLEFB_DEFAULT = { width: 800, height: 600 } as const;
export const SIMPLEFB_MAX = 4096;

/** The framebuffer's geometry; the pixels are `bytes` bytes of guest memory. */
export class SimpleFramebuffer {
  readonly stride: number;
  readonly bytes: number;

  constructor(readonly width: number, readonly height: number) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > SIMPLEFB_MAX || height > SIMPLEFB_MAX) {
      throw new RangeError(`framebuffer size ${width}x${height} (1 to ${SIMPLEFB_MAX} pixels each way)`);
    }
    this.stride = width * BYTES_PER_PIXEL;
    this.bytes = this.stride * height;
  }

  /** The node for `/chosen` (where the binding wants it), the pixels at guest-physical `base`. */
  fdtNode(f: FdtBuilder, base: number): void {
    f.beginNode(`framebuffer@${base.toString(16)}`);
    f.propString('compatible', 'simple-framebuffer');
    f.propCells64('reg', [base, this.bytes]);
    f.propU32('width', this.width);
    f.propU32('height', this.height);
    f.propU32('stride', this.stride);
    f.propString('format', SIMPLEFB_FORMAT);
    f.propString('status', 'okay');
    f.endNode();
  }

  /** The picture in `pixels` (the framebuffer's bytes) as packed RGB, 3 bytes a pixel (PPM and PNG order). */
  rgb(pixels: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.width * this.height * 3);
    for (let y = 0, o = 0; y < this.height; y++) {
      for (let x = 0, i = y * this.stride; x < this.width; x++, i += BYTES_PER_PIXEL, o += 3) {
        out[o] = pixels[i + 2]!;
        out[o + 1] = pixels[i + 1]!;
        out[o + 2] = pixels[i]!;
      }
    }
    return out;
  }
}
