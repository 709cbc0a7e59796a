/**
 * A minimal WebAssembly binary writer for the JIT: opcodes it uses, LEB128, and the
 * module wrapper around region functions (see translate.ts).
 */

export const enum Op {
  Unreachable = 0x00, Block = 0x02, Loop = 0x03, If = 0x04, Else = 0x05, End = 0x0b, Br = 0x0c, BrIf = 0x0d, BrTable = 0x0e, Return = 0x0f,
  Call = 0x10, CallIndirect = 0x11, ReturnCall = 0x12, ReturnCallIndirect = 0x13, Drop = 0x1a, Select = 0x1b,
  LocalGet = 0x20, LocalSet = 0x21, LocalTee = 0x22,
  I32Load = 0x28, I64Load = 0x29, I64Load8S = 0x30, I64Load8U = 0x31, I64Load16S = 0x32, I64Load16U = 0x33,
  I64Load32S = 0x34, I64Load32U = 0x35, I32Store = 0x36, I64Store = 0x37, I64Store8 = 0x3c, I64Store16 = 0x3d, I64Store32 = 0x3e,
  I32Const = 0x41, I64Const = 0x42,
  I32Eqz = 0x45, I32Ne = 0x47, I32LtU = 0x49, I32LeS = 0x4c, I32GtU = 0x4b, I32LeU = 0x4d,
  I64Eqz = 0x50, I64Eq = 0x51, I64Ne = 0x52, I64LtS = 0x53, I64LtU = 0x54, I64GeS = 0x59, I64GeU = 0x5a,
  I32Add = 0x6a, I32Sub = 0x6b, I32Mul = 0x6c, I32And = 0x71, I32Xor = 0x73, I32Shl = 0x74, I32ShrS = 0x75, I32ShrU = 0x76,
  I64Add = 0x7c, I64Sub = 0x7d, I64Mul = 0x7e, I64And = 0x83, I64Or = 0x84, I64Xor = 0x85,
  I64Shl = 0x86, I64ShrS = 0x87, I64ShrU = 0x88,
  I32WrapI64 = 0xa7, I64ExtendI32S = 0xac, I64ExtendI32U = 0xad,
}

/** A function index to be patched in (blockModule): 5 bytes of LEB128, the most a u32 takes. */
export const SELF_PLACEHOLDER = [0x80, 0x80, 0x80, 0x80, 0x00];

export const I32 = 0x7f;
export const I64 = 0x7e;
export const VOID = 0x40;

/** A growable byte buffer with the encodings the JIT needs. */
export class Bytes {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  len = 0;

  /** Makes room for `n` more bytes. */
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }

  byte(b: number): this {
    if (this.len === this.buf.length) this.reserve(1);
    this.buf[this.len++] = b;
    return this;
  }

  bytes(a: ArrayLike<number>): this {
    this.reserve(a.length);
    if (a instanceof Uint8Array) this.buf.set(a, this.len);
    else for (let i = 0; i < a.length; i++) this.buf[this.len + i] = a[i]!;
    this.len += a.length;
    return this;
  }

  u32(v: number): this {
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }

  i32(v: number): this {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  /** Signed LEB128 of the 64-bit value (lo, hi) given as two 32-bit halves. */
  i64(lo: number, hi: number): this {
    lo >>>= 0;
    hi |= 0;
    for (;;) {
      const b = lo & 0x7f;
      // Arithmetic shift of the 64-bit value by 7.
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>= 7;
      const done = (hi === 0 && lo === 0 && (b & 0x40) === 0) || (hi === -1 && lo === 0xffffffff && (b & 0x40) !== 0);
      if (done) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  op(o: Op): this {
    return this.byte(o);
  }

  /** A memory instruction with its memarg (alignment hint 0, i.e. none promised). */
  mem(o: Op, offset: number): this {
    return this.byte(o).byte(0).u32(offset);
  }

  str(s: string): this {
    this.u32(s.length);
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
    return this;
  }

  section(id: number, body: Bytes): this {
    this.byte(id).u32(body.len);
    return this.bytes(body.buf.subarray(0, body.len));
  }

  result(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.len);
  }
}

/**
 * Helper functions of a block module, in the order of env.helpers, the table they are
 * reached through: V8 compiles a wrapper per imported function for every module, which
 * was a third of the JIT's compile time; an imported table needs none.
 */
export const HELPERS: { name: string; params: number[]; results: number[] }[] = [
  { name: 'ld', params: [I64, I32, I64, I64], results: [I64] },
  { name: 'st', params: [I64, I64, I32, I64], results: [I32] },
  { name: 'md', params: [I64, I64, I32], results: [I64] },
  { name: 'ex', params: [I64, I64, I32], results: [I32] },
  { name: 'chain', params: [I32, I32, I32], results: [I64] },
];
export const F_LD = 0;
export const F_ST = 1;
export const F_MD = 2;
export const F_EX = 3;
/** (entry, budget, table index) => the region's result: tail-called by a region to go on in another (see chainModule). */
export const F_CHAIN = 4;

/** Calls helper `f` (its arguments are on the stack) through env.helpers; as a tail call with `tail`. */
export function callHelper(b: Bytes, f: number, tail = false): void {
  // Type 1 + f is the helper's (blockModule), table 0 the helpers.
  b.op(Op.I32Const).i32(f).op(tail ? Op.ReturnCallIndirect : Op.CallIndirect).u32(1 + f).u32(0);
}

/**
 * The module of the `chain` helper: `(entry, budget, idx) => table[idx](entry, budget)` as
 * a tail call through env.table, the hart's table of region functions. Regions reach
 * the table through it instead of importing it: V8 gives every instance that imports
 * a table a copy of its dispatch entries, and updates them all on each table.set.
 */
export function chainModule(): Uint8Array<ArrayBuffer> {
  const m = new Bytes();
  m.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  // Types: 0 = (i32, i32) => i64 (a region), 1 = (i32, i32, i32) => i64 (chain).
  m.section(1, new Bytes().u32(2).byte(0x60).u32(2).byte(I32).byte(I32).u32(1).byte(I64)
    .byte(0x60).u32(3).byte(I32).byte(I32).byte(I32).u32(1).byte(I64));
  m.section(2, new Bytes().u32(1).str('env').str('table').byte(0x01).byte(0x70).byte(0x00).u32(0));
  m.section(3, new Bytes().u32(1).u32(1));
  m.section(7, new Bytes().u32(1).str('chain').byte(0x00).u32(0));
  const body = new Bytes().u32(0).op(Op.LocalGet).u32(0).op(Op.LocalGet).u32(1).op(Op.LocalGet).u32(2)
    .op(Op.ReturnCallIndirect).u32(0).u32(0).op(Op.End);
  m.section(10, new Bytes().u32(1).u32(body.len).bytes(body.buf.subarray(0, body.len)));
  return m.result();
}

/** The local declarations of a function body, encoded: `locals` lists [count, type] runs. */
export function localDecls(locals: [number, number][]): Uint8Array {
  const d = new Bytes().u32(locals.length);
  for (const [n, t] of locals) d.u32(n).byte(t);
  return d.result();
}

/**
 * A module importing env.memory (shared) and the helper table, exporting each body as
 * function "f<i>" of type (entry: i32, budget: i32) => i64. `locals` are each body's local
 * declarations (localDecls()); `hints` its branch hints (pairs: offset in `code` of an `if`
 * or `br_if`, 1 if likely taken or 0 if not), in the metadata.code.branch_hint section.
 */
export function blockModule(bodies: { locals: Uint8Array; code: Uint8Array; selfCalls: number[]; hints: number[] }[]): Uint8Array<ArrayBuffer> {
  const m = new Bytes();
  m.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const types = new Bytes();
  types.u32(1 + HELPERS.length);
  types.byte(0x60).u32(2).byte(I32).byte(I32).u32(1).byte(I64);
  for (const f of HELPERS) types.byte(0x60).u32(f.params.length).bytes(f.params).u32(f.results.length).bytes(f.results);
  m.section(1, types);
  const imps = new Bytes();
  imps.u32(2);
  imps.str('env').str('memory').byte(0x02).byte(0x03).u32(0).u32(65536);
  imps.str('env').str('helpers').byte(0x01).byte(0x70).byte(0x00).u32(HELPERS.length);
  m.section(2, imps);
  const funcs = new Bytes();
  funcs.u32(bodies.length);
  for (let i = 0; i < bodies.length; i++) funcs.u32(0);
  m.section(3, funcs);
  const exps = new Bytes();
  exps.u32(bodies.length);
  bodies.forEach((_, i) => exps.str(`f${i}`).byte(0x00).u32(i));
  m.section(7, exps);
  // Branch hints (before the code): V8 lays out the unlikely side of each hinted branch
  // after the function's other code, so that the slow paths (TLB misses, helper flags,
  // budget exits) do not take room among the instructions run. Offsets count from the
  // start of the body, its local declarations included.
  const hints = new Bytes().str('metadata.code.branch_hint');
  hints.u32(bodies.filter((b) => b.hints.length > 0).length);
  bodies.forEach((b, i) => {
    if (b.hints.length === 0) return;
    hints.u32(i).u32(b.hints.length / 2);
    for (let k = 0; k < b.hints.length; k += 2) hints.u32(b.locals.length + b.hints[k]!).u32(1).byte(b.hints[k + 1]!);
  });
  m.section(0, hints);
  const code = new Bytes();
  code.u32(bodies.length);
  bodies.forEach((b, i) => {
    code.u32(b.locals.length + b.code.length + 1).bytes(b.locals);
    const at = code.len;
    code.bytes(b.code).op(Op.End);
    // Function index i as a 5-byte LEB128 in each placeholder.
    for (const off of b.selfCalls) for (let k = 0; k < 5; k++) code.buf[at + off + k] = ((i >>> (7 * k)) & 0x7f) | (k < 4 ? 0x80 : 0);
  });
  m.section(10, code);
  return m.result();
}
