/**
 * Differential test of the CPU against QEMU (tests/difftest/README.md): every generated
 * program in tests/difftest/programs runs bare-metal under Vireo and must print exactly the
 * dump that qemu-riscv64-static printed for the Linux-user build of the same body (the golden
 * pNN.out). A difference is reported as the earliest differing signature slot with the
 * generated instructions that produced it, else an instruction that raised illegal instruction
 * on one side only, else the first differing register or buffer doubleword.
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
// as in scripts/gen-difftest.mjs: QEMU 7.2's default CPU also has Zba/Zbb/Zbc/Zbs
const QEMU_CPU = 'rv64,zba=false,zbb=false,zbc=false,zbs=false';
const BUF_DWORDS = 32; // the 256-byte scratch buffer (scripts/gen-difftest.mjs BUF_SIZE)
const ABI = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3',
  'a4', 'a5', 'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3',
  't4', 't5', 't6'];

const names = readdirSync(DIR).filter((f) => /^p\d+\.S$/.test(f)).map((f) => f.slice(0, -2)).sort();

/** What dump line i (0-based) of a dump with `total` lines (without "end") holds: see harness.S. */
function lineName(i: number, total: number): string {
  if (i < 31) return `x${i + 1} (${ABI[i + 1]})`;
  if (i < 63) return `f${i - 31}`;
  if (i === 63) return 'fcsr';
  if (i < 64 + BUF_DWORDS) return `scratch buffer + ${(i - 64) * 8}`;
  if (i < total - 64) return `sig ${i - 64 - BUF_DWORDS}`;
  if (i === total - 64) return 'the number of illegal-instruction traps';
  return `the offset from difftest_body of illegal-instruction trap ${i - total + 64}`;
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

/**
 * Describes the difference between the golden dump and Vireo's, or returns null. The line
 * reported is the earliest differing signature slot (the log is in execution order, while
 * registers only show the final state), else the first differing illegal-instruction record
 * (an instruction that traps on one side only), else the first differing line.
 */
function firstDifference(golden: string, got: string, src: string, body: Buffer): string | null {
  if (got.startsWith('trap\n')) {
    const [cause, epc, tval] = got.split('\n').slice(1, 4);
    return `unexpected trap: mcause ${cause}, mepc = difftest_body + 0x${BigInt('0x' + epc).toString(16)}, mtval ${tval}`;
  }
  const g = golden.split('\n'), v = got.split('\n');
  if (g.length !== v.length || v[v.length - 2] !== 'end') {
    return `the dump has ${v.length - 1} lines, expected ${g.length - 1}; it ends with:\n${v.slice(-4).join('\n')}`;
  }
  const total = g.length - 2;
  const diffs: number[] = [];
  for (let i = 0; i < total; i++) if (g[i] !== v[i]) diffs.push(i);
  if (!diffs.length) return null;
  const sigStart = 64 + BUF_DWORDS, sigEnd = total - 64;
  const i = diffs.find((d) => d >= sigStart && d < sigEnd) ?? diffs.find((d) => d > sigEnd) ?? diffs[0]!;
  const what = lineName(i, total);
  const m = /^sig (\d+)$/.exec(what);
  return `${diffs.length} dump lines differ; the first that matters is line ${i + 1}: ${what}` +
    `${m ? sigSource(src, Number(m[1])) : ''}\n  expected (qemu) ${g[i]}\n  got (vireo)     ${v[i]}` +
    (i > sigEnd ? trapSource(Number.parseInt(g[i]!, 16), Number.parseInt(v[i]!, 16), src, body) : '');
}

/** Names the instruction that trapped on one side only, from the offsets both sides logged. */
function trapSource(expected: number, got: number, src: string, body: Buffer): string {
  // unused entries are 0, and offset 0 (the first `li`) never traps
  const off = Math.min(expected || Infinity, got || Infinity);
  if (!Number.isFinite(off) || off + 2 > body.length) return '';
  const half = body.readUInt16LE(off);
  const word = (half & 3) === 3 ? body.readUInt32LE(off) : half;
  const text = `.${(half & 3) === 3 ? 4 : 2}byte 0x${word.toString(16)} `;
  const at = src.split('\n').findIndex((l) => l.includes(text));
  return `\n  the instruction at difftest_body + 0x${off.toString(16)} is 0x${word.toString(16)}` +
    `${at >= 0 ? ` (line ${at + 1} of the source: ${src.split('\n')[at]!.trim()})` : ''}: ` +
    (off === expected ? 'qemu raised illegal instruction, Vireo did not' : 'Vireo raised illegal instruction, qemu did not');
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
  test(`difftest ${name}: Vireo matches qemu${process.env.VIREO_JIT === '1' ? ' (jit=on)' : ''}`, async () => {
    const golden = readFileSync(join(DIR, `${name}.out`), 'latin1');
    const r = await runVireo(join(DIR, `${name}.elf`));
    const src = readFileSync(join(DIR, `${name}.S`), 'utf8');
    const diff = firstDifference(golden, r.out, src, bodyBytes(join(DIR, `${name}.elf`)));
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

// The goldens are re-verified with the QEMU version that made them (programs/SEED): another
// version may implement extensions that some random encodings belong to.
const qemu = spawnSync('qemu-riscv64-static', ['--version'], { encoding: 'utf8' });
const qemuVersion = qemu.error || qemu.status !== 0 ? null : /version (\d+\.\d+)/.exec(qemu.stdout)?.[1] ?? '?';
const goldenVersion = /^qemu (\S+)$/m.exec(readFileSync(join(DIR, 'SEED'), 'utf8'))?.[1];
const skipVerify = process.env.VIREO_JIT === '1' ? 'run by difftest.test.js' : qemuVersion === null ? 'qemu-riscv64-static not installed: golden dumps not re-verified'
  : qemuVersion !== goldenVersion ? `qemu-riscv64-static is ${qemuVersion}, the golden dumps come from ${goldenVersion}: not re-verified`
  : false;

test('the golden dumps are what qemu-riscv64-static prints now', { skip: skipVerify }, () => {
  for (const n of names) {
    const r = spawnSync('qemu-riscv64-static', ['-cpu', QEMU_CPU, join(DIR, `${n}.linux.elf`)], { encoding: 'latin1', timeout: 30_000, maxBuffer: 1 << 24 });
    assert.equal(r.status, 0, `${n}: qemu-riscv64-static exit status ${r.status} (${r.signal ?? ''})`);
    const golden = readFileSync(join(DIR, `${n}.out`), 'latin1');
    const diff = firstDifference(golden, r.stdout, readFileSync(join(DIR, `${n}.S`), 'utf8'), bodyBytes(join(DIR, `${n}.linux.elf`)));
    assert.equal(diff, null, `${n}: the golden dump is stale (regenerate with node scripts/gen-difftest.mjs): ${diff}`);
  }
});
