/*
 * bench/cpu guest: a CPU-bound bare-metal program for the virt board (-bios none).
 * It fills 32 MiB with a xorshift sequence, then checksums it several times with a
 * mix of loads, multiplies, shifts and branches, prints the checksum on the UART
 * and powers off through the sifive_test finisher, so any emulator of the virt
 * board (Vireo, qemu-system-riscv64) runs it unchanged.
 */
#include "virt.h"

#define WORDS (32u << 20) / 8

static uint64_t buf[WORDS];

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
  finish(sum);
}
