/*
 * bench/cpu --program=calls guest: small functions, each on its own page, called in a
 * loop, as kernel and library code calls across pages all the time (a JIT that keeps
 * each page's code apart pays for every page change). Bare metal on the virt board
 * (-bios none); prints a checksum and powers off through the sifive_test finisher.
 */
#include "virt.h"

#define F(n)                                                                     \
  __attribute__((noinline, section(".text.p" #n), aligned(4096)))                \
  uint64_t f##n(uint64_t x, uint64_t *m) {                                       \
    uint64_t y = m[x & 7] + x * (n + 3);                                         \
    m[(x >> 3) & 7] = y ^ (y >> 9);                                              \
    return y + (x >> 2);                                                         \
  }
F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8)

/* Data on a page of its own: stores to a page holding code would take the slow path. */
static uint64_t mem[8] __attribute__((aligned(4096)));

void main(void) {
  uint64_t x = 12345;
  for (uint32_t i = 0; i < 3000000; i++) {
    x = f1(x, mem); x = f2(x, mem); x = f3(x, mem); x = f4(x, mem);
    x = f5(x, mem); x = f6(x, mem); x = f7(x, mem); x = f8(x, mem);
  }
  finish(x);
}
