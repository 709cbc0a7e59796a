/**
 * The gdbstub's framing (src/gdbstub/packet.ts): checksums, acknowledgements, the interrupt
 * byte, run-length encoding, binary escapes; input in any chunking; malformed or random
 * input never throws and never yields a packet whose checksum did not match.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  PacketDecoder, checksum, decodeRle, encodePacket, escapeBinary, fromHex, toHex, unescapeBinary, type GdbInput,
} from '../../src/gdbstub/packet.js';

const decode = (text: string | Buffer, max = 64): GdbInput[] => new PacketDecoder(max).push(Buffer.from(text as string, 'latin1'));
const packets = (inputs: GdbInput[]) => inputs.map((i) => (i.kind === 'packet' ? i.data.toString('latin1') : i.kind));

test('encodePacket frames with the modulo-256 checksum in two lower-case hex digits', () => {
  assert.equal(encodePacket('OK').toString('latin1'), '$OK#9a');
  assert.equal(encodePacket('').toString('latin1'), '$#00');
  assert.equal(encodePacket('qSupported').toString('latin1'), '$qSupported#37');
  assert.equal(checksum(Buffer.from([0xff, 0xff, 0x03])), 0x01);
});

test('packets, acks, nacks and Ctrl-C are told apart; noise between packets is skipped', () => {
  assert.deepEqual(packets(decode('+$g#67-\x03xyz$m0,4#fd')), ['ack', 'g', 'nack', 'interrupt', 'm0,4']);
  // Checksum digits in either case.
  assert.deepEqual(packets(decode('$qC#B4$qC#b4')), ['qC', 'qC']);
});

test('a packet split across reads, one byte at a time, is the same packet', () => {
  const d = new PacketDecoder(64);
  const out: GdbInput[] = [];
  for (const b of Buffer.from('$vCont;c#a8$?#3f')) out.push(...d.push(Buffer.from([b])));
  assert.deepEqual(packets(out), ['vCont;c', '?']);
});

test('a wrong checksum, a bad checksum digit or an oversized packet is reported bad, and the next packet is read', () => {
  assert.deepEqual(packets(decode('$g#00$g#67')), ['bad', 'g']);
  assert.deepEqual(packets(decode('$g#6z$g#67')), ['bad', 'g']);
  assert.deepEqual(packets(decode('$g#x7$g#67')), ['bad', 'g']);
  const long = 'm'.repeat(100);
  assert.deepEqual(packets(decode(encodePacket(long), 64)), ['bad']);
  assert.deepEqual(packets(decode(encodePacket(long), 100)), [long]);
  // Bytes inside a packet are data, even 0x03 and '+'.
  assert.deepEqual(packets(decode(encodePacket('X0,2:\x03+'))), ['X0,2:\x03+']);
  // A '$' inside a packet starts over (gdb resending after a lost byte).
  assert.deepEqual(packets(decode('$g$g#67')), ['g']);
});

test('run-length encoding expands; a repeat with nothing before it or a bad count is bad', () => {
  assert.equal(decodeRle(Buffer.from('0* '))!.toString(), '0000');
  assert.equal(decodeRle(Buffer.from('a*"b'))!.toString(), 'aaaaaab');
  assert.equal(decodeRle(Buffer.from('x*~'))!.toString(), 'x'.repeat(98));
  assert.equal(decodeRle(Buffer.from('*!')), null);
  assert.equal(decodeRle(Buffer.from('a*')), null);
  assert.equal(decodeRle(Buffer.from('a*\x01')), null);
  assert.deepEqual(packets(decode(encodePacket('P1=0* '))), ['P1=0000']);
  assert.deepEqual(packets(decode(encodePacket('*!'))), ['bad']);
});

test('binary escapes round-trip every byte; a dangling escape is refused', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const esc = escapeBinary(all);
  for (const c of '#$*') assert.ok(!esc.includes(c.charCodeAt(0)), `${c} escaped`);
  assert.deepEqual(unescapeBinary(esc), all);
  assert.deepEqual(unescapeBinary(Buffer.from('}]}\x03}\x04}\x0a')), Buffer.from('}#$*'));
  assert.equal(unescapeBinary(Buffer.from('ab}')), null);
  // An escaped binary packet survives framing and decoding.
  assert.deepEqual(packets(decode(encodePacket(Buffer.concat([Buffer.from('X0,4:'), escapeBinary(Buffer.from('#$*}'))])))),
    [`X0,4:${escapeBinary(Buffer.from('#$*}')).toString('latin1')}`]);
});

test('hex helpers', () => {
  assert.equal(toHex(Buffer.from([0, 0xab, 0x10])), '00ab10');
  assert.deepEqual(fromHex('00AB10'), Buffer.from([0, 0xab, 0x10]));
  assert.equal(fromHex('abc'), null);
  assert.equal(fromHex('zz'), null);
});

test('random input never throws, and every packet it yields has a matching checksum', () => {
  const d = new PacketDecoder(256);
  for (let i = 0; i < 2000; i++) {
    const junk = randomBytes(1 + (i % 97));
    // Mix in protocol characters so that framing states are reached often.
    for (let k = 0; k < junk.length; k += 7) junk[k] = '$#*}+-\x03'.charCodeAt(k % 7);
    for (const inp of d.push(junk)) {
      assert.ok(['packet', 'bad', 'ack', 'nack', 'interrupt'].includes(inp.kind));
    }
  }
  // The decoder still works after all that.
  d.push(Buffer.from('#00'));
  assert.deepEqual(packets(d.push(Buffer.from('$g#67'))), ['g']);
});
