/**
 * Differential test of the CPU against QEMU (tests/difftest/README.md): every generated
 * program in tests/difftest/programs runs bare-metal under Vireo and must print exactly the
 * dump that qemu-riscv64-static printed for the Linux-user build of the same body (the golden
 * pNN.out). A difference is reported as the first differing register, buffer doubleword or
 * signature slot, with the generated instructions that produced it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DIR = join(ROOT, 'tests', 'difftest', 'programs');
const VIREO = join(ROOT, 'bin', 'vireo.js');
const BUF_DWORDS = 32; // the 256-byte scratch buffer (scripts/gen-difftest.mjs BUF_SIZE)
const ABI = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3',
  'a4', 'a5', 'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3',
  't4', 't5', 't6'];

const names = readdirSync(DIR).filter((f) => /^p\d+\.S$/.test(f)).map((f) => f.slice(0, -2)).sort();

/** What dump line i (0-based) holds: see harness.S. */
function lineName(i: number): string {
  if (i < 31) return `x${i + 1} (${ABI[i + 1]})`;
  if (i < 63) return `f${i - 31}`;
  if (i === 63) return 'fcsr';
  if (i < 64 + BUF_DWORDS) return `scratch buffer + ${(i - 64) * 8}`;
  return `sig ${i - 64 - BUF_DWORDS}`;
}

/** The generated source of signature slot n: the operation's lines up to its store. */
function sigSource(src: string, n: number): string {
  const lines = src.split('\n');
  const at = lines.findIndex((l) => l.includes(`/* sig ${n} */`));
  if (at < 0) return '';
  let from = at;
  while (from > 0 && !/^\s*\/\* \d+: /.test(lines[from]!)) from--;
  return `, line ${at + 1} of the source:\n${lines.slice(from, at + 1).join('\n')}`;
}

/** Describes the first difference between the golden dump and Vireo's, or returns null. */
function firstDifference(golden: string, got: string, src: string): string | null {
  if (got.startsWith('trap\n')) {
    const [cause, epc, tval] = got.split('\n').slice(1, 4);
    return `unexpected trap: mcause ${cause}, mepc = difftest_body + 0x${BigInt('0x' + epc).toString(16)}, mtval ${tval}`;
  }
  const g = golden.split('\n'), v = got.split('\n');
  for (let i = 0; i < Math.max(g.length, v.length); i++) {
    if (g[i] === v[i]) continue;
    if (g[i] === 'end' || g[i] === undefined) return `output longer than expected at line ${i + 1}: ${v[i]}`;
    if (v[i] === undefined || v[i] === '' || v[i] === 'end') return `output ends early at line ${i + 1} (${lineName(i)})`;
    const what = lineName(i);
    const m = /^sig (\d+)$/.exec(what);
    return `first difference at dump line ${i + 1}: ${what}${m ? sigSource(src, Number(m[1])) : ''}\n` +
      `  expected (qemu) ${g[i]}\n  got (vireo)     ${v[i]}`;
  }
  return null;
}

function runVireo(elf: string): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VIREO, '-M', 'virt', '-bios', 'none', '-nographic', '-kernel', elf],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, out, err }); });
  });
}

test('the difftest programs are present', () => {
  assert.ok(names.length >= 40, `expected at least 40 programs in ${DIR}, found ${names.length}`);
  for (const n of names) {
    for (const ext of ['.elf', '.linux.elf', '.out']) {
      assert.ok(existsSync(join(DIR, n + ext)), `${n}${ext} is missing: run node scripts/gen-difftest.mjs`);
    }
  }
});

for (const name of names) {
  test(`difftest ${name}: Vireo matches qemu`, async () => {
    const golden = readFileSync(join(DIR, `${name}.out`), 'latin1');
    const r = await runVireo(join(DIR, `${name}.elf`));
    const src = readFileSync(join(DIR, `${name}.S`), 'utf8');
    const diff = firstDifference(golden, r.out, src);
    if (diff) assert.fail(`${name}: ${diff}${r.err ? `\nstderr: ${r.err}` : ''}`);
    assert.equal(r.status, 0, `${name}: exit status ${r.status}\n${r.err}`);
  });
}

// ---------------------------------------------------------------------------------------------
// The golden dumps belong to the committed ELFs.

interface Section { type: number; addr: bigint; offset: number; size: number; link: number }

/** The bytes between the symbols difftest_body and difftest_body_end of a RISC-V ELF64. */
function bodyBytes(path: string): Buffer {
  const b = readFileSync(path);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a), shnum = b.readUInt16LE(0x3c);
  const secs: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    secs.push({ type: b.readUInt32LE(o + 4), addr: b.readBigUInt64LE(o + 16), offset: Number(b.readBigUInt64LE(o + 24)),
      size: Number(b.readBigUInt64LE(o + 32)), link: b.readUInt32LE(o + 40) });
  }
  const symtab = secs.find((s) => s.type === 2);
  assert.ok(symtab, `${path}: no symbol table`);
  const strtab = secs[symtab.link]!;
  const syms = new Map<string, bigint>();
  for (let o = symtab.offset; o < symtab.offset + symtab.size; o += 24) {
    const nameOff = strtab.offset + b.readUInt32LE(o);
    const name = b.toString('latin1', nameOff, b.indexOf(0, nameOff));
    syms.set(name, b.readBigUInt64LE(o + 8));
  }
  const start = syms.get('difftest_body'), end = syms.get('difftest_body_end');
  assert.ok(start !== undefined && end !== undefined, `${path}: difftest_body symbols missing`);
  const sec = secs.find((s) => s.type === 1 && s.addr <= start && end <= s.addr + BigInt(s.size));
  assert.ok(sec, `${path}: the body is in no section`);
  const off = sec.offset + Number(start - sec.addr);
  return b.subarray(off, off + Number(end - start));
}

test('the bare-metal and Linux builds contain the same body', () => {
  for (const n of names) {
    const bare = bodyBytes(join(DIR, `${n}.elf`)), linux = bodyBytes(join(DIR, `${n}.linux.elf`));
    assert.ok(bare.length > 0 && bare.equals(linux), `${n}: the bodies of ${n}.elf and ${n}.linux.elf differ: rebuild with node scripts/gen-difftest.mjs`);
  }
});

const qemu = spawnSync('qemu-riscv64-static', ['--version'], { encoding: 'utf8' });
const haveQemu = !qemu.error && qemu.status === 0;

test('the golden dumps are what qemu-riscv64-static prints now', { skip: haveQemu ? false : 'qemu-riscv64-static not installed: golden dumps not re-verified' }, () => {
  for (const n of names) {
    const r = spawnSync('qemu-riscv64-static', [join(DIR, `${n}.linux.elf`)], { encoding: 'latin1', timeout: 30_000, maxBuffer: 1 << 24 });
    assert.equal(r.status, 0, `${n}: qemu-riscv64-static exit status ${r.status} (${r.signal ?? ''})`);
    const golden = readFileSync(join(DIR, `${n}.out`), 'latin1');
    const diff = firstDifference(golden, r.stdout, readFileSync(join(DIR, `${n}.S`), 'utf8'));
    assert.equal(diff, null, `${n}: the golden dump is stale (regenerate with node scripts/gen-difftest.mjs): ${diff}`);
  }
});
