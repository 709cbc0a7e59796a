/* Entry for the bench guests: a stack below 0x80000000 + 64 MiB, then main(). */
  .section .text.init
  .globl _start
_start:
  li sp, 0x84000000
  call main
1: j 1b
