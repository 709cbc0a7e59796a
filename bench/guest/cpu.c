/*
 * bench/cpu guest: a CPU-bound bare-metal program for the virt board (-bios none).
 * It fills 32 MiB with a xorshift sequence, then checksums it several times with a
 * mix of loads, multiplies, shifts and branches, prints the checksum on the UART
 * and powers off through the sifive_test finisher, so any emulator of the virt
 * board (Vireo, qemu-system-riscv64) runs it unchanged.
 */
#include <stdint.h>

#define UART0 ((volatile uint8_t *)0x10000000)
#define FINISHER ((volatile uint32_t *)0x100000)
#define WORDS (32u << 20) / 8

static uint64_t buf[WORDS];

static void putc_(char c) {
  while ((UART0[5] & 0x20) == 0) {}
  UART0[0] = (uint8_t)c;
}

static void puthex(uint64_t v) {
  for (int i = 60; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]);
}

void main(void) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint64_t i = 0; i < WORDS; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = x;
  }
  uint64_t sum = 0;
  for (int round = 0; round < 4; round++) {
    for (uint64_t i = 0; i < WORDS; i++) {
      uint64_t v = buf[i];
      sum = (sum ^ v) * 0x100000001b3ull;
      if (v & 1) sum += v >> 3;
      else sum -= v << 1;
    }
  }
  const char *msg = "checksum ";
  while (*msg) putc_(*msg++);
  puthex(sum);
  putc_('\n');
  *FINISHER = 0x5555;
  for (;;) {}
}
