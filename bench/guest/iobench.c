/*
 * iobench: the block workload of bench/blk, run inside the bundled Linux guest (a few fio
 * jobs in one small static program: busybox has no tool for random-offset I/O).
 *
 *   iobench read|write|randread|randwrite BS COUNT DEVICE
 *
 * COUNT requests of BS bytes (suffix k or M), one at a time (queue depth 1), with O_DIRECT
 * (no guest page cache), from and to one buffer filled once with pseudo-random bytes before
 * the clock starts (as fio does: no per-request copy from /dev/zero). Sequential offsets
 * start at 0 and wrap at the device's end; random ones are BS-aligned, from a fixed-seed
 * xorshift, so every run and VMM issues the same requests. Prints
 *   iobench MODE bs=BS ops=COUNT bytes=TOTAL ns=ELAPSED
 * from CLOCK_MONOTONIC, or one line on stderr and exit status 1 on an error.
 *
 * Freestanding (raw Linux syscalls, no libc): a few KiB, sent to the guest through the
 * console. Rebuild with (bench/README.md):
 *   riscv64-unknown-elf-gcc -Os -march=rv64gc -mabi=lp64d -static -nostdlib -ffreestanding
 *     -fno-builtin -fno-tree-loop-distribute-patterns -mno-relax -Wl,--no-relax
 *     -Wl,--build-id=none -s bench/guest/iobench.c -o bench/guest/iobench.elf
 */
typedef unsigned long u64;
typedef long i64;

enum { SYS_OPENAT = 56, SYS_LSEEK = 62, SYS_WRITE = 64, SYS_PREAD64 = 67, SYS_PWRITE64 = 68,
  SYS_EXIT = 93, SYS_CLOCK_GETTIME = 113 };
enum { AT_FDCWD = -100, O_RDWR = 2, O_DIRECT = 040000, SEEK_END = 2, CLOCK_MONOTONIC = 1 };
#define MAX_BS (1UL << 20)

static i64 sys(i64 n, i64 a, i64 b, i64 c, i64 d) {
  register i64 a0 __asm__("a0") = a, a1 __asm__("a1") = b, a2 __asm__("a2") = c, a3 __asm__("a3") = d;
  register i64 a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a7) : "memory");
  return a0;
}

static unsigned char buf[MAX_BS] __attribute__((aligned(4096)));

static u64 len(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void put(int fd, const char *s) { sys(SYS_WRITE, fd, (i64)s, (i64)len(s), 0); }
static int same(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }

static void cat(char **p, const char *s) { while (*s) *(*p)++ = *s++; }

static void putNum(char **p, u64 v) {
  char t[24];
  int n = 0;
  do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) *(*p)++ = t[--n];
}

static void fail(const char *what, i64 err) {
  char line[128], *p = line;
  cat(&p, "iobench: ");
  cat(&p, what);
  if (err < 0) {
    cat(&p, ": errno ");
    putNum(&p, (u64)-err);
  }
  *p++ = '\n';
  *p = 0;
  put(2, line);
  sys(SYS_EXIT, 1, 0, 0, 0);
}

/** BS or COUNT: digits with an optional k or M suffix; 0 if malformed. */
static u64 parseSize(const char *s) {
  u64 v = 0;
  if (!*s) return 0;
  for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (u64)(*s - '0');
  if (*s == 'k' || *s == 'K') { v <<= 10; s++; } else if (*s == 'M') { v <<= 20; s++; }
  return *s ? 0 : v;
}

static u64 rng = 0x9e3779b97f4a7c15UL;
static u64 next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static u64 now(void) {
  i64 ts[2];
  sys(SYS_CLOCK_GETTIME, CLOCK_MONOTONIC, (i64)ts, 0, 0);
  return (u64)ts[0] * 1000000000UL + (u64)ts[1];
}

static void run(int argc, char **argv) {
  if (argc != 5) fail("usage: iobench read|write|randread|randwrite BS COUNT DEVICE", 0);
  const char *mode = argv[1];
  int write = same(mode, "write") || same(mode, "randwrite");
  int random = same(mode, "randread") || same(mode, "randwrite");
  if (!write && !random && !same(mode, "read")) fail("unknown mode", 0);
  u64 bs = parseSize(argv[2]), count = parseSize(argv[3]);
  if (bs < 512 || bs > MAX_BS || bs % 512 || !count) fail("bad BS or COUNT", 0);
  i64 fd = sys(SYS_OPENAT, AT_FDCWD, (i64)argv[4], O_RDWR | O_DIRECT, 0);
  if (fd < 0) fail("cannot open the device", fd);
  i64 size = sys(SYS_LSEEK, fd, 0, SEEK_END, 0);
  if (size < (i64)bs) fail("device smaller than BS", size < 0 ? size : 0);
  u64 blocks = (u64)size / bs;
  // Every page of the buffer is written before the clock starts (no fault during the run).
  for (u64 i = 0; i < bs; i += 8) *(u64 *)(buf + i) = next();
  u64 t0 = now();
  for (u64 i = 0; i < count; i++) {
    u64 off = (random ? next() % blocks : i % blocks) * bs;
    i64 r = sys(write ? SYS_PWRITE64 : SYS_PREAD64, fd, (i64)buf, (i64)bs, (i64)off);
    if (r != (i64)bs) fail(write ? "write failed" : "read failed", r < 0 ? r : 0);
  }
  u64 ns = now() - t0;
  char line[160], *p = line;
  cat(&p, "iobench ");
  cat(&p, mode);
  cat(&p, " bs=");
  putNum(&p, bs);
  cat(&p, " ops=");
  putNum(&p, count);
  cat(&p, " bytes=");
  putNum(&p, bs * count);
  cat(&p, " ns=");
  putNum(&p, ns);
  *p++ = '\n';
  *p = 0;
  put(1, line);
}

/** The kernel's initial stack: argc, then the argv pointers. */
void entry(i64 *sp) {
  run((int)sp[0], (char **)(sp + 1));
  sys(SYS_EXIT, 0, 0, 0, 0);
}

__asm__(".globl _start\n_start:\n  mv a0, sp\n  andi sp, sp, -16\n  call entry\n");
