/**
 * Pictures for QEMU's `screendump`: binary PPM (P6, QEMU's default) and PNG (8-bit RGB,
 * one zlib stream, no filtering), from packed RGB pixels.
 */
import { deflateSync } from 'node:zlib';

/** A picture: `rgb` holds width * height pixels of 3 bytes, rows top to bottom. */
export interface Picture {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export function encodePpm(p: Picture): Buffer {
  return Buffer.concat([Buffer.from(`P6\n${p.width} ${p.height}\n255\n`), p.rgb]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodePng(p: Picture): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(p.width, 0);
  header.writeUInt32BE(p.height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits per channel, RGB, deflate, no filter method choice, no interlace
  const row = p.width * 3;
  const raw = Buffer.alloc((row + 1) * p.height);
  for (let y = 0; y < p.height; y++) raw.set(p.rgb.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}
