/* What the bench guests use of the virt board: the UART (polled) and the sifive_test finisher. */
#include <stdint.h>

#define UART0 ((volatile uint8_t *)0x10000000)
#define FINISHER ((volatile uint32_t *)0x100000)

static void putc_(char c) {
  while ((UART0[5] & 0x20) == 0) {}
  UART0[0] = (uint8_t)c;
}

/* Prints "checksum <16 hex digits>\n" and powers the machine off. */
static void finish(uint64_t sum) {
  const char *msg = "checksum ";
  while (*msg) putc_(*msg++);
  for (int i = 60; i >= 0; i -= 4) putc_("0123456789abcdef"[(sum >> i) & 15]);
  putc_('\n');
  *FINISHER = 0x5555;
  for (;;) {}
}
