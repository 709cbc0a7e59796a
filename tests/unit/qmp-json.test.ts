/**
 * The QMP stream splitter (src/monitor/json-stream.ts): messages split across reads,
 * several in one read, recovery after garbage, and bounded memory for huge or deep input.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { JsonStream } from '../../src/monitor/json-stream.js';

function collect(limits?: { maxBytes?: number; maxDepth?: number }) {
  const values: unknown[] = [];
  const errors: string[] = [];
  const s = new JsonStream({ value: (v) => values.push(v), error: (e) => errors.push(e) }, limits);
  return { s, values, errors };
}

test('an object split at every byte boundary is read once, whole', () => {
  const text = '{"execute": "human-monitor-command", "arguments": {"command-line": "info {x} \\"q\\" \\\\"}, "id": [1, {"a": "é"}]}';
  const bytes = Buffer.from(text);
  for (let cut = 1; cut < bytes.length; cut++) {
    const { s, values, errors } = collect();
    s.feed(bytes.subarray(0, cut));
    assert.equal(values.length, 0);
    s.feed(bytes.subarray(cut));
    assert.deepEqual(values, [JSON.parse(text)]);
    assert.deepEqual(errors, []);
  }
  // One byte at a time, including the two bytes of the é.
  const { s, values } = collect();
  for (const b of bytes) s.feed(Uint8Array.of(b));
  assert.deepEqual(values, [JSON.parse(text)]);
});

test('several messages in one read, with CRLF and blanks between, in order', () => {
  const { s, values, errors } = collect();
  s.feed('{"execute":"a"}{"execute":"b"}\r\n  {"execute":"c","id":1}\n[1,2]"str" 42 true\n');
  assert.deepEqual(values, [{ execute: 'a' }, { execute: 'b' }, { execute: 'c', id: 1 }, [1, 2], 'str', 42, true]);
  assert.deepEqual(errors, []);
});

test('garbage gets a JSON parse error and the next message is read normally', () => {
  const { s, values, errors } = collect();
  s.feed('hello {"execute":"a"} } {"execute": nope} {"execute":"b"}');
  assert.deepEqual(values, [{ execute: 'a' }, { execute: 'b' }]);
  assert.equal(errors.length, 3);
  for (const e of errors) assert.match(e, /^JSON parse error/);
  assert.match(errors[0]!, /invalid keyword 'hello'/);
});

test('a 0xFF byte resets a half-read message', () => {
  const { s, values, errors } = collect();
  s.feed('{"execute": "x", "argu');
  s.feed(Uint8Array.of(0xff));
  s.feed('{"execute":"y"}');
  assert.deepEqual(values, [{ execute: 'y' }]);
  assert.deepEqual(errors, []);
  assert.equal(s.busy, false);
});

test('a message over the size limit is refused once, skipped without being stored, then reading goes on', () => {
  const { s, values, errors } = collect({ maxBytes: 1024 });
  s.feed('{"execute": "x", "arguments": {"data": "');
  const chunk = Buffer.alloc(64 * 1024, 'a'.charCodeAt(0));
  for (let i = 0; i < 256; i++) s.feed(chunk); // 16 MiB that must not be kept
  assert.deepEqual(errors, ['JSON parse error, message too large']);
  assert.equal((s as unknown as { size: number }).size, 0, 'nothing of the huge message is held');
  s.feed('"}}{"execute":"after"}');
  assert.deepEqual(values, [{ execute: 'after' }]);
  assert.equal(errors.length, 1);
});

test('nesting deeper than the limit is refused once; the stream recovers when the brackets close', () => {
  const { s, values, errors } = collect({ maxDepth: 8 });
  s.feed(`${'['.repeat(100000)}${']'.repeat(100000)}`);
  assert.deepEqual(errors, ['JSON parse error, too deeply nested']);
  s.feed(`{"a": ${'['.repeat(7)}${']'.repeat(7)}}`);
  assert.deepEqual(values, [{ a: [[[[[[[]]]]]]] }]);
});

test('the default limits: a 2 MiB message is refused, 64 levels are accepted', () => {
  const { s, values, errors } = collect();
  s.feed(`{"x": "${'b'.repeat(2 << 20)}"}`);
  assert.deepEqual(errors, ['JSON parse error, message too large']);
  s.feed(`${'['.repeat(64)}${']'.repeat(64)}`);
  assert.equal(values.length, 1);
});
